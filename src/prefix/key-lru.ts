/**
 * A least-recently-used set of block keys (integers in [0, 2^53)), built for the approximate
 * index's per-endpoint upkeep: a pick touches 100-256 keys, most of them held already.
 *
 *   table:   BlockKeyTable key -> id
 *   recency: an intrusive doubly linked list over ids, prev[id] / next[id] (Int32Array),
 *            most recent at the head, least recent at the tail
 *
 * A touch is one probe in the open-addressing table and, for a held key, an unlink and a
 * relink at the head (a few typed-array writes): no `Map` delete and re-insert per key (what a
 * Map-ordered LRU does, leaving holes that cost rehashes and garbage), no log of touches to
 * compact. Eviction takes the tail.
 */
import { BlockKeyTable } from './block-key-table.js';

const NONE = -1;

/** LRU set of numeric block keys; see the file comment. */
export class KeyLru {
  readonly #table = new BlockKeyTable((n) => this.#grow(n), 64);
  #prev = new Int32Array(64);
  #next = new Int32Array(64);
  #head = NONE;
  #tail = NONE;
  #capacity: number;
  readonly #onEvict: ((key: number) => void) | undefined;

  /**
   * @param capacity most keys held (an integer >= 0; 0 holds nothing)
   * @param onEvict called for every key pushed out by capacity (touch or resize), not by delete/clear
   */
  constructor(capacity: number, onEvict?: (key: number) => void) {
    this.#capacity = KeyLru.#check(capacity);
    this.#onEvict = onEvict;
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
    if (!table.inserted) {
      if (id !== this.#head) {
        this.#unlink(id);
        this.#pushHead(id);
      }
      return false;
    }
    this.#pushHead(id);
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
    const next = this.#next;
    let id = this.#head;
    for (let b = 0; b < n; b++) {
      if (id === NONE || table.keyOf(id) !== keys[b]) return false;
      id = next[id];
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
    this.#head = this.#tail = NONE;
  }

  /** Keys from least to most recently used. */
  keys(): number[] {
    const out: number[] = [];
    for (let id = this.#tail; id !== NONE; id = this.#prev[id]) out.push(this.#table.keyOf(id));
    return out;
  }

  #pushHead(id: number): void {
    this.#prev[id] = NONE;
    this.#next[id] = this.#head;
    if (this.#head !== NONE) this.#prev[this.#head] = id;
    else this.#tail = id;
    this.#head = id;
  }

  #unlink(id: number): void {
    const p = this.#prev[id];
    const n = this.#next[id];
    if (p !== NONE) this.#next[p] = n;
    else this.#head = n;
    if (n !== NONE) this.#prev[n] = p;
    else this.#tail = p;
  }

  #evict(): void {
    while (this.#table.size > this.#capacity) {
      const id = this.#tail;
      const key = this.#table.keyOf(id);
      this.#unlink(id);
      this.#table.remove(id);
      this.#onEvict?.(key);
    }
  }

  #grow(n: number): void {
    const prev = new Int32Array(n);
    prev.set(this.#prev);
    this.#prev = prev;
    const next = new Int32Array(n);
    next.set(this.#next);
    this.#next = next;
  }
}
