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
 * A write whose `until` is a little out of order (keys known only after tokenization finished)
 * at worst reclaims that entry later; reads ({@link runFrom}) always compare against `now`, so
 * an entry past its expiry never counts, swept or not.
 */
import type { BlockKey } from '../kv-cache-services.js';

/** Records of (endpoint, keys, until), one per write, oldest first, in parallel arrays. */
class ExpiryFifo {
  #ep: string[] = [];
  #keys: ArrayLike<BlockKey>[] = [];
  #until: number[] = [];
  #head = 0;
  /** Keys referenced by the queued records. */
  keyCount = 0;
  /** Compact when keyCount exceeds this (raised after each compaction: O(1) amortized). */
  #limit = 65_536;

  get length(): number {
    return this.#until.length - this.#head;
  }

  push(ep: string, keys: ArrayLike<BlockKey>, until: number): void {
    this.#ep.push(ep);
    this.#keys.push(keys);
    this.#until.push(until);
    this.keyCount += keys.length;
  }

  /** Pops records with `until <= now`, oldest first, calling `drop` for each key. */
  popExpired(now: number, drop: (ep: string, key: BlockKey, until: number) => void): void {
    let h = this.#head;
    const until = this.#until;
    while (h < until.length && until[h] <= now) {
      const keys = this.#keys[h];
      for (let i = 0; i < keys.length; i++) drop(this.#ep[h], keys[i], until[h]);
      this.keyCount -= keys.length;
      this.#keys[h] = EMPTY;
      h++;
    }
    this.#head = h;
    if (h > 1024 && h * 2 > until.length) this.#keep(() => true);
  }

  /** Keeps the records `current` accepts (in order) and forgets the popped ones. */
  #keep(current: (ep: string, keys: ArrayLike<BlockKey>, until: number) => boolean): void {
    const ep: string[] = [];
    const keys: ArrayLike<BlockKey>[] = [];
    const until: number[] = [];
    let n = 0;
    for (let i = this.#head; i < this.#until.length; i++) {
      if (!current(this.#ep[i], this.#keys[i], this.#until[i])) continue;
      ep.push(this.#ep[i]);
      keys.push(this.#keys[i]);
      until.push(this.#until[i]);
      n += this.#keys[i].length;
    }
    this.#ep = ep;
    this.#keys = keys;
    this.#until = until;
    this.#head = 0;
    this.keyCount = n;
  }

  /**
   * Drops records none of whose keys is current any more, once the queued keys outnumber
   * 2 x `entries` + 65,536 (and twice what the last compaction kept): stale records are left
   * by refreshes of hot prefixes, shortenings and evictions.
   */
  compactIfStale(entries: number, current: (ep: string, keys: ArrayLike<BlockKey>, until: number) => boolean): void {
    if (this.keyCount <= Math.max(this.#limit, 2 * entries + 65_536)) return;
    this.#keep(current);
    this.#limit = 2 * this.keyCount;
  }

  clear(): void {
    this.#ep = [];
    this.#keys = [];
    this.#until = [];
    this.#head = 0;
    this.keyCount = 0;
  }
}

const EMPTY: ArrayLike<BlockKey> = [];

/** Speculative block keys per endpoint with O(expired) expiry (see the module comment). */
export class SpeculativeBlocks {
  readonly #byEndpoint = new Map<string, Map<BlockKey, number>>();
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
    let m = this.#byEndpoint.get(endpointId);
    if (m === undefined) {
      if (lowerOnly) return;
      m = new Map();
      this.#byEndpoint.set(endpointId, m);
    }
    let shortened = false;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const cur = m.get(k);
      if (lowerOnly) {
        if (cur !== undefined && until < cur) {
          m.set(k, until);
          shortened = true;
        }
        continue;
      }
      if (cur !== undefined) m.delete(k);
      else this.#size++;
      m.set(k, until);
    }
    // One record per write; the keys array is kept (not copied): callers never mutate it.
    if (!lowerOnly) this.#ttlFifo.push(endpointId, keys, until);
    else if (shortened) this.#graceFifo.push(endpointId, keys, until);
    while (m.size > this.maxPerEndpoint) {
      m.delete(m.keys().next().value as BlockKey);
      this.#size--;
    }
    const fifo = lowerOnly ? this.#graceFifo : this.#ttlFifo;
    fifo.compactIfStale(this.#size, this.#current);
  }

  /** How many of `keys[from..]` in a row `endpointId` holds unexpired at `now`. */
  runFrom(endpointId: string, keys: ArrayLike<BlockKey>, from: number, now: number): number {
    const m = this.#byEndpoint.get(endpointId);
    if (m === undefined) return 0;
    let j = from;
    while (j < keys.length) {
      const exp = m.get(keys[j]);
      if (exp === undefined || exp <= now) break;
      j++;
    }
    return j - from;
  }

  /** Drops the entries expired at `now`: O(records popped), see the module comment. */
  sweep(now: number): void {
    this.#ttlFifo.popExpired(now, this.#drop);
    this.#graceFifo.popExpired(now, this.#drop);
  }

  /** Forgets an endpoint's entries (its records are skipped when they come up). */
  removeEndpoint(endpointId: string): void {
    const m = this.#byEndpoint.get(endpointId);
    if (m === undefined) return;
    this.#size -= m.size;
    this.#byEndpoint.delete(endpointId);
    if (this.#byEndpoint.size === 0) {
      this.#ttlFifo.clear();
      this.#graceFifo.clear();
    }
  }

  readonly #current = (ep: string, keys: ArrayLike<BlockKey>, until: number): boolean => {
    const m = this.#byEndpoint.get(ep);
    if (m === undefined) return false;
    for (let i = 0; i < keys.length; i++) if (m.get(keys[i]) === until) return true;
    return false;
  };

  readonly #drop = (ep: string, key: BlockKey, until: number): void => {
    const m = this.#byEndpoint.get(ep);
    if (m === undefined || m.get(key) !== until) return; // refreshed, shortened, evicted or removed since
    m.delete(key);
    this.#size--;
    if (m.size === 0) this.#byEndpoint.delete(ep);
  };
}
