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

/**
 * Where ingestion delivers events. Batches of one endpoint are delivered one at a time, in
 * sequence order (the next call waits for the previous promise); endpoints are independent.
 */
export interface KvEventSink {
  /** Applies one batch from `endpointId` (serving `model`); `seq` is the publisher's sequence number. */
  applyBatch(endpointId: string, model: string, seq: bigint, batch: KvEventBatch): Promise<void>;
  /** Everything known of the endpoint is stale (gap not recoverable by replay, endpoint left). */
  resetEndpoint(endpointId: string): Promise<void>;
}
