/**
 * Shared shapes of the block index (implemented in this folder) that other parts read.
 */

/** What a block index reports (for metrics, the dashboard and `kvroute doctor`). */
export interface IndexStats {
  backend: 'memory' | 'redis';
  /** Whether the backend answers right now (Redis reachable). */
  available: boolean;
  /** (block key, endpoint, tier) entries held. */
  entries: number;
  /** Estimated bytes held (memory backend) or used (Redis). */
  bytes: number;
  /** Entries per endpoint. */
  endpoints: Record<string, number>;
  /** Blocks added / removed since start. */
  added: number;
  removed: number;
  /** Entries dropped to stay within bounds. */
  evicted: number;
  lookups: number;
  /** Operations that failed (backend unreachable, timeout). */
  errors: number;
  /** BlockStored events whose parent block was unknown (chain could not be keyed). */
  unknownParents: number;
}
