/**
 * The expiry records of the speculative entries (speculative-blocks.ts): one record (endpoint
 * slot, keys, until) per write, oldest first, in parallel arrays. Within one FIFO `until` only
 * grows (one clock, one duration), so expiry pops from the head: O(records popped). Records none
 * of whose keys is current any more (refreshed, shortened, evicted) are dropped in amortized O(1)
 * once they outnumber the entries (`compactIfStale`).
 */
import type { BlockKey } from '../kv-cache-services.js';

const EMPTY: ArrayLike<BlockKey> = [];

/** Records of (endpoint slot, keys, until), one per write, oldest first, in parallel arrays. */
export class ExpiryFifo {
  #ep: number[] = [];
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

  push(ep: number, keys: ArrayLike<BlockKey>, until: number): void {
    this.#ep.push(ep);
    this.#keys.push(keys);
    this.#until.push(until);
    this.keyCount += keys.length;
  }

  /** Pops records with `until <= now`, oldest first, calling `drop` for each key. */
  popExpired(now: number, drop: (ep: number, key: BlockKey, until: number) => void): void {
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
  #keep(current: (ep: number, keys: ArrayLike<BlockKey>, until: number) => boolean): void {
    const ep: number[] = [];
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
  compactIfStale(entries: number, current: (ep: number, keys: ArrayLike<BlockKey>, until: number) => boolean): void {
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

