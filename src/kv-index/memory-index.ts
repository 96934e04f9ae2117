/**
 * The in-process block index: for one router, bounded, with a lookup that touches only the
 * holders of each key, and a write path with no allocation per block.
 *
 *   blocks:    BlockStore   key -> holder pairs (slot, tier mask), recency order, per-slot lists
 *   engine:    EngineHashMap (slot, engine hash) -> router key, per-slot order of last store
 *   per slot:  endpoint id, stream fence
 *
 * Both stores are open-addressing tables over typed arrays keyed by 32-bit words (a router key's
 * two halves; a slot and an engine hash's two halves), so applying an event costs a few array
 * reads and writes and no `Map` of boxed numbers or BigInts (block-store.ts, engine-hash-map.ts).
 * Endpoints are interned to small integer slots and tiers to bits of a mask. A lookup maps the
 * candidates to their slots once (in a reused typed array), then walks the request's keys: for
 * each key it visits only the endpoints holding it, extends the run of each candidate whose run
 * reached this key, and stops at the first key that continues no candidate's run.
 *
 * Reference counts: vLLM does not de-duplicate blocks (a fully cached prompt recomputes its last
 * block and stores the same hash again), so an engine batch's store of a (key, tier) the endpoint
 * already holds counts one more copy (only for counts above 1), and a BlockRemoved drops one
 * copy; the entry goes with the last copy. Plain `add` / `remove` stay set operations.
 *
 * Bounds: `maxEntries` (block, endpoint, tier) entries and `maxBytes` estimated bytes; past them
 * blocks are evicted from the head of the recency order with a second chance (CLOCK): a block a
 * lookup hit since it was last moved has its flag cleared and goes to the tail instead. A store
 * inserts a chain leaf first, so of a chain nobody reads the tail goes before the root, and the
 * roots every request reads (the hottest blocks) stay. Evictions are counted in `evicted`. Adding
 * a block that is already held refreshes it. Each endpoint's engine-hash map holds at most
 * `maxEngineHashesPerEndpoint` hashes; dropping the oldest also drops its block from that
 * endpoint (so the index never keeps an entry it could not remove).
 *
 * Keys must be RouterKeys (integers in [0, 2^53)) and engine hashes unsigned 64-bit; a write with
 * anything else is refused whole (KVR_ERR_BAD_REQUEST) before it changes anything.
 */
import { KvrError } from '../core/errors.js';
import type { RouterKey } from './block-keys.js';
import { BlockStore, isRouterKey } from './block-store.js';
import { checkEngineHashes, EngineHashMap, splitHash, splitHi } from './engine-hash-map.js';
import {
  DEFAULT_CLOCK_TOLERANCE_S,
  fenceDecision,
  type ApplyOutcome,
  type BlockKey,
  type EngineBatch,
  type Fence,
  type KvBlockIndex,
  type PrefixRun,
} from './kv-block-index.js';
import { DEFAULT_OTHER_TIER_WEIGHT, DEFAULT_TIER_WEIGHTS, TierBits, TierWeighter, type TierWeights } from './tiers.js';
import type { IndexStats } from './types.js';

/** Options of {@link MemoryBlockIndex}. */
export interface MemoryBlockIndexOptions {
  /** Most (block, endpoint, tier) entries held (default 4,000,000). */
  maxEntries?: number;
  /** Most estimated bytes held by blocks and entries (default 512 MiB). */
  maxBytes?: number;
  /** Most engine hashes remembered per endpoint (default 500,000). */
  maxEngineHashesPerEndpoint?: number;
  /** Tier weights (default GPU 1.0, CPU 0.8) and the weight of other tiers (default 0.5). */
  tierWeights?: TierWeights;
  otherTierWeight?: number;
  /** Tolerated publisher clock step back within a stream, seconds (default 5). */
  clockToleranceS?: number;
}

/** Estimated bytes of one remembered engine hash (table words, key, list links, index slots). */
const ENGINE_BYTES = 44;

/** Throws KVR_ERR_BAD_REQUEST unless every key is a RouterKey. */
function checkKeys(keys: ArrayLike<unknown>): void {
  for (let i = 0; i < keys.length; i++) {
    if (!isRouterKey(keys[i])) throw new KvrError('KVR_ERR_BAD_REQUEST', `block key ${String(keys[i])} is not a router key (an integer in [0, 2^53))`);
  }
}

/** The in-memory {@link KvBlockIndex}. */
export class MemoryBlockIndex implements KvBlockIndex {
  readonly backend = 'memory' as const;
  readonly shared = false;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #maxEngine: number;
  readonly #tol: number;
  readonly #tiers: TierBits;
  readonly #store = new BlockStore();
  readonly #engine = new EngineHashMap();
  readonly #slotOf = new Map<string, number>();
  readonly #ids: string[] = [];
  readonly #fences: (Fence | undefined)[] = [];
  #candOf = new Int32Array(0);
  /** Lookup scratch, by candidate: run length, weighted run, endpoint slot (-1 = unknown). */
  #runs = new Int32Array(0);
  #weights = new Float64Array(0);
  #candSlot = new Int32Array(0);
  #lookups = 0;

  constructor(opts: MemoryBlockIndexOptions = {}) {
    this.#maxEntries = opts.maxEntries ?? 4_000_000;
    this.#maxBytes = opts.maxBytes ?? 512 * 1024 * 1024;
    this.#maxEngine = opts.maxEngineHashesPerEndpoint ?? 500_000;
    this.#tol = opts.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S;
    this.#tiers = new TierBits(new TierWeighter(opts.tierWeights ?? DEFAULT_TIER_WEIGHTS, opts.otherTierWeight ?? DEFAULT_OTHER_TIER_WEIGHT));
    for (const [name, v] of [['maxEntries', this.#maxEntries], ['maxBytes', this.#maxBytes], ['maxEngineHashesPerEndpoint', this.#maxEngine]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new KvrError('KVR_ERR_CONFIG', `memory index: ${name} must be an integer >= 1, got ${String(v)}`);
    }
  }

  async lookup(keys: ArrayLike<BlockKey>, endpointIds: readonly string[]): Promise<PrefixRun[]> {
    return this.lookupSync(keys, endpointIds);
  }

  /** {@link lookup} without the promise (for callers inside the process that want no tick). */
  lookupSync(keys: ArrayLike<BlockKey>, endpointIds: readonly string[]): PrefixRun[] {
    this.#lookups++;
    const n = endpointIds.length;
    if (this.#runs.length < n) {
      const cap = Math.max(n, this.#runs.length * 2);
      this.#runs = new Int32Array(cap);
      this.#weights = new Float64Array(cap);
      this.#candSlot = new Int32Array(cap);
    }
    const runs = this.#runs;
    const weights = this.#weights;
    const candSlot = this.#candSlot;
    if (this.#candOf.length < this.#ids.length) {
      this.#candOf = new Int32Array(Math.max(this.#ids.length, this.#candOf.length * 2)).fill(-1);
    }
    const candOf = this.#candOf;
    let known = 0;
    for (let c = 0; c < n; c++) {
      runs[c] = 0;
      weights[c] = 0;
      const s = this.#slotOf.get(endpointIds[c]);
      candSlot[c] = s ?? -1;
      if (s !== undefined && candOf[s] === -1) {
        candOf[s] = c;
        known++;
      }
    }
    if (known > 0) {
      this.#store.walk(keys, candOf, runs, weights, this.#tiers);
      for (let c = 0; c < n; c++) if (candSlot[c] >= 0) candOf[candSlot[c]] = -1;
    }
    const out = new Array<PrefixRun>(n);
    for (let c = 0; c < n; c++) out[c] = { blocks: runs[c], weighted: weights[c] };
    return out;
  }

  async add(endpointId: string, tier: string, keys: ArrayLike<RouterKey>): Promise<void> {
    checkKeys(keys);
    const bit = this.#tiers.bit(tier);
    const slot = this.#slot(endpointId);
    for (let i = keys.length - 1; i >= 0; i--) this.#store.add(slot, keys[i], bit); // leaf first
    this.#enforceBounds();
  }

  async remove(endpointId: string, tier: string, keys: ArrayLike<RouterKey>): Promise<void> {
    const slot = this.#slotOf.get(endpointId);
    const bit = this.#tiers.knownBit(tier);
    if (slot === undefined || bit < 0) return;
    for (let i = 0; i < keys.length; i++) if (isRouterKey(keys[i])) this.#store.remove(slot, keys[i], 1 << bit);
  }

  async clearEndpoint(endpointId: string): Promise<void> {
    const slot = this.#slotOf.get(endpointId);
    if (slot !== undefined) this.#clearSlot(slot);
  }

  async applyEngineBatch(batch: EngineBatch): Promise<ApplyOutcome> {
    const slot = this.#slot(batch.endpointId);
    const part = batch.part ?? 0;
    const verdict = fenceDecision(this.#fences[slot], batch.seq, batch.ts, batch.mode, this.#tol, part);
    if (verdict === 'stale') return 'stale';
    // Validate everything before the first write, so a bad batch changes nothing.
    const ops = batch.ops;
    const bits = new Array<number>(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      if (op.kind === 'clear') {
        bits[i] = -1;
        continue;
      }
      if (op.kind === 'store') {
        if (op.keys.length !== op.engineHashes.length) {
          throw new KvrError('KVR_ERR_BAD_REQUEST', `store op: ${op.keys.length} keys for ${op.engineHashes.length} engine hashes`);
        }
        checkKeys(op.keys);
      }
      checkEngineHashes(op.engineHashes);
      bits[i] = op.kind === 'store' ? this.#tiers.bit(op.tier) : this.#tiers.knownBit(op.tier);
    }
    if (verdict === 'restart' || verdict === 'rebase') this.#clearSlot(slot);
    const store = this.#store;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      const bit = bits[i];
      if (op.kind === 'clear') this.#clearSlot(slot);
      else if (op.kind === 'store') {
        // Leaf first: the chain's tail is older in the recency order than its root.
        for (let j = op.keys.length - 1; j >= 0; j--) {
          const key = op.keys[j];
          if (!store.add(slot, key, bit)) store.addCopy(slot, key, bit);
          this.#remember(slot, op.engineHashes[j], key);
        }
      } else {
        for (const h of op.engineHashes) {
          const lo = splitHash(h);
          const id = this.#engine.find(slot, lo, splitHi());
          if (id < 0) continue;
          const key = this.#engine.keyOf(id);
          if (bit >= 0 && store.dropCopy(slot, key, bit)) continue;
          const left = bit < 0 ? store.maskOf(slot, key) : store.remove(slot, key, 1 << bit);
          if (left === 0) this.#engine.delete(slot, id);
        }
      }
    }
    const next = part + 1 < (batch.parts ?? 1) ? part + 1 : 0;
    const fence = this.#fences[slot];
    if (fence === undefined) this.#fences[slot] = { seq: batch.seq, ts: batch.ts, next };
    else {
      fence.seq = batch.seq;
      fence.ts = batch.ts;
      fence.next = next;
    }
    this.#enforceBounds();
    return verdict === 'apply' ? 'applied' : verdict === 'restart' ? 'restarted' : 'rebased';
  }

  async resolveEngineHashes(endpointId: string, engineHashes: readonly bigint[]): Promise<(RouterKey | undefined)[]> {
    const slot = this.#slotOf.get(endpointId);
    const out = new Array<RouterKey | undefined>(engineHashes.length);
    for (let i = 0; i < engineHashes.length; i++) {
      const h = engineHashes[i];
      const ok = slot !== undefined && typeof h === 'bigint' && h >= 0n && h <= 0xffffffffffffffffn;
      const id = ok ? this.#engine.find(slot, splitHash(h), splitHi()) : -1;
      out[i] = id < 0 ? undefined : this.#engine.keyOf(id);
    }
    return out;
  }

  onIndexLost(_listener: () => void): void {
    // An in-process index is never lost behind the router's back.
  }

  stats(): IndexStats {
    const endpoints: Record<string, number> = {};
    for (let s = 0; s < this.#ids.length; s++) {
      const n = this.#store.entriesOf(s);
      if (n > 0) endpoints[this.#ids[s]] = n;
    }
    const st = this.#store;
    return {
      backend: 'memory',
      available: true,
      entries: st.entries,
      bytes: st.bytes() + this.#engine.size * ENGINE_BYTES,
      endpoints,
      added: st.added,
      removed: st.removed,
      evicted: st.evicted,
      lookups: this.#lookups,
      errors: 0,
      unknownParents: 0,
    };
  }

  async close(): Promise<void> {
    this.#store.clear();
    for (let s = 0; s < this.#ids.length; s++) this.#engine.clearSlot(s);
  }

  #slot(endpointId: string): number {
    let s = this.#slotOf.get(endpointId);
    if (s === undefined) {
      s = this.#ids.length;
      this.#ids.push(endpointId);
      this.#fences.push(undefined);
      this.#store.addSlot(s);
      this.#engine.addSlot(s);
      this.#slotOf.set(endpointId, s);
    }
    return s;
  }

  #clearSlot(slot: number): void {
    this.#store.clearSlot(slot);
    this.#engine.clearSlot(slot);
  }

  /** Remembers engine hash -> key for `slot`; past the per-endpoint cap the oldest hash and its block go. */
  #remember(slot: number, hash: bigint, key: RouterKey): void {
    const engine = this.#engine;
    const lo = splitHash(hash);
    engine.set(slot, lo, splitHi(), key);
    while (engine.countOf(slot) > this.#maxEngine) {
      const old = engine.oldestOf(slot);
      const oldKey = engine.keyOf(old);
      engine.delete(slot, old);
      this.#store.remove(slot, oldKey, -1, true);
    }
  }

  #enforceBounds(): void {
    this.#store.enforce(this.#maxEntries, this.#maxBytes);
  }
}
