/**
 * Speculative block entries of the precise scorer: per endpoint, block key -> expiry (ms).
 *
 * Expiry costs O(expired), not O(entries). Entries get one of two lifetimes, each the same for
 * every entry: `ttl` when a request is picked (`set`), `grace` when its first token shortens it
 * (`set(..., lowerOnly)`). So each kind of write is pushed, as one (endpoint, keys, until)
 * record, onto its own FIFO, and within one FIFO `until` only grows (one clock, one duration).
 * `sweep(now)` pops records while their `until <= now` and deletes a key's entry only when it is
 * still current (its expiry equals the record's `until`): keys refreshed, shortened, evicted or
 * of a removed endpoint since are skipped.
 *
 * ```
 *   set(ep, keys, until)            map[ep][k] = until for each k; push (ep, keys, until) on the ttl FIFO
 *   set(ep, keys, until, lowerOnly) map[ep][k] = until where that lowers it; push on the grace FIFO
 *   sweep(now)                      for each FIFO: while head.until <= now: pop; for k of head.keys:
 *                                   delete map[ep][k] if it still equals head.until
 *   stale records                   when a FIFO's records hold more than 2 x entries + 65,536 keys,
 *                                   records with no current key are dropped: O(1) amortized
 * ```
 *
 * Storage: entries live in one open-addressing table keyed by (key's two 32-bit words, endpoint
 * slot) with the expiry and each endpoint's insertion order (a doubly linked list, for the
 * per-endpoint bound) in typed arrays indexed by entry id (src/kv-index/key-table.ts): no `Map`
 * of boxed numbers and no allocation per key. Endpoints are interned to dense slots. Keys that
 * are not router keys (integers in [0, 2^53); tests use strings) are interned to ids with a count
 * of the entries that use them, and enter the table with a high word no router key has.
 *
 * A write whose `until` is a little out of order (keys known only after tokenization finished)
 * at worst reclaims that entry later; reads ({@link runFrom}) always compare against `now`, so
 * an entry past its expiry never counts, swept or not.
 */
import { KeyTable, grownInt32 } from '../../kv-index/key-table.js';
import { NIL, SlotLists } from '../../kv-index/slot-lists.js';
import type { BlockKey } from '../kv-cache-services.js';
import { ExpiryFifo } from './expiry-fifo.js';

const TWO_32 = 4294967296;
/** High word of an interned (non-router) key: router keys stay below 2^53, so their high word below 2^21. */
const INTERNED_HI = 0xffffffff;

/** Speculative block keys per endpoint with O(expired) expiry (see the module comment). */
export class SpeculativeBlocks {
  /** (key low word, key high word, endpoint slot) -> entry id. */
  readonly #table = new KeyTable((n) => this.#grow(n), 4096);
  #until = new Float64Array(4096);
  /** Each endpoint's entries in insertion order (oldest first), by entry id. */
  readonly #lists = new SlotLists(4096);
  /** (key low word, key high word) -> key id, with the entries of each key (any endpoint) linked. */
  readonly #keys = new KeyTable((n) => this.#growKeys(n), 1024);
  #keyHead = new Int32Array(1024);
  #keyOf = new Int32Array(4096);
  #kPrev = new Int32Array(4096);
  #kNext = new Int32Array(4096);
  /** Scratch of {@link runsFrom}: candidate by slot, candidates by run end. */
  #candOf = new Int32Array(0);
  #atEnd = new Int32Array(0);
  readonly #slotOf = new Map<string, number>();
  readonly #count: number[] = [];
  /** Keys that are not router keys: key -> intern id, and per id the key and its entries. */
  readonly #internOf = new Map<BlockKey, number>();
  readonly #interned: BlockKey[] = [];
  readonly #internRefs: number[] = [];
  readonly #internFree: number[] = [];
  /** High word of the key last split by {@link #lo}. */
  #hi = 0;
  readonly #ttlFifo = new ExpiryFifo();
  readonly #graceFifo = new ExpiryFifo();
  #size = 0;

  /** `maxPerEndpoint`: most entries per endpoint, oldest insertion dropped first (0 = none kept). */
  constructor(readonly maxPerEndpoint: number) {}

  /** Entries held (expired ones not yet swept included). */
  get size(): number {
    return this.#size;
  }

  /** Keys referenced by queued expiry records, current and stale (tests: bounded by the entries). */
  get queuedRecords(): number {
    return this.#ttlFifo.keyCount + this.#graceFifo.keyCount;
  }

  /** Sets the expiry of `keys` on `endpointId` to `until` (`lowerOnly`: only where that shortens it). */
  set(endpointId: string, keys: ArrayLike<BlockKey>, until: number, lowerOnly: boolean): void {
    if (this.maxPerEndpoint === 0) return;
    let slot = this.#slotOf.get(endpointId);
    if (lowerOnly) {
      if (slot === undefined || this.#count[slot] === 0) return;
      let shortened = false;
      const t = this.#table;
      const u = this.#until;
      for (let i = 0; i < keys.length; i++) {
        const lo = this.#lo(keys[i], false);
        if (lo < 0) continue;
        const id = t.find(lo, this.#hi, slot);
        if (id >= 0 && until < u[id]) {
          u[id] = until;
          shortened = true;
        }
      }
      if (shortened) this.#graceFifo.push(slot, keys, until);
      this.#graceFifo.compactIfStale(this.#size, this.#current);
      return;
    }
    if (slot === undefined) slot = this.#addSlot(endpointId);
    const t = this.#table;
    for (let i = 0; i < keys.length; i++) {
      const lo = this.#lo(keys[i], true);
      const id = t.upsert(lo, this.#hi, slot);
      if (t.inserted) {
        this.#size++;
        this.#count[slot]++;
        if (this.#hi === INTERNED_HI) this.#internRefs[lo]++;
        this.#linkKey(lo, this.#hi, id);
      } else if (this.#lists.newest(slot) === id) {
        this.#until[id] = until;
        continue;
      } else this.#lists.unlink(slot, id);
      this.#until[id] = until;
      this.#lists.pushNewest(slot, id);
    }
    // One record per write; the keys array is kept (not copied): callers never mutate it.
    this.#ttlFifo.push(slot, keys, until);
    while (this.#count[slot] > this.maxPerEndpoint) this.#delete(this.#lists.oldest(slot));
    this.#ttlFifo.compactIfStale(this.#size, this.#current);
  }

  /** How many of `keys[from..]` in a row `endpointId` holds unexpired at `now`. */
  runFrom(endpointId: string, keys: ArrayLike<BlockKey>, from: number, now: number): number {
    const slot = this.#slotOf.get(endpointId);
    if (slot === undefined || this.#count[slot] === 0) return 0;
    const t = this.#table;
    const u = this.#until;
    let j = from;
    while (j < keys.length) {
      const lo = this.#lo(keys[j], false);
      if (lo < 0) break;
      const id = t.find(lo, this.#hi, slot);
      if (id < 0 || u[id] <= now) break;
      j++;
    }
    return j - from;
  }

  /**
   * {@link runFrom} for every candidate at once: `spec[c]` = how many of `keys[from[c]..]` in a
   * row `endpointIds[c]` holds unexpired at `now`. Visits only the entries of the keys some
   * candidate's run has reached (each key's entries are linked), not one probe per candidate:
   * O(candidates + keys + entries of the visited keys).
   */
  runsFrom(endpointIds: readonly string[], keys: ArrayLike<BlockKey>, from: ArrayLike<number>, now: number, spec: Int32Array): void {
    const n = endpointIds.length;
    const total = keys.length;
    spec.fill(0, 0, n);
    if (this.#size === 0 || total === 0) return;
    const slots = this.#lists.slots;
    if (this.#candOf.length < slots) this.#candOf = new Int32Array(Math.max(slots, this.#candOf.length * 2)).fill(-1);
    if (this.#atEnd.length < total + 1) this.#atEnd = new Int32Array(Math.max(total + 1, this.#atEnd.length * 2));
    const candOf = this.#candOf;
    const atEnd = this.#atEnd;
    atEnd.fill(0, 0, total + 1);
    let any = false;
    let dup = false;
    for (let c = 0; c < n; c++) {
      const slot = this.#slotOf.get(endpointIds[c]);
      if (slot === undefined || this.#count[slot] === 0) continue;
      if (candOf[slot] !== -1) dup = true;
      else candOf[slot] = c;
      const f = from[c];
      if (f < total) {
        atEnd[f]++;
        any = true;
      }
    }
    if (any && !dup) {
      const slotOfEntry = this.#table;
      const until = this.#until;
      const kNext = this.#kNext;
      for (let j = 0; j < total; j++) {
        if (atEnd[j] === 0) continue;
        const lo = this.#lo(keys[j], false);
        if (lo < 0) continue;
        const k = this.#keys.find(lo, this.#hi, 0);
        if (k < 0) continue;
        for (let e = this.#keyHead[k]; e !== NIL; e = kNext[e]) {
          const c = candOf[slotOfEntry.wordC(e)];
          if (c < 0 || from[c] + spec[c] !== j || until[e] <= now) continue;
          spec[c]++;
          atEnd[j]--;
          atEnd[j + 1]++;
        }
      }
    }
    for (let c = 0; c < n; c++) {
      const slot = this.#slotOf.get(endpointIds[c]);
      if (slot !== undefined) candOf[slot] = -1;
    }
    // Several candidates share an endpoint id: one probe per candidate, as runFrom does.
    if (dup) for (let c = 0; c < n; c++) spec[c] = from[c] < total ? this.runFrom(endpointIds[c], keys, from[c], now) : 0;
  }

  /** Drops the entries expired at `now`: O(records popped), see the module comment. */
  sweep(now: number): void {
    this.#ttlFifo.popExpired(now, this.#drop);
    this.#graceFifo.popExpired(now, this.#drop);
  }

  /** Forgets an endpoint's entries (its records are skipped when they come up). */
  removeEndpoint(endpointId: string): void {
    const slot = this.#slotOf.get(endpointId);
    if (slot === undefined) return;
    while (this.#lists.oldest(slot) !== NIL) this.#delete(this.#lists.oldest(slot));
    if (this.#size === 0) {
      this.#ttlFifo.clear();
      this.#graceFifo.clear();
    }
  }

  /**
   * The low table word of `k` (its high word is left in `#hi`); -1 for a key that is not a router
   * key and was never interned (when not `create`).
   */
  #lo(k: BlockKey, create: boolean): number {
    if (typeof k === 'number' && k >= 0 && k <= Number.MAX_SAFE_INTEGER && Number.isInteger(k)) {
      const lo = k >>> 0;
      this.#hi = (k - lo) / TWO_32;
      return lo;
    }
    this.#hi = INTERNED_HI;
    let id = this.#internOf.get(k);
    if (id === undefined) {
      if (!create) return -1;
      id = this.#internFree.pop() ?? this.#interned.length;
      this.#interned[id] = k;
      this.#internRefs[id] = 0;
      this.#internOf.set(k, id);
    }
    return id;
  }

  #addSlot(endpointId: string): number {
    const slot = this.#lists.slots;
    this.#slotOf.set(endpointId, slot);
    this.#lists.resetSlot(slot);
    this.#count.push(0);
    return slot;
  }

  /** Deletes entry `id` (its endpoint list, its table slot, its interned key's count). */
  #delete(id: number): void {
    const t = this.#table;
    const slot = t.wordC(id);
    this.#lists.unlink(slot, id);
    this.#unlinkKey(id);
    this.#count[slot]--;
    this.#size--;
    if (t.wordB(id) === INTERNED_HI) {
      const k = t.wordA(id);
      if (--this.#internRefs[k] === 0) {
        this.#internOf.delete(this.#interned[k]);
        this.#interned[k] = undefined as unknown as BlockKey;
        this.#internFree.push(k);
      }
    }
    t.remove(id);
  }

  #grow(n: number): void {
    const u = new Float64Array(n);
    u.set(this.#until);
    this.#until = u;
    this.#lists.grow(n);
    this.#keyOf = grownInt32(this.#keyOf, n);
    this.#kPrev = grownInt32(this.#kPrev, n);
    this.#kNext = grownInt32(this.#kNext, n);
  }

  #growKeys(n: number): void {
    this.#keyHead = grownInt32(this.#keyHead, n);
  }

  /** Adds entry `id` to the entries of key (lo, hi). */
  #linkKey(lo: number, hi: number, id: number): void {
    const k = this.#keys.upsert(lo, hi, 0);
    const head = this.#keys.inserted ? NIL : this.#keyHead[k];
    this.#keyOf[id] = k;
    this.#kPrev[id] = NIL;
    this.#kNext[id] = head;
    if (head !== NIL) this.#kPrev[head] = id;
    this.#keyHead[k] = id;
  }

  /** Takes entry `id` out of its key's entries (the key goes with its last entry). */
  #unlinkKey(id: number): void {
    const k = this.#keyOf[id];
    const prev = this.#kPrev[id];
    const next = this.#kNext[id];
    if (prev !== NIL) this.#kNext[prev] = next;
    else if (next !== NIL) this.#keyHead[k] = next;
    else {
      this.#keys.remove(k);
      return;
    }
    if (next !== NIL) this.#kPrev[next] = prev;
  }

  readonly #current = (slot: number, keys: ArrayLike<BlockKey>, until: number): boolean => {
    if (this.#count[slot] === 0) return false;
    for (let i = 0; i < keys.length; i++) {
      const lo = this.#lo(keys[i], false);
      if (lo < 0) continue;
      const id = this.#table.find(lo, this.#hi, slot);
      if (id >= 0 && this.#until[id] === until) return true;
    }
    return false;
  };

  readonly #drop = (slot: number, key: BlockKey, until: number): void => {
    const lo = this.#lo(key, false);
    if (lo < 0) return;
    const id = this.#table.find(lo, this.#hi, slot);
    if (id < 0 || this.#until[id] !== until) return; // refreshed, shortened, evicted or removed since
    this.#delete(id);
  };
}
