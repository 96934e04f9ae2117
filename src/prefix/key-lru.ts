/**
 * A least-recently-used set of block keys (integers in [0, 2^53)), built for the approximate
 * index's per-endpoint upkeep: a pick touches 100-256 keys, most of them held already.
 *
 *   table: KeyTable on the key's two 32-bit halves -> id; key[id], stamp[id] (last touch)
 *   fifo:  (id, stamp) of every touch, oldest first
 *
 * A touch is one probe in the open-addressing table, a stamp write and an append: no `Map`
 * delete and re-insert per key (what a Map-ordered LRU does, leaving holes that cost rehashes
 * and garbage). Eviction pops the fifo: an entry whose stamp is no longer its id's stamp was
 * superseded by a later touch (or the key left) and is skipped; the first live one is the least
 * recently used key. The fifo is compacted (live entries kept in order) when stale entries
 * outnumber live ones, so it stays within about twice the keys held.
 */
import { KeyTable } from '../kv-index/key-table.js';

const TWO_32 = 4294967296;

/** LRU set of numeric block keys; see the file comment. */
export class KeyLru {
  readonly #table = new KeyTable((n) => this.#grow(n), 64);
  #key = new Float64Array(64);
  #stamp = new Float64Array(64);
  #fifoId = new Int32Array(128);
  #fifoStamp = new Float64Array(128);
  #head = 0;
  #tail = 0;
  #seq = 0;
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
    const lo = key >>> 0;
    return this.#table.find(lo, (key - lo) / TWO_32, 0) >= 0;
  }

  /**
   * Makes `key` (an integer in [0, 2^53)) the most recently used, evicting the least recent keys
   * beyond capacity; true when it was not held.
   */
  touch(key: number): boolean {
    const lo = key >>> 0;
    const id = this.#table.upsert(lo, (key - lo) / TWO_32, 0);
    const fresh = this.#table.inserted;
    if (fresh) this.#key[id] = key;
    const s = ++this.#seq;
    this.#stamp[id] = s;
    if (this.#tail === this.#fifoId.length) this.#makeRoom();
    this.#fifoId[this.#tail] = id;
    this.#fifoStamp[this.#tail++] = s;
    if (fresh && this.#table.size > this.#capacity) this.#evict();
    return fresh;
  }

  /** Changes the capacity, evicting the least recent keys when it shrinks. */
  resize(capacity: number): void {
    this.#capacity = KeyLru.#check(capacity);
    this.#evict();
  }

  /** Forgets every key (no eviction callbacks). */
  clear(): void {
    this.#table.clear();
    this.#head = this.#tail = 0;
  }

  /** Keys from least to most recently used. */
  keys(): number[] {
    const out: number[] = [];
    for (let i = this.#head; i < this.#tail; i++) {
      const id = this.#fifoId[i];
      if (this.#stamp[id] === this.#fifoStamp[i]) out.push(this.#key[id]);
    }
    return out;
  }

  #evict(): void {
    while (this.#table.size > this.#capacity) {
      const id = this.#fifoId[this.#head];
      const s = this.#fifoStamp[this.#head++];
      if (this.#stamp[id] !== s) continue;
      this.#stamp[id] = -1;
      this.#table.remove(id);
      this.#onEvict?.(this.#key[id]);
    }
  }

  /** The fifo is full: drop stale entries, growing it only when live ones fill half of it. */
  #makeRoom(): void {
    let w = 0;
    for (let i = this.#head; i < this.#tail; i++) {
      const id = this.#fifoId[i];
      if (this.#stamp[id] !== this.#fifoStamp[i]) continue;
      this.#fifoId[w] = id;
      this.#fifoStamp[w++] = this.#fifoStamp[i];
    }
    this.#head = 0;
    this.#tail = w;
    if (w * 2 > this.#fifoId.length) {
      const ids = new Int32Array(this.#fifoId.length * 2);
      ids.set(this.#fifoId.subarray(0, w));
      const st = new Float64Array(ids.length);
      st.set(this.#fifoStamp.subarray(0, w));
      this.#fifoId = ids;
      this.#fifoStamp = st;
    }
  }

  #grow(n: number): void {
    const key = new Float64Array(n);
    key.set(this.#key);
    this.#key = key;
    const stamp = new Float64Array(n);
    stamp.set(this.#stamp);
    this.#stamp = stamp;
  }
}
