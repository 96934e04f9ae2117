/**
 * Counts per key, with block keys (integers in [0, 2^53)) in an open-addressing table over typed
 * arrays (KeyTable) and any other key in a `Map`: the common-prefix window adds and drops a few
 * hundred keys per request, which a `Map` of boxed numbers does several times slower.
 */
import { KeyTable } from '../kv-index/key-table.js';

const TWO_32 = 4294967296;

const isBlockKey = (k: unknown): k is number => typeof k === 'number' && Number.isSafeInteger(k) && k >= 0;

/** Key -> positive count (a key whose count drops to 0 is forgotten). */
export class KeyCounts<K> {
  readonly #table = new KeyTable((n) => this.#grow(n), 256);
  #count = new Int32Array(256);
  readonly #other = new Map<K, number>();

  /** Distinct keys counted. */
  get size(): number {
    return this.#table.size + this.#other.size;
  }

  /** The count of `k` (0 when absent). */
  get(k: K): number {
    if (!isBlockKey(k)) return this.#other.get(k) ?? 0;
    const lo = k >>> 0;
    const id = this.#table.find(lo, (k - lo) / TWO_32, 0);
    return id < 0 ? 0 : this.#count[id];
  }

  /** Adds one to `k`; returns the count before. */
  increment(k: K): number {
    if (!isBlockKey(k)) {
      const c = this.#other.get(k) ?? 0;
      this.#other.set(k, c + 1);
      return c;
    }
    const lo = k >>> 0;
    const id = this.#table.upsert(lo, (k - lo) / TWO_32, 0);
    const c = this.#table.inserted ? 0 : this.#count[id];
    this.#count[id] = c + 1;
    return c;
  }

  /** Takes one from `k` (which must be counted). */
  decrement(k: K): void {
    if (!isBlockKey(k)) {
      const c = (this.#other.get(k) ?? 1) - 1;
      if (c <= 0) this.#other.delete(k);
      else this.#other.set(k, c);
      return;
    }
    const lo = k >>> 0;
    const id = this.#table.find(lo, (k - lo) / TWO_32, 0);
    if (id < 0) return;
    if (--this.#count[id] <= 0) this.#table.remove(id);
  }

  #grow(n: number): void {
    const c = new Int32Array(n);
    c.set(this.#count);
    this.#count = c;
  }
}
