/**
 * The indexer: the {@link KvEventSink} that turns decoded vLLM KV events into block index
 * writes, keyed by kvroute's own block keys (so the router never depends on vLLM's hash function
 * or `PYTHONHASHSEED`).
 *
 *   BlockStored      parent key = root(model, lora) when parent is null, else the router key
 *                    recorded for the parent's engine hash (this batch first, then the index);
 *                    keys = chain(parent key, token ids, block size); store (endpoint, tier) and
 *                    engine hash -> key. Unknown parent: the event (and anything chained on it
 *                    in the batch) is skipped and counted in `unknownParents`.
 *   BlockRemoved     engine hashes -> keys through the endpoint's map; remove from that tier
 *                    (the mapping goes when no tier holds the block any more).
 *   AllBlocksCleared everything of the endpoint goes.
 *
 * A batch becomes one fenced {@link EngineBatch}: the backend applies it atomically only if it is
 * newer than what the index holds for the endpoint, so several routers feeding one Redis index
 * with the same events (in any interleaving) agree, and a late duplicate never resurrects a
 * removed block. Malformed events are skipped and counted; they never stop the batch.
 */
import { silentLogger } from '../core/logger.js';
import { KvrError } from '../core/errors.js';
import type { Logger } from 'pino';
import type { BatchPart, KvEventBatch, KvEventSink } from '../events/types.js';
import { BatchParents } from './batch-parents.js';
import { BlockKeyer, checkBlockSize, type RouterKey } from './block-keys.js';
import type { ApplyOutcome, EngineOp, FenceMode, KvBlockIndex } from './kv-block-index.js';
import { normalizeTier } from './tiers.js';
import type { IndexStats } from './types.js';

/** Options of {@link KvIndexer}. */
export interface KvIndexerOptions {
  /** Where blocks are recorded (memory or Redis, possibly instrumented). */
  index: KvBlockIndex;
  /** Computes block keys (default: a {@link BlockKeyer} with the default seed). */
  keyer?: BlockKeyer;
  /** Called when the index lost its content (Redis flushed / restarted): replay every stream from 0. */
  onIndexLost?: () => void;
  logger?: Logger;
}

/** Counters of the indexer (monotonic). */
export interface KvIndexerStats {
  /** Batches by what the index did with them. */
  batches: Record<ApplyOutcome, number>;
  events: number;
  /** Events skipped as malformed (bad tier, token ids, block size, hashes). */
  malformedEvents: number;
  unknownParents: number;
  /** Blocks in applied BlockStored / BlockRemoved events, and AllBlocksCleared events. */
  storedBlocks: number;
  removedBlocks: number;
  clears: number;
}

interface StreamState {
  lastSeq: number;
  mode: FenceMode;
}

const MAX_SEQ = BigInt(Number.MAX_SAFE_INTEGER);

/** Applies KV event batches to a {@link KvBlockIndex}. */
export class KvIndexer implements KvEventSink {
  readonly index: KvBlockIndex;
  readonly keyer: BlockKeyer;
  readonly #log: Logger;
  readonly #onLost: (() => void) | undefined;
  readonly #streams = new Map<string, StreamState>();
  readonly #stats: KvIndexerStats = {
    batches: { applied: 0, stale: 0, restarted: 0, rebased: 0, lost: 0 },
    events: 0,
    malformedEvents: 0,
    unknownParents: 0,
    storedBlocks: 0,
    removedBlocks: 0,
    clears: 0,
  };

  constructor(opts: KvIndexerOptions) {
    this.index = opts.index;
    this.keyer = opts.keyer ?? new BlockKeyer();
    this.#log = opts.logger ?? silentLogger;
    this.#onLost = opts.onIndexLost;
    this.index.onIndexLost(() => {
      // Every stream starts over: the next batch of each endpoint is applied as a fresh one.
      this.#streams.clear();
      this.#log.warn('block index lost its content; event streams must be replayed from 0');
      this.#onLost?.();
    });
  }

  /**
   * The block keys of a request's prompt tokens, equal to the keys the engine's events produce
   * for the same tokens and block size. For a LoRA request pass the base model and the adapter.
   */
  requestKeys(model: string, tokenIds: ArrayLike<number>, blockSize: number, loraName: string | null = null): Float64Array {
    return this.keyer.requestKeys(model, tokenIds, blockSize, loraName);
  }

  async applyBatch(endpointId: string, model: string, seq: bigint, batch: KvEventBatch, part?: BatchPart): Promise<void> {
    const pi = part?.index ?? 0;
    const pn = part?.count ?? 1;
    if (!Number.isInteger(pi) || !Number.isInteger(pn) || pi < 0 || pi >= pn) throw new KvrError('KVR_ERR_BAD_REQUEST', `KV event batch from ${endpointId}: bad part ${pi} of ${pn}`);
    if (typeof seq !== 'bigint' || seq < 0n || seq > MAX_SEQ) throw new KvrError('KVR_ERR_BAD_REQUEST', `KV event batch from ${endpointId}: bad sequence number ${String(seq)}`);
    if (batch === null || typeof batch !== 'object' || !Array.isArray(batch.events) || !Number.isFinite(batch.ts)) {
      throw new KvrError('KVR_ERR_BAD_REQUEST', `KV event batch ${seq} from ${endpointId}: not an EventBatch (events array and finite ts required)`);
    }
    const s = Number(seq);
    let st = this.#streams.get(endpointId);
    if (st === undefined) {
      st = { lastSeq: -1, mode: 'fresh' };
      this.#streams.set(endpointId, st);
    } else if (s <= st.lastSeq && pi === 0) {
      // The stream went back: the publisher restarted (ingestion confirmed it before calling).
      await this.#restartStream(endpointId, st);
    }
    const ops = await this.#toOps(endpointId, model, batch);
    const outcome = await this.index.applyEngineBatch({ endpointId, seq: s, ts: batch.ts, mode: st.mode, ops, part: pi, parts: pn });
    this.#stats.batches[outcome]++;
    this.#stats.events += batch.events.length;
    if (outcome === 'lost') return;
    if (outcome !== 'stale') {
      for (const op of ops) {
        if (op.kind === 'store') this.#stats.storedBlocks += op.keys.length;
        else if (op.kind === 'remove') this.#stats.removedBlocks += op.engineHashes.length;
        else this.#stats.clears++;
      }
    }
    // The fence now follows this batch (later parts continue it); it is complete after the last part.
    st.mode = 'next';
    if (pi === pn - 1) st.lastSeq = s;
  }

  /**
   * Everything this router knows of the endpoint's stream is stale. A private index drops the
   * endpoint's entries now; a shared one lets the fence decide at the next batch (so that a
   * reset seen by every router does not wipe what the first of them already re-applied).
   */
  async resetEndpoint(endpointId: string): Promise<void> {
    const st = this.#streams.get(endpointId) ?? { lastSeq: -1, mode: 'fresh' as FenceMode };
    this.#streams.set(endpointId, st);
    await this.#restartStream(endpointId, st);
    st.lastSeq = -1;
  }

  /** Drops every entry of an endpoint now (it left the fleet for good) and forgets its stream. */
  async forgetEndpoint(endpointId: string): Promise<void> {
    this.#streams.delete(endpointId);
    await this.index.clearEndpoint(endpointId);
  }

  /** The index's statistics with the indexer's `unknownParents`. */
  stats(): IndexStats {
    return { ...this.index.stats(), unknownParents: this.#stats.unknownParents };
  }

  /** Counters of the indexer. */
  indexerStats(): KvIndexerStats {
    return { ...this.#stats, batches: { ...this.#stats.batches } };
  }

  async #restartStream(endpointId: string, st: StreamState): Promise<void> {
    if (this.index.shared) st.mode = 'fresh';
    else {
      await this.index.clearEndpoint(endpointId);
      st.mode = 'force';
    }
  }

  async #toOps(endpointId: string, model: string, batch: KvEventBatch): Promise<EngineOp[]> {
    // Parents recorded before this batch, resolved in one call.
    const parents = new Set<bigint>();
    for (const ev of batch.events) {
      if (ev !== null && typeof ev === 'object' && ev.type === 'BlockStored' && typeof ev.parentBlockHash === 'bigint') parents.add(ev.parentBlockHash);
    }
    const before = new Map<bigint, RouterKey>();
    if (parents.size > 0) {
      const list = [...parents];
      const keys = await this.index.resolveEngineHashes(endpointId, list);
      list.forEach((h, i) => keys[i] !== undefined && before.set(h, keys[i] as RouterKey));
    }
    // This batch's own stores (parents of its later events), then what the index held before.
    const inBatch = new BatchParents();
    let cleared = false;
    const ops: EngineOp[] = [];
    for (const ev of batch.events) {
      const type = ev !== null && typeof ev === 'object' ? ev.type : undefined;
      if (type === 'AllBlocksCleared') {
        ops.push({ kind: 'clear' });
        inBatch.clear();
        cleared = true;
      } else if (type === 'BlockRemoved' && ev.type === 'BlockRemoved') {
        const tier = normalizeTier(ev.medium);
        if (tier === undefined || !allHashes(ev.blockHashes)) this.#malformed(endpointId, 'BlockRemoved with a bad medium or block hashes');
        else if (ev.blockHashes.length > 0) ops.push({ kind: 'remove', tier, engineHashes: ev.blockHashes });
      } else if (type === 'BlockStored' && ev.type === 'BlockStored') {
        const tier = normalizeTier(ev.medium);
        const n = Array.isArray(ev.blockHashes) ? ev.blockHashes.length : -1;
        if (tier === undefined || !allHashes(ev.blockHashes) || !validBlockSize(ev.blockSize) || !Array.isArray(ev.tokenIds) || ev.tokenIds.length !== n * ev.blockSize) {
          this.#malformed(endpointId, 'BlockStored with a bad medium, block hashes, block size or token count');
          continue;
        }
        if (n === 0) continue;
        let parent: RouterKey | undefined;
        if (ev.parentBlockHash === null) parent = this.keyer.root(model, ev.loraName ?? null);
        else parent = inBatch.get(ev.parentBlockHash) ?? (cleared ? undefined : before.get(ev.parentBlockHash));
        if (parent === undefined) {
          this.#stats.unknownParents++;
          continue;
        }
        let keys: Float64Array;
        try {
          keys = this.keyer.extendKeys(parent, ev.tokenIds, ev.blockSize);
        } catch {
          this.#malformed(endpointId, 'BlockStored with token ids that are not unsigned 32-bit integers');
          continue;
        }
        inBatch.add(ev.blockHashes, keys);
        ops.push({ kind: 'store', tier, engineHashes: ev.blockHashes, keys });
      } else {
        this.#malformed(endpointId, `unknown event type ${String(type)}`);
      }
    }
    return ops;
  }

  #malformed(endpointId: string, what: string): void {
    this.#stats.malformedEvents++;
    this.#log.debug({ endpoint: endpointId }, `KV event skipped: ${what}`);
  }
}

function allHashes(h: unknown): h is bigint[] {
  if (!Array.isArray(h)) return false;
  for (const x of h) if (typeof x !== 'bigint' || x < 0n) return false;
  return true;
}

function validBlockSize(b: number): boolean {
  try {
    checkBlockSize(b);
    return true;
  } catch {
    return false;
  }
}
