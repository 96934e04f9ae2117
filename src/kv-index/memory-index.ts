/**
 * The in-process block index: for one router, bounded, with a lookup that touches only the
 * holders of each key.
 *
 *   blocks: Map<key, [used, slot, tierMask, slot, tierMask, ...]>   insertion order ~ recency
 *   per endpoint slot: key set, engine-hash -> key map, extra copies, entry count, stream fence
 *
 * Endpoints are interned to small integer slots and tiers to bits of a mask, so a block entry is
 * one small number array. A lookup maps the candidates to their slots once (in a reused typed
 * array), then walks the request's keys: for each key it visits only the endpoints holding it,
 * extends the run of each candidate whose run reached this key, and stops at the first key that
 * continues no candidate's run.
 *
 * Reference counts: vLLM does not de-duplicate blocks (a fully cached prompt recomputes its last
 * block and stores the same hash again), so an engine batch's store of a (key, tier) the endpoint
 * already holds counts one more copy (`copies`, only for counts above 1), and a BlockRemoved drops
 * one copy; the entry goes with the last copy. Plain `add` / `remove` stay set operations.
 *
 * Bounds: `maxEntries` (block, endpoint, tier) entries and `maxBytes` estimated bytes; past them
 * blocks are evicted from the head of the recency order with a second chance (CLOCK): a block a
 * lookup hit since it was last moved has its `used` flag cleared and goes to the tail instead.
 * A store inserts a chain leaf first, so of a chain nobody reads the tail goes before the root,
 * and the roots every request reads (the hottest blocks) stay. Evictions are counted in
 * `evicted`. Adding a block that is already held refreshes it. Each endpoint's engine-hash map holds at most
 * `maxEngineHashesPerEndpoint` hashes; dropping the oldest also drops its block from that
 * endpoint (so the index never keeps an entry it could not remove).
 */
import { KvrError } from '../core/errors.js';
import type { RouterKey } from './block-keys.js';
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
import { DEFAULT_OTHER_TIER_WEIGHT, DEFAULT_TIER_WEIGHTS, popcount, TierBits, TierWeighter, type TierWeights } from './tiers.js';
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

// Estimated bytes: a Map entry with its array, one (slot, mask) pair plus its key-set entry,
// one engine-hash map entry (a bigint key).
const BLOCK_BYTES = 96;
const PAIR_BYTES = 48;
const ENGINE_BYTES = 88;

interface Slot {
  id: string;
  keys: Set<RouterKey>;
  engine: Map<bigint, RouterKey>;
  /** Copies beyond the first of (key, tier bit) stored by engine batches: key -> counts by bit. */
  copies: Map<RouterKey, number[]>;
  entries: number;
  fence: Fence | undefined;
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
  readonly #blocks = new Map<RouterKey, number[]>();
  readonly #slotOf = new Map<string, number>();
  readonly #slots: Slot[] = [];
  #candOf = new Int32Array(0);
  #entries = 0;
  #pairs = 0;
  #engineEntries = 0;
  #added = 0;
  #removed = 0;
  #evicted = 0;
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
    const runs = new Array<number>(n).fill(0);
    const weights = new Array<number>(n).fill(0);
    if (this.#candOf.length < this.#slots.length) {
      this.#candOf = new Int32Array(Math.max(this.#slots.length, this.#candOf.length * 2)).fill(-1);
    }
    const candOf = this.#candOf;
    let known = 0;
    for (let c = 0; c < n; c++) {
      const s = this.#slotOf.get(endpointIds[c]);
      if (s !== undefined && candOf[s] === -1) {
        candOf[s] = c;
        known++;
      }
    }
    if (known > 0) {
      const blocks = this.#blocks;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        if (typeof k !== 'number') break;
        const e = blocks.get(k);
        if (e === undefined) break;
        let cont = 0;
        for (let j = 1; j < e.length; j += 2) {
          const c = candOf[e[j]];
          if (c >= 0 && runs[c] === i) {
            runs[c] = i + 1;
            weights[c] += this.#tiers.weightOfMask(e[j + 1]);
            cont++;
          }
        }
        if (cont === 0) break;
        e[0] = 1; // second chance at eviction
      }
      for (let c = 0; c < n; c++) {
        const s = this.#slotOf.get(endpointIds[c]);
        if (s !== undefined) candOf[s] = -1;
      }
    }
    const out = new Array<PrefixRun>(n);
    for (let c = 0; c < n; c++) out[c] = { blocks: runs[c], weighted: weights[c] };
    return out;
  }

  async add(endpointId: string, tier: string, keys: ArrayLike<RouterKey>): Promise<void> {
    const slot = this.#slot(endpointId);
    const bit = this.#tiers.bit(tier);
    for (let i = keys.length - 1; i >= 0; i--) this.#addEntry(slot, keys[i], bit); // leaf first
    this.#enforceBounds();
  }

  async remove(endpointId: string, tier: string, keys: ArrayLike<RouterKey>): Promise<void> {
    const slot = this.#slotOf.get(endpointId);
    const bit = this.#tiers.knownBit(tier);
    if (slot === undefined || bit < 0) return;
    for (let i = 0; i < keys.length; i++) this.#removeEntry(slot, keys[i], 1 << bit);
  }

  async clearEndpoint(endpointId: string): Promise<void> {
    const slot = this.#slotOf.get(endpointId);
    if (slot !== undefined) this.#clearSlot(slot);
  }

  async applyEngineBatch(batch: EngineBatch): Promise<ApplyOutcome> {
    const slot = this.#slot(batch.endpointId);
    const s = this.#slots[slot];
    const part = batch.part ?? 0;
    const verdict = fenceDecision(s.fence, batch.seq, batch.ts, batch.mode, this.#tol, part);
    if (verdict === 'stale') return 'stale';
    // Validate everything before the first write, so a bad batch changes nothing.
    const bits: number[] = [];
    for (const op of batch.ops) {
      if (op.kind === 'clear') {
        bits.push(-1);
        continue;
      }
      if (op.kind === 'store' && op.keys.length !== op.engineHashes.length) {
        throw new KvrError('KVR_ERR_BAD_REQUEST', `store op: ${op.keys.length} keys for ${op.engineHashes.length} engine hashes`);
      }
      bits.push(op.kind === 'store' ? this.#tiers.bit(op.tier) : this.#tiers.knownBit(op.tier));
    }
    if (verdict === 'restart' || verdict === 'rebase') this.#clearSlot(slot);
    batch.ops.forEach((op, i) => {
      if (op.kind === 'clear') this.#clearSlot(slot);
      else if (op.kind === 'store') {
        // Leaf first: the chain's tail is older in the recency order than its root.
        for (let j = op.keys.length - 1; j >= 0; j--) {
          if (!this.#addEntry(slot, op.keys[j], bits[i])) this.#addCopy(s, op.keys[j], bits[i]);
          this.#remember(slot, op.engineHashes[j], op.keys[j]);
        }
      } else {
        for (const h of op.engineHashes) {
          const key = s.engine.get(h);
          if (key === undefined) continue;
          if (bits[i] >= 0 && this.#dropCopy(s, key, bits[i])) continue;
          const left = bits[i] < 0 ? this.#maskOf(slot, key) : this.#removeEntry(slot, key, 1 << bits[i]);
          if (left === 0) {
            s.engine.delete(h);
            this.#engineEntries--;
          }
        }
      }
    });
    s.fence = { seq: batch.seq, ts: batch.ts, next: part + 1 < (batch.parts ?? 1) ? part + 1 : 0 };
    this.#enforceBounds();
    return verdict === 'apply' ? 'applied' : verdict === 'restart' ? 'restarted' : 'rebased';
  }

  async resolveEngineHashes(endpointId: string, engineHashes: readonly bigint[]): Promise<(RouterKey | undefined)[]> {
    const slot = this.#slotOf.get(endpointId);
    const engine = slot === undefined ? undefined : this.#slots[slot].engine;
    return engineHashes.map((h) => engine?.get(h));
  }

  onIndexLost(_listener: () => void): void {
    // An in-process index is never lost behind the router's back.
  }

  stats(): IndexStats {
    const endpoints: Record<string, number> = {};
    for (const s of this.#slots) if (s.entries > 0) endpoints[s.id] = s.entries;
    return {
      backend: 'memory',
      available: true,
      entries: this.#entries,
      bytes: this.#bytes() + this.#engineEntries * ENGINE_BYTES,
      endpoints,
      added: this.#added,
      removed: this.#removed,
      evicted: this.#evicted,
      lookups: this.#lookups,
      errors: 0,
      unknownParents: 0,
    };
  }

  async close(): Promise<void> {
    this.#blocks.clear();
  }

  #bytes(): number {
    return this.#blocks.size * BLOCK_BYTES + this.#pairs * PAIR_BYTES;
  }

  #slot(endpointId: string): number {
    let s = this.#slotOf.get(endpointId);
    if (s === undefined) {
      s = this.#slots.length;
      this.#slots.push({ id: endpointId, keys: new Set(), engine: new Map(), copies: new Map(), entries: 0, fence: undefined });
      this.#slotOf.set(endpointId, s);
    }
    return s;
  }

  #maskOf(slot: number, key: RouterKey): number {
    const e = this.#blocks.get(key);
    if (e === undefined) return 0;
    for (let j = 1; j < e.length; j += 2) if (e[j] === slot) return e[j + 1];
    return 0;
  }

  /** Adds (key, tier) for `slot`; false when it was held already (only refreshed). */
  #addEntry(slot: number, key: RouterKey, bit: number): boolean {
    const mask = 1 << bit;
    let e = this.#blocks.get(key);
    if (e === undefined) {
      e = [0, slot, mask];
      this.#pairs++;
      this.#slots[slot].keys.add(key);
    } else {
      this.#blocks.delete(key); // re-inserted below: most recently stored
      let j = 1;
      while (j < e.length && e[j] !== slot) j += 2;
      if (j === e.length) {
        e.push(slot, mask);
        this.#pairs++;
        this.#slots[slot].keys.add(key);
      } else if ((e[j + 1] & mask) === 0) e[j + 1] |= mask;
      else {
        this.#blocks.set(key, e);
        return false;
      }
    }
    this.#blocks.set(key, e);
    this.#entries++;
    this.#slots[slot].entries++;
    this.#added++;
    return true;
  }

  /** One more copy of a (key, tier) the slot already holds. */
  #addCopy(s: Slot, key: RouterKey, bit: number): void {
    let c = s.copies.get(key);
    if (c === undefined) s.copies.set(key, (c = []));
    c[bit] = (c[bit] ?? 0) + 1;
  }

  /** Drops one extra copy of (key, tier); false when there was none (the entry itself must go). */
  #dropCopy(s: Slot, key: RouterKey, bit: number): boolean {
    const c = s.copies.get(key);
    if (c === undefined || !c[bit]) return false;
    if (--c[bit] === 0 && c.every((x) => !x)) s.copies.delete(key);
    return true;
  }

  /** Removes tiers `mask` of `slot` from `key`; returns the tiers left. */
  #removeEntry(slot: number, key: RouterKey, mask: number): number {
    const e = this.#blocks.get(key);
    if (e === undefined) return 0;
    let j = 1;
    while (j < e.length && e[j] !== slot) j += 2;
    if (j === e.length) return 0;
    const had = e[j + 1];
    const c = this.#slots[slot].copies.get(key);
    if (c !== undefined) {
      for (let b = 0; b < c.length; b++) if ((mask >> b) & 1) c[b] = 0;
      if (c.every((x) => !x)) this.#slots[slot].copies.delete(key);
    }
    const gone = popcount(had & mask);
    const left = had & ~mask;
    this.#entries -= gone;
    this.#slots[slot].entries -= gone;
    this.#removed += gone;
    if (left !== 0) {
      e[j + 1] = left;
      return left;
    }
    this.#dropPair(e, j, key, slot);
    return 0;
  }

  #dropPair(e: number[], j: number, key: RouterKey, slot: number): void {
    e.splice(j, 2);
    this.#pairs--;
    this.#slots[slot].keys.delete(key);
    if (e.length === 1) this.#blocks.delete(key);
  }

  #clearSlot(slot: number): void {
    const s = this.#slots[slot];
    for (const key of s.keys) {
      const e = this.#blocks.get(key);
      if (e === undefined) continue;
      for (let j = 1; j < e.length; j += 2) {
        if (e[j] !== slot) continue;
        const n = popcount(e[j + 1]);
        this.#entries -= n;
        this.#removed += n;
        e.splice(j, 2);
        this.#pairs--;
        break;
      }
      if (e.length === 1) this.#blocks.delete(key);
    }
    s.keys.clear();
    s.copies.clear();
    s.entries = 0;
    this.#engineEntries -= s.engine.size;
    s.engine.clear();
  }

  #remember(slot: number, hash: bigint, key: RouterKey): void {
    const engine = this.#slots[slot].engine;
    if (engine.has(hash)) engine.delete(hash);
    else this.#engineEntries++;
    engine.set(hash, key);
    while (engine.size > this.#maxEngine) {
      const [oldHash, oldKey] = engine.entries().next().value as [bigint, RouterKey];
      engine.delete(oldHash);
      this.#engineEntries--;
      const before = this.#entries;
      this.#removeEntry(slot, oldKey, -1);
      const n = before - this.#entries;
      this.#removed -= n;
      this.#evicted += n;
    }
  }

  #enforceBounds(): void {
    // Each block gets at most one second chance per pass, so this ends.
    let chances = this.#blocks.size;
    while (this.#blocks.size > 0 && (this.#entries > this.#maxEntries || this.#bytes() > this.#maxBytes)) {
      const [key, e] = this.#blocks.entries().next().value as [RouterKey, number[]];
      this.#blocks.delete(key);
      if (e[0] === 1 && chances-- > 0) {
        e[0] = 0;
        this.#blocks.set(key, e);
        continue;
      }
      for (let j = 1; j < e.length; j += 2) {
        const s = this.#slots[e[j]];
        const n = popcount(e[j + 1]);
        this.#entries -= n;
        s.entries -= n;
        this.#evicted += n;
        this.#pairs--;
        s.keys.delete(key);
        s.copies.delete(key);
      }
    }
  }
}
