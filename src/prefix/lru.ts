/**
 * A generic least-recently-used map with O(1) get / set / delete / evict.
 *
 * It rides on `Map`'s insertion order: the first key is the least recently used, the last the
 * most recent. A touch is a delete + re-insert; an eviction removes the first key.
 *
 *   oldest ─► [k1][k2][k3] … [kn] ◄─ newest      set(k) when full: evict k1, append k
 *
 * Evicted entries are reported to `onEvict` (not called for explicit `delete` or `clear`).
 */
export class Lru<K, V> {
  #map = new Map<K, V>();
  #capacity: number;
  readonly #onEvict: ((key: K, value: V) => void) | undefined;

  /**
   * @param capacity maximum number of entries (>= 0; 0 keeps nothing)
   * @param onEvict called for every entry pushed out by capacity (set or resize)
   */
  constructor(capacity: number, onEvict?: (key: K, value: V) => void) {
    this.#capacity = Lru.#checkCapacity(capacity);
    this.#onEvict = onEvict;
  }

  static #checkCapacity(c: number): number {
    if (!Number.isInteger(c) || c < 0) throw new RangeError(`LRU capacity must be an integer >= 0, got ${c}`);
    return c;
  }

  /** Maximum number of entries. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Current number of entries. */
  get size(): number {
    return this.#map.size;
  }

  /** True when `key` is present (does not touch it). */
  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** The value for `key` without touching it. */
  peek(key: K): V | undefined {
    return this.#map.get(key);
  }

  /** The value for `key`, marking it most recently used. */
  get(key: K): V | undefined {
    const m = this.#map;
    if (!m.has(key)) return undefined;
    const v = m.get(key) as V;
    m.delete(key);
    m.set(key, v);
    return v;
  }

  /**
   * Inserts or updates `key` as most recently used, evicting the least recent entries beyond
   * capacity. Returns true when the key was new.
   */
  set(key: K, value: V): boolean {
    const m = this.#map;
    const existed = m.delete(key);
    if (this.#capacity === 0) {
      if (!existed) this.#onEvict?.(key, value);
      return !existed;
    }
    m.set(key, value);
    if (!existed) this.#trim();
    return !existed;
  }

  /** Removes `key`; returns true when it was present. */
  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  /** Removes everything (no eviction callbacks). */
  clear(): void {
    this.#map.clear();
  }

  /** Changes the capacity, evicting the least recent entries when it shrinks. */
  resize(capacity: number): void {
    this.#capacity = Lru.#checkCapacity(capacity);
    this.#trim();
  }

  /** Keys from least to most recently used. */
  keys(): IterableIterator<K> {
    return this.#map.keys();
  }

  #trim(): void {
    const m = this.#map;
    while (m.size > this.#capacity) {
      const oldest = m.keys().next().value as K;
      const v = m.get(oldest) as V;
      m.delete(oldest);
      this.#onEvict?.(oldest, v);
    }
  }
}
