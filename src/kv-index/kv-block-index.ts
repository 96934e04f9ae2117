/**
 * The block index contract: which endpoint holds which block key in which tier, and, for a
 * request's keys, how long a leading run each candidate holds. Implemented in memory
 * ({@link MemoryBlockIndex}, one router) and in Redis ({@link RedisBlockIndex}, shared by all
 * router replicas); decorated by {@link InstrumentedBlockIndex}; fed by {@link KvIndexer}.
 *
 * Two levels of writes:
 * - by key (`add`, `remove`, `clearEndpoint`): plain set operations, no ordering;
 * - by engine batch (`applyEngineBatch`): what the indexer sends for one vLLM event batch. The
 *   backend keeps each endpoint's engine-hash -> key map (so `BlockRemoved`, which names engine
 *   hashes only, can be applied) and fences batches by the publisher's (seq, ts), atomically
 *   with the writes, so several routers applying the same stream agree (see {@link fenceDecision}).
 *
 * Every method rejects with a KvrError (`KVR_ERR_INDEX_UNAVAILABLE`) when the backend cannot be
 * reached; callers fall back to approximate routing.
 */
import type { BlockKey, PrefixRun } from '../scheduling/kv-cache-services.js';
import type { RouterKey } from './block-keys.js';
import type { IndexStats } from './types.js';

export type { BlockKey, PrefixRun };

/**
 * How the fence treats a batch:
 * - `next`: the stream continues (the router applied or saw the previous batch);
 * - `fresh`: the router has no continuity (first batch after its start, a reset or a restart of
 *   the publisher): if the shared index missed batches (or the publisher restarted), the
 *   endpoint's entries are dropped before applying;
 * - `force`: apply whatever the fence says (single writer after it cleared the endpoint itself).
 */
export type FenceMode = 'next' | 'fresh' | 'force';

/** One write of an engine batch, in event order. */
export type EngineOp =
  /** The endpoint cached these blocks in `tier`: `keys[i]` is the router key of `engineHashes[i]`. */
  | { kind: 'store'; tier: string; engineHashes: readonly bigint[]; keys: ArrayLike<RouterKey> }
  /** The endpoint evicted these blocks from `tier` (resolved through its engine-hash map). */
  | { kind: 'remove'; tier: string; engineHashes: readonly bigint[] }
  /** The endpoint's whole cache is gone. */
  | { kind: 'clear' };

/** The writes of one event batch of one endpoint. */
export interface EngineBatch {
  endpointId: string;
  /** Publisher sequence number (exact below 2^53). */
  seq: number;
  /** Publisher timestamp (seconds since the epoch). */
  ts: number;
  mode: FenceMode;
  ops: readonly EngineOp[];
  /**
   * A large batch may be applied in parts (ingestion yields to I/O between them): part `part`
   * (0-based, default 0) of `parts` (default 1). Part k > 0 applies only right after part k - 1 of
   * the same seq; a retried batch's parts already applied are `stale`.
   */
  part?: number;
  parts?: number;
}

/**
 * What became of a batch: `applied`; `stale` (skipped: an older or duplicate batch, e.g. one
 * another router applied already); `restarted` (the publisher restarted: the endpoint's entries
 * were dropped, then the batch applied); `rebased` (a fresh stream found batches missing from the
 * index: entries dropped, then applied); `lost` (the index itself was lost, e.g. Redis flushed or
 * restarted: nothing applied, `onIndexLost` listeners fire).
 */
export type ApplyOutcome = 'applied' | 'stale' | 'restarted' | 'rebased' | 'lost';

/** The block index contract (see the module comment). */
export interface KvBlockIndex {
  readonly backend: 'memory' | 'redis';
  /** True when other writers (router replicas) may share this index. */
  readonly shared: boolean;
  /**
   * Per candidate (same order as `endpointIds`): the longest run of leading `keys` it holds in
   * any tier, and the sum over that run of each block's best tier weight. Keys other than
   * {@link RouterKey} numbers never match. Stops reading once no candidate's run continues.
   */
  lookup(keys: ArrayLike<BlockKey>, endpointIds: readonly string[]): Promise<PrefixRun[]>;
  /** Records that `endpointId` holds `keys` in `tier`. */
  add(endpointId: string, tier: string, keys: ArrayLike<RouterKey>): Promise<void>;
  /** Records that `endpointId` no longer holds `keys` in `tier`. */
  remove(endpointId: string, tier: string, keys: ArrayLike<RouterKey>): Promise<void>;
  /** Drops every entry and the engine-hash map of `endpointId` (its stream fence stays). */
  clearEndpoint(endpointId: string): Promise<void>;
  /** Applies one fenced engine batch atomically (see {@link EngineBatch}). */
  applyEngineBatch(batch: EngineBatch): Promise<ApplyOutcome>;
  /** The router keys of engine hashes `endpointId` reported as stored (undefined when unknown). */
  resolveEngineHashes(endpointId: string, engineHashes: readonly bigint[]): Promise<(RouterKey | undefined)[]>;
  /** Registers a listener called when the backend lost its content (Redis flushed or restarted). */
  onIndexLost(listener: () => void): void;
  /** Current statistics (cheap; never throws). */
  stats(): IndexStats;
  /** Releases connections and timers. */
  close(): Promise<void>;
}

/** A stream fence: the last applied (seq, ts) of one endpoint. */
export interface Fence {
  seq: number;
  ts: number;
  /** The next part expected of batch `seq` (0 or absent = the batch is complete). */
  next?: number;
}

/** What the fence says of a batch: skip it, apply it, or drop the endpoint's entries and apply. */
export type FenceVerdict = 'stale' | 'apply' | 'restart' | 'rebase';

/**
 * The fence rule, shared by every backend (the Redis backend runs the same rule in Lua). With
 * stored fence (S, T) and a batch (s, t), `tol` seconds of tolerated publisher clock steps:
 *
 *   no fence, or mode force                  -> apply
 *   s <= S and t >  T                        -> restart  (publisher restarted: seq went back, time went on)
 *   s <= S and t <= T                        -> stale    (duplicate: another router applied it)
 *   s >  S and t < T - tol                   -> stale    (a late batch of a stream that since restarted)
 *   s >  S + 1 and mode fresh                -> rebase   (nobody applied S+1 .. s-1: entries are incomplete)
 *   S's parts incomplete                     -> rebase   (part of batch S is missing)
 *   otherwise                                -> apply
 *
 * Part k > 0 of a batch: apply when the fence holds the same seq expecting part k, else stale.
 */
export function fenceDecision(stored: Fence | undefined, seq: number, ts: number, mode: FenceMode, tol: number, part = 0): FenceVerdict {
  if (part > 0) return stored !== undefined && stored.seq === seq && (stored.next ?? 0) === part ? 'apply' : 'stale';
  if (stored === undefined || mode === 'force') return 'apply';
  if (seq <= stored.seq) return ts > stored.ts ? 'restart' : 'stale';
  if (ts < stored.ts - tol) return 'stale';
  if (mode === 'fresh' && seq > stored.seq + 1) return 'rebase';
  if ((stored.next ?? 0) > 0) return 'rebase';
  return 'apply';
}

/** Default tolerance (seconds) of a publisher clock going backwards within one stream. */
export const DEFAULT_CLOCK_TOLERANCE_S = 5;
