/**
 * The machine-readable summary `kvroute demo --json` prints (documented in docs/demo.md).
 * Rates are fractions in [0, 1]; times are milliseconds unless the name says seconds.
 */

export interface ReplicaPhaseStats {
  /** `host:port` of the replica. */
  endpoint: string;
  /** Requests the gateway sent to it (from the `x-kvroute-endpoint` response header). */
  requests: number;
  /** Delta of `vllm:prefix_cache_queries_total` (tokens) over the phase. */
  prefixQueries: number;
  /** Delta of `vllm:prefix_cache_hits_total` (tokens) over the phase. */
  prefixHits: number;
  /** prefixHits / prefixQueries (0 when no queries). */
  hitRate: number;
}

export interface DemoPhase {
  name: string;
  description: string;
  requests: number;
  failed: number;
  /** Sum of hit deltas / sum of query deltas over all replicas. */
  fleetHitRate: number;
  meanTtftMs: number;
  /** Requests with at least half their prompt served from cache (engine's cached_tokens). */
  hitRequests: number;
  missRequests: number;
  /** Mean client-side TTFT of hit requests (NaN -> null in JSON when none). */
  hitTtftMs: number;
  missTtftMs: number;
  replicas: ReplicaPhaseStats[];
}

export interface DemoStrategyResult {
  strategy: string;
  requests: number;
  failed: number;
  fleetHitRate: number;
  ttftMeanMs: number;
  ttftP50Ms: number;
  ttftP90Ms: number;
  outputTokensPerSecond: number;
  /** Duration of the run (simulated seconds for the virtual comparison). */
  wallSeconds: number;
  /** Share of requests served by the busiest replica. */
  concentration: number;
  replicas: ReplicaPhaseStats[];
}

export interface DemoSummary {
  /** Schema version of this summary. */
  version: 1;
  fleet: { replicas: number; model: string; profile: string; timeScale: number; endpoints: string[] };
  phases: DemoPhase[];
  /** kvroute (default) then round-robin, run in simulated time (see `comparisonSetup`). */
  comparison: DemoStrategyResult[];
  /** How the comparison ran: the virtual bench engine; its workload. */
  comparisonSetup: { engine: 'virtual'; about: string; requests: number; groups: number; systemTokens: number; ratePerSecond: number };
  durationSeconds: number;
}
