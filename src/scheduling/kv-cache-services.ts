/**
 * What precise prefix routing needs from the rest of the router, as one injectable object, so the
 * scheduling core stays free of tokenizers, sockets and Redis:
 *
 *   request --tokenize--> token ids --requestKeys--> block keys --lookup--> per-candidate runs
 *
 * The router builds it from its tokenizer and block index (src/app/kv-cache.ts); tests and the
 * virtual benchmark may build their own.
 */
import type { InferenceRequest } from '../core/request.js';

/** A block key as the index stores it (opaque to the scheduler; only compared for equality). */
export type BlockKey = bigint | number | string;

/** What the index holds of a request's leading blocks on one candidate. */
export interface PrefixRun {
  /** Longest run of the request's leading blocks the endpoint holds (any tier). */
  blocks: number;
  /** Sum of tier weights over that run (GPU 1.0, CPU 0.8). */
  weighted: number;
}

/** Services of precise prefix routing. */
export interface KvCacheServices {
  /** Engine block size in tokens (vLLM's default 16); request keys are cut the same way. */
  readonly blockSize: number;
  /** The request's prompt token ids exactly as the engine will compute them. */
  tokenize(req: InferenceRequest): Promise<readonly number[]>;
  /** kvroute's chained block keys of `tokens` (full blocks only). */
  requestKeys(model: string, tokens: readonly number[]): ArrayLike<BlockKey>;
  /** Per candidate (same order as `endpointIds`), the run of `keys` it holds. Rejects when the index is unreachable. */
  lookup(keys: ArrayLike<BlockKey>, endpointIds: readonly string[]): Promise<PrefixRun[]>;
  /** Registers a listener told when an endpoint's whole cache is gone (AllBlocksCleared, restart, reset). */
  onEndpointReset?(listener: (endpointId: string) => void): void;
}
