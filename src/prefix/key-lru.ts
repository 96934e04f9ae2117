/**
 * A least-recently-used set of block keys (integers in [0, 2^53)), built for the approximate
 * index's per-endpoint upkeep: a pick touches 100-256 keys, most of them held already.
 *
 *   table:   BlockKeyTable key -> id
 *   recency: one intrusive list over the ids (SlotLists, the kv-index's, with one slot):
 *            least recent (oldest) to most recent (newest)
 *
 * A touch is one probe in the open-addressing table and, for a held key, an unlink and a
 * relink at the head (a few typed-array writes): no `Map` delete and re-insert per key (what a
 * Map-ordered LRU does, leaving holes that cost rehashes and garbage), no log of touches to
 * compact. Eviction takes the tail.
 */
import { NIL, SlotLists } from '../kv-index/slot-lists.js';
import { BlockKeyTable } from './block-key-table.js';

/** The one list of {@link SlotLists} a KeyLru uses. */
const LIST = 0;

/** LRU set of numeric block keys; see the file comment. */
export class KeyLru {
  readonly #table = new BlockKeyTable((n) => this.#lists.grow(n), 64);
  readonly #lists = new SlotLists(64);
  #capacity: number;
  readonly #onEvict: ((key: number) => void) | undefined;

  /**
   * @param capacity most keys held (an integer >= 0; 0 holds nothing)
   * @param onEvict called for every key pushed out by capacity (touch or resize), not by delete/clear
   */
  constructor(capacity: number, onEvict?: (key: number) => void) {
    this.#capacity = KeyLru.#check(capacity);
    this.#onEvict = onEvict;
    this.#lists.resetSlot(LIST);
  }

  static #check(c: number): number {
    if (!Number.isInteger(c) || c < 0) throw new RangeError(`LRU capacity must be an integer >= 0, got ${c}`);
    return c;
  }

  /** Most keys held. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Keys held. */
  get size(): number {
    return this.#table.size;
  }

  /** True when `key` is held (does not touch it). */
  has(key: number): boolean {
    return this.#table.find(key) >= 0;
  }

  /**
   * Makes `key` (an integer in [0, 2^53)) the most recently used, evicting the least recent keys
   * beyond capacity; true when it was not held.
   */
  touch(key: number): boolean {
    const table = this.#table;
    const id = table.upsert(key);
    const lists = this.#lists;
    if (!table.inserted) {
      if (id !== lists.newest(LIST)) {
        lists.unlink(LIST, id);
        lists.pushNewest(LIST, id);
      }
      return false;
    }
    lists.pushNewest(LIST, id);
    if (table.size > this.#capacity) this.#evict();
    return true;
  }

  /**
   * True when the most recent keys are exactly `keys`, in order (`keys[0]` the most recent): then
   * touching `keys` last-to-first would change nothing. A walk over the list, no hashing (a
   * prompt sent again to where it went last, e.g. a retry or a repeated request).
   */
  headIs(keys: ArrayLike<number>): boolean {
    const n = keys.length;
    if (n > this.#table.size) return false;
    const table = this.#table;
    const lists = this.#lists;
    let id = lists.newest(LIST);
    for (let b = 0; b < n; b++) {
      if (id === NIL || table.keyOf(id) !== keys[b]) return false;
      id = lists.prev(id);
    }
    return true;
  }

  /** Changes the capacity, evicting the least recent keys when it shrinks. */
  resize(capacity: number): void {
    this.#capacity = KeyLru.#check(capacity);
    this.#evict();
  }

  /** Forgets every key (no eviction callbacks). */
  clear(): void {
    this.#table.clear();
    this.#lists.resetSlot(LIST);
  }

  /** Keys from least to most recently used. */
  keys(): number[] {
    const out: number[] = [];
    for (let id = this.#lists.oldest(LIST); id !== NIL; id = this.#lists.next(id)) out.push(this.#table.keyOf(id));
    return out;
  }

  #evict(): void {
    while (this.#table.size > this.#capacity) {
      const id = this.#lists.oldest(LIST);
      const key = this.#table.keyOf(id);
      this.#lists.unlink(LIST, id);
      this.#table.remove(id);
      this.#onEvict?.(key);
    }
  }
}
