/**
 * Router-side, approximate record of which endpoint holds which prompt blocks in its KV cache,
 * learned only from what the router sent where (no engine events).
 *
 * Layout:
 *
 *   per endpoint (by dense endpoint.index):  KeyLru of block keys   capacity = engine KV blocks
 *   global:                                  BlockKeyTable blockKey -> id, holders[id]: endpoint index[]
 *
 * The two stay consistent: a key enters `holders` when it enters an endpoint's LRU and leaves it
 * when that LRU evicts it (capacity, resize) or the endpoint is removed. A key with no holder is
 * dropped, so memory is bounded by the sum of the per-endpoint capacities.
 *
 * Capacity of an endpoint = its reported `metrics.numGpuBlocks` when known, else its cache
 * model's `capacityBlocks` (engine adapter), else `defaultCapacity` (llm-d's
 * `lruCapacityPerServer`, 31,250); it is re-read on each insert and the LRU resized when the
 * reported value changes.
 *
 * Slot engines (llama.cpp, `endpoint.cacheModel.kind === 'slots'`) keep one prompt per slot, not
 * a pool of blocks: the endpoint's entry is then N slots of key sequences (slot-set.ts). A new
 * prompt replaces the slot sharing the longest prefix with it (over 10 % of it), else the least
 * recently used slot, as llama-server picks slots; a key stays held while any slot holds it.
 * With 6 conversations on 2 slots, follow-ups of conversations whose slot was taken are
 * predicted as misses, as the engine recomputes them.
 *
 * Learned capacity (paged engines that report no capacity: the default applies). The engine's
 * own cached tokens correct the model ({@link ApproxPrefixIndex.observe}): predicted hits the
 * engine recomputed mean it keeps less than modelled, so after 3 of them in a row (one alone may
 * be a sibling that arrived while its prefix was still being prefilled) the endpoint's effective
 * capacity shrinks to 90 % of what the index holds for it (never below `MIN_LEARNED_CAPACITY`),
 * evicting its least recently used keys; each confirmed hit resets the streak and grows the
 * capacity back by 1 % towards the default. Endpoints reporting a capacity (vLLM
 * `num_gpu_blocks`, SGLang `max_total_num_tokens`) keep it.
 *
 * Lookup walks the request's keys once for all candidates: a candidate's run continues while it
 * holds every key so far; the walk stops as soon as no candidate's run continues.
 *
 * Upkeep only where it is read: `add` queues the pick (pending-picks.ts) and every read applies
 * the queue first, so reads see exactly what immediate upkeep would give. When nothing reads the
 * index (it is the precise scorer's fallback and precise routing serves every request), picks
 * cost a queue append, and each endpoint keeps only its newest picks covering
 * min(capacity, 8,192) keys for the day the fallback is needed.
 */
import type { Endpoint } from '../core/endpoint.js';
import { BlockKeyTable } from './block-key-table.js';
import { KeyLru } from './key-lru.js';
import { PendingPicks } from './pending-picks.js';
import { SlotSet } from './slot-set.js';

/** llm-d's default per-server LRU capacity (blocks) when the engine does not report one. */
export const DEFAULT_LRU_CAPACITY_PER_SERVER = 31_250;

/** Smallest capacity (blocks) learning may shrink an endpoint to. */
export const MIN_LEARNED_CAPACITY = 64;

/** Most keys of unapplied picks kept per endpoint while the index is not read. */
export const MAX_PENDING_KEYS = 8_192;

interface EndpointBlocks {
  id: string;
  /** Paged engines: LRU of block keys. */
  lru: KeyLru | undefined;
  /** Slot engines (llama.cpp): one key sequence per slot. */
  slots: SlotSet | undefined;
}

/** Per-endpoint LRUs of block keys plus a global key -> holders map; see the file comment. */
export class ApproxPrefixIndex {
  readonly defaultCapacity: number;
  /** Keys held by some endpoint; `#holders[id]` lists the endpoint indices (an emptied list is kept for the id's next key). */
  #global = new BlockKeyTable();
  #holders: number[][] = [];
  #endpoints: (EndpointBlocks | undefined)[] = [];
  #mark = new Uint32Array(64);
  #run = new Int32Array(64);
  /** Scratch of longestPrefix: the table ids of the request's keys. */
  #ids = new Int32Array(256);
  #gen = 0;
  /** Learned effective capacity per endpoint index (blocks); undefined = not learned. */
  #learned: (number | undefined)[] = [];
  #falseHits: number[] = [];
  readonly #pending = new PendingPicks<Endpoint>(MAX_PENDING_KEYS);

  /** @param defaultCapacity blocks kept per endpoint when it reports no `numGpuBlocks` */
  constructor(defaultCapacity = DEFAULT_LRU_CAPACITY_PER_SERVER) {
    this.defaultCapacity = defaultCapacity;
  }

  /** Number of distinct keys held by at least one endpoint. */
  get size(): number {
    this.#flush();
    return this.#global.size;
  }

  /** Number of keys held by `endpoint` (0 when unknown). */
  blocksOf(endpoint: Endpoint): number {
    this.#flush();
    const e = this.#endpoints[endpoint.index];
    return e !== undefined && e.id === endpoint.id ? (e.lru?.size ?? e.slots!.size) : 0;
  }

  /** Capacity currently applied to `endpoint`'s LRU in blocks (undefined when it holds nothing yet, or for a slot engine). */
  capacityOf(endpoint: Endpoint): number | undefined {
    this.#flush();
    const e = this.#endpoints[endpoint.index];
    return e !== undefined && e.id === endpoint.id ? e.lru?.capacity : undefined;
  }

  /** Slots modelled for `endpoint` (slot engines; undefined otherwise or when it holds nothing yet). */
  slotsOf(endpoint: Endpoint): number | undefined {
    this.#flush();
    const e = this.#endpoints[endpoint.index];
    return e !== undefined && e.id === endpoint.id ? e.slots?.capacity : undefined;
  }

  /**
   * Writes into `out[i]` the number of leading keys of `keys` that `candidates[i]` holds
   * consecutively from the first one.
   */
  longestPrefix(keys: ArrayLike<number>, candidates: readonly Endpoint[], out: Int32Array | Float64Array): void {
    this.#flush();
    const n = candidates.length;
    let maxIdx = 0;
    for (let i = 0; i < n; i++) if (candidates[i].index > maxIdx) maxIdx = candidates[i].index;
    this.#ensureScratch(maxIdx + 1);
    const gen = this.#nextGen();
    const mark = this.#mark;
    const run = this.#run;
    for (let i = 0; i < n; i++) {
      const c = candidates[i];
      const e = this.#endpoints[c.index];
      // An index slot reused by another endpoint id holds stale blocks: never match it.
      if (e !== undefined && e.id === c.id) {
        mark[c.index] = gen;
        run[c.index] = 0;
      }
    }
    const global = this.#global;
    const byId = this.#holders;
    const total = keys.length;
    if (this.#ids.length < total) this.#ids = new Int32Array(Math.max(total, this.#ids.length * 2));
    const ids = this.#ids;
    const typed = keys instanceof Float64Array;
    // Keys are resolved to table ids a chunk at a time (one tight probe loop), then walked.
    let found = 0;
    for (let b = 0; b < total; b++) {
      if (b === found) {
        if (typed) found = global.findRun(keys, b, Math.min(total, b + 32), ids);
        else {
          const id = global.find(keys[b]);
          if (id >= 0) ids[found++] = id;
        }
        if (found === b) break;
      }
      const holders = byId[ids[b]];
      let any = false;
      for (let h = 0; h < holders.length; h++) {
        const idx = holders[h];
        if (idx < mark.length && mark[idx] === gen && run[idx] === b) {
          run[idx] = b + 1;
          any = true;
        }
      }
      if (!any) break;
    }
    for (let i = 0; i < n; i++) {
      const idx = candidates[i].index;
      out[i] = mark[idx] === gen ? run[idx] : 0;
    }
  }

  /**
   * Records that `endpoint` now holds `keys` (after a pick). Keys are inserted last-to-first so
   * the prefix root is the most recently used and the tail is evicted first, as engines do.
   */
  add(endpoint: Endpoint, keys: ArrayLike<number>): void {
    if (keys.length > 0) this.#pending.push(endpoint, keys, this.#baseCapacity(endpoint));
  }

  #flush(): void {
    if (!this.#pending.empty) this.#pending.drain((endpoint, keys) => this.#apply(endpoint, keys));
  }

  #apply(endpoint: Endpoint, keys: ArrayLike<number>): void {
    const e = this.#entry(endpoint);
    const idx = endpoint.index;
    if (e.slots !== undefined) {
      e.slots.put(keys);
      return;
    }
    const lru = e.lru!;
    // Already the endpoint's most recent keys, in this order (the same prompt again): nothing to do.
    if (lru.headIs(keys)) return;
    for (let b = keys.length - 1; b >= 0; b--) {
      const k = keys[b];
      if (!(k >= 0 && k <= Number.MAX_SAFE_INTEGER && Number.isInteger(k))) continue; // not a block key (e.g. a bad remote pick)
      if (lru.touch(k)) this.#addHolder(k, idx);
    }
  }

  /**
   * Feedback from the engine for one finished request on `endpoint`: the index predicted
   * `predictedBlocks` leading blocks cached, the engine reported `actualBlocks` (its cached
   * tokens over the tokens per block). See "Learned capacity" in the file comment.
   */
  observe(endpoint: Endpoint, predictedBlocks: number, actualBlocks: number): void {
    this.#flush();
    const e = this.#endpoints[endpoint.index];
    if (e === undefined || e.id !== endpoint.id || e.lru === undefined || !(predictedBlocks >= 1) || !(actualBlocks >= 0)) return;
    const base = this.#baseCapacity(endpoint);
    const idx = endpoint.index;
    if (base !== this.defaultCapacity || this.#reported(endpoint)) return;
    if (predictedBlocks >= 4 && actualBlocks < predictedBlocks / 2) {
      this.#falseHits[idx] = (this.#falseHits[idx] ?? 0) + 1;
      if (this.#falseHits[idx] < 3) return;
      this.#falseHits[idx] = 0;
      const cap = Math.max(MIN_LEARNED_CAPACITY, Math.floor(Math.min(e.lru.size, e.lru.capacity) * 0.9));
      if (cap < e.lru.capacity) {
        this.#learned[idx] = cap;
        e.lru.resize(cap);
      }
    } else if (actualBlocks >= 0.8 * predictedBlocks) {
      this.#falseHits[idx] = 0;
      if (this.#learned[idx] === undefined) return;
      const cap = Math.min(base, Math.ceil(this.#learned[idx]! * 1.01) + 1);
      this.#learned[idx] = cap >= base ? undefined : cap;
    }
  }

  /** Effective capacity learned for `endpoint` from engine feedback (undefined = none learned). */
  learnedCapacityOf(endpoint: Pick<Endpoint, 'id' | 'index'>): number | undefined {
    this.#flush();
    const e = this.#endpoints[endpoint.index];
    return e !== undefined && e.id === endpoint.id ? this.#learned[endpoint.index] : undefined;
  }

  /** Forgets everything `endpoint` holds (removed from the pool, or its cache was reset). */
  removeEndpoint(endpoint: Pick<Endpoint, 'id' | 'index'>): void {
    this.#pending.drop(endpoint.id, endpoint.index);
    const e = this.#endpoints[endpoint.index];
    if (e === undefined || e.id !== endpoint.id) return;
    if (e.lru !== undefined) {
      for (const k of e.lru.keys()) this.#dropHolder(k, endpoint.index);
      e.lru.clear();
    } else {
      for (const k of e.slots!.keys()) this.#dropHolder(k, endpoint.index);
    }
    this.#endpoints[endpoint.index] = undefined;
    this.#learned[endpoint.index] = undefined;
    this.#falseHits[endpoint.index] = 0;
  }

  /** Forgets everything. */
  clear(): void {
    this.#pending.clear();
    this.#global = new BlockKeyTable();
    this.#holders = [];
    this.#endpoints = [];
    this.#learned = [];
    this.#falseHits = [];
  }

  /** Endpoint indices holding `key` (for tests and diagnostics). */
  holdersOf(key: number): readonly number[] {
    this.#flush();
    const id = Number.isSafeInteger(key) && key >= 0 ? this.#global.find(key) : -1;
    return id < 0 ? [] : this.#holders[id].slice();
  }

  #entry(endpoint: Endpoint): EndpointBlocks {
    const idx = endpoint.index;
    const model = endpoint.cacheModel;
    const slots = model?.kind === 'slots' ? Math.max(1, Math.floor(model.slots)) : undefined;
    let e = this.#endpoints[idx];
    // Another endpoint in this slot, or the cache model changed (engine detected late): start over.
    if (e !== undefined && (e.id !== endpoint.id || (slots === undefined) !== (e.slots === undefined))) {
      this.removeEndpoint({ id: e.id, index: idx });
      e = undefined;
    }
    const capacity = Math.min(this.#baseCapacity(endpoint), this.#learned[idx] ?? Infinity);
    if (e === undefined) {
      e = slots !== undefined
        ? { id: endpoint.id, lru: undefined, slots: this.#newSlots(idx, slots) }
        : { id: endpoint.id, lru: new KeyLru(capacity, (k) => this.#dropHolder(k, idx)), slots: undefined };
      this.#endpoints[idx] = e;
    } else if (e.lru !== undefined && e.lru.capacity !== capacity) {
      e.lru.resize(capacity);
    } else if (e.slots !== undefined && slots !== undefined && e.slots.capacity !== slots) {
      e.slots.resize(slots);
    }
    return e;
  }

  /** Whether the engine reports its capacity (then nothing is learned). */
  #reported(endpoint: Endpoint): boolean {
    const m = endpoint.cacheModel;
    return endpoint.metrics.numGpuBlocks !== undefined || (m?.kind === 'blocks' && m.capacityBlocks !== undefined);
  }

  /** Reported capacity (metrics, then cache model), else the default. */
  #baseCapacity(endpoint: Endpoint): number {
    const model = endpoint.cacheModel;
    const reported = endpoint.metrics.numGpuBlocks ?? (model?.kind === 'blocks' ? model.capacityBlocks : undefined);
    return reported !== undefined && reported > 0 ? Math.floor(reported) : this.defaultCapacity;
  }

  #newSlots(idx: number, n: number): SlotSet {
    return new SlotSet(n, {
      onHeld: (k) => this.#addHolder(k, idx),
      onReleased: (k) => this.#dropHolder(k, idx),
    });
  }

  #addHolder(key: number, idx: number): void {
    if (!(Number.isSafeInteger(key) && key >= 0)) return; // not a block key (a bad remote pick into a slot model): no lookup can match it
    const id = this.#global.upsert(key);
    const holders = this.#holders[id];
    if (holders === undefined) this.#holders[id] = [idx];
    else holders.push(idx); // (a fresh key's list is the empty one its id's last key left)
  }

  #dropHolder(key: number, idx: number): void {
    if (!(Number.isSafeInteger(key) && key >= 0)) return;
    const id = this.#global.find(key);
    if (id < 0) return;
    const holders = this.#holders[id];
    const at = holders.indexOf(idx);
    if (at < 0) return;
    holders[at] = holders[holders.length - 1];
    holders.pop();
    if (holders.length === 0) this.#global.remove(id);
  }

  #ensureScratch(n: number): void {
    if (this.#mark.length >= n) return;
    let len = this.#mark.length;
    while (len < n) len *= 2;
    const mark = new Uint32Array(len);
    mark.set(this.#mark);
    this.#mark = mark;
    this.#run = new Int32Array(len);
  }

  #nextGen(): number {
    this.#gen = (this.#gen + 1) >>> 0;
    if (this.#gen === 0) {
      this.#mark.fill(0);
      this.#gen = 1;
    }
    return this.#gen;
  }
}
