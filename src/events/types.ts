/**
 * Decoded vLLM KV-cache events, the contract between event ingestion (`src/events/`) and the
 * block index (`src/kv-index/`). Wire formats: vLLM's ZeroMQ publisher (3 frames: topic,
 * 8-byte big-endian seq, msgpack `EventBatch` in array or map encoding).
 */

/** `BlockStored`: the engine cached these full blocks (token ids cover them all, in order). */
export interface BlockStoredEvent {
  type: 'BlockStored';
  /** Engine block hashes (low 64 bits, unsigned). */
  blockHashes: bigint[];
  /** Engine hash of the block before the first one; null for a prefix root. */
  parentBlockHash: bigint | null;
  tokenIds: number[];
  blockSize: number;
  loraId: number | null;
  /** Tier as the engine names it (`GPU`, `CPU`, ...; case varies); null = default (GPU). */
  medium: string | null;
  loraName: string | null;
}

/** `BlockRemoved`: the engine evicted these blocks from `medium`. */
export interface BlockRemovedEvent {
  type: 'BlockRemoved';
  blockHashes: bigint[];
  medium: string | null;
}

/** `AllBlocksCleared`: the engine's whole prefix cache is gone (reset, sleep, restart). */
export interface AllBlocksClearedEvent {
  type: 'AllBlocksCleared';
}

export type KvEvent = BlockStoredEvent | BlockRemovedEvent | AllBlocksClearedEvent;

/** One `EventBatch` message. */
export interface KvEventBatch {
  /** Publisher timestamp (seconds since the epoch, float). */
  ts: number;
  events: KvEvent[];
  dataParallelRank: number | null;
}

/** Which slice of a batch a call carries: large batches are applied in slices that yield to I/O. */
export interface BatchPart {
  /** 0-based slice index. */
  index: number;
  /** Slices of the batch. */
  count: number;
}

/**
 * Where ingestion delivers events. Batches of one endpoint are delivered one at a time, in
 * sequence order (the next call waits for the previous promise); endpoints are independent.
 * A rejection means the batch was NOT (fully) applied: ingestion retries it (through replay).
 */
export interface KvEventSink {
  /**
   * Applies one batch (or, with `part`, one slice of it, slices in order) from `endpointId`
   * (serving `model`); `seq` is the publisher's sequence number.
   */
  applyBatch(endpointId: string, model: string, seq: bigint, batch: KvEventBatch, part?: BatchPart): Promise<void>;
  /** Everything known of the endpoint is stale (gap not recoverable by replay, endpoint left). */
  resetEndpoint(endpointId: string): Promise<void>;
}

/** Counters of one endpoint's event stream (monotonic except the `last*` fields). */
export interface EndpointEventStats {
  /** Batches applied (live and replayed). */
  batches: number;
  /** Events inside applied batches. */
  events: number;
  /** Messages that could not be decoded at all (skipped). */
  malformedMessages: number;
  /** Single events skipped inside otherwise good batches. */
  malformedEvents: number;
  /** Sequence gaps detected. */
  gaps: number;
  /** Gaps (or late joins) recovered through the replay socket. */
  replays: number;
  /** Replays that failed (timeout, no replay endpoint, buffer too short). */
  replayFailures: number;
  /** Times everything known of the endpoint was dropped (unrecoverable gap, restart, leave). */
  resets: number;
  /** Publisher restarts confirmed (replay, process start time, or a run of lower sequence numbers). */
  restarts?: number;
  /** Messages with a lower sequence number not confirmed as a restart (dropped: forged or stray). */
  unconfirmedSeqResets?: number;
  /** Live messages past a gap that the endpoint's replay socket shows it never sent (dropped: another publisher on its topic). */
  foreignMessages?: number;
  /** Messages over the byte cap (dropped). */
  oversizedMessages?: number;
  /** Events over the blocks-per-event cap (dropped). */
  oversizedEvents?: number;
  /** Messages dropped because the queue's bytes were at the cap (recovered by replay). */
  queueDrops?: number;
  /** Bytes waiting in the queue now. */
  queuedBytes?: number;
  /** Batches the sink failed to apply (retried through replay, never counted as applied). */
  sinkFailures?: number;
  /** Periodic resync checks run. */
  resyncChecks?: number;
  /** Milliseconds ingestion waited because it had used its share of the event loop (src/events/loop-budget.ts). */
  throttledMs?: number;
  /** Last applied sequence number (-1 before the first). */
  lastSeq: number;
  /** Clock time (ms) of the last applied batch, 0 before the first. */
  lastEventAt: number;
  /** Topic the endpoint publishes on, as last seen ('' before the first). */
  topic: string;
  /** Whether the subscriber is connected / bound and running. */
  connected: boolean;
}

/** What event ingestion reports (for metrics, the dashboard and `kvroute doctor`). */
export interface EventIngestStats {
  mode: 'connect' | 'bind';
  endpoints: Record<string, EndpointEventStats>;
  /** Messages whose topic names no known endpoint (bind mode), by topic. */
  unknownTopics: Record<string, number>;
  /** Bind mode with an allow-list: connection attempts refused, by publisher address. */
  rejectedPublishers?: Record<string, number>;
}
