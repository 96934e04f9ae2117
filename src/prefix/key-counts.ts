/**
 * Counts per key, with block keys (integers in [0, 2^53)) in an open-addressing table over typed
 * arrays (BlockKeyTable) and any other key in a `Map`: the common-prefix window adds and drops a few
 * hundred keys per request, which a `Map` of boxed numbers does several times slower.
 *
 * Every counted key has an id, stable while its count is positive: a block key's table id (>= 0),
 * or for any other key -1 - its index in a side list. Callers that counted a key may take it back
 * by id ({@link decrementId}) without hashing or probing it again.
 */
import { BlockKeyTable } from './block-key-table.js';

const isBlockKey = (k: unknown): k is number => typeof k === 'number' && Number.isSafeInteger(k) && k >= 0;

/** Key -> positive count (a key whose count drops to 0 is forgotten). */
export class KeyCounts<K> {
  readonly #table = new BlockKeyTable((n) => this.#grow(n), 256);
  #count = new Int32Array(256);
  /** Other keys: key -> index into the side lists. */
  readonly #other = new Map<K, number>();
  readonly #otherKey: (K | undefined)[] = [];
  readonly #otherCount: number[] = [];
  readonly #otherFree: number[] = [];
  /** The count of the key before the last {@link incrementId}. */
  before = 0;

  /** Distinct keys counted. */
  get size(): number {
    return this.#table.size + this.#other.size;
  }

  /** The count of `k` (0 when absent). */
  get(k: K): number {
    if (!isBlockKey(k)) {
      const i = this.#other.get(k);
      return i === undefined ? 0 : this.#otherCount[i];
    }
    const id = this.#table.find(k);
    return id < 0 ? 0 : this.#count[id];
  }

  /** Adds one to `k`; returns the count before. */
  increment(k: K): number {
    this.incrementId(k);
    return this.before;
  }

  /** Adds one to `k`; returns its id (the count before is left in {@link before}). */
  incrementId(k: K): number {
    // Block keys inline (the common case, in a loop per request); anything else out of line.
    if (typeof k !== 'number' || !(k >= 0 && k <= Number.MAX_SAFE_INTEGER && Math.floor(k) === k)) return this.#incrementOther(k);
    const table = this.#table;
    const id = table.upsert(k);
    const c = table.inserted ? 0 : this.#count[id];
    this.#count[id] = c + 1;
    this.before = c;
    return id;
  }

  #incrementOther(k: K): number {
    let i = this.#other.get(k);
    if (i === undefined) {
      i = this.#otherFree.pop() ?? this.#otherKey.length;
      this.#otherKey[i] = k;
      this.#otherCount[i] = 0;
      this.#other.set(k, i);
    }
    this.before = this.#otherCount[i]++;
    return -1 - i;
  }

  /** Keys {@link incrementRun} counted for the first time in its last call. */
  runFresh = 0;

  /**
   * Adds one to each of `keys[from..to)` in order, their ids into `ids[from..]`, stopping before
   * a key that is not a block key or that would be the `maxFresh + 1`-th key counted for the
   * first time; returns where it stopped. The batch form of {@link incrementId} (a free id's
   * count is always 0, so every counted id just gains one).
   */
  incrementRun(keys: Float64Array, from: number, to: number, ids: Int32Array, maxFresh: number): number {
    const end = this.#table.upsertRun(keys, from, to, ids, maxFresh);
    this.runFresh = this.#table.runInserted;
    const count = this.#count;
    for (let b = from; b < end; b++) count[ids[b]]++;
    return end;
  }

  /** Takes one from `k` (which must be counted). */
  decrement(k: K): void {
    if (!isBlockKey(k)) {
      const i = this.#other.get(k);
      if (i !== undefined) this.decrementId(-1 - i);
      return;
    }
    const id = this.#table.find(k);
    if (id >= 0) this.decrementId(id);
  }

  /** Takes one from the key of `id` (an id from {@link incrementId} whose count is still positive). */
  decrementId(id: number): void {
    if (id >= 0) {
      if (--this.#count[id] <= 0) {
        this.#count[id] = 0; // (a free id's count stays 0: incrementRun relies on it)
        this.#table.remove(id);
      }
      return;
    }
    const i = -1 - id;
    if (--this.#otherCount[i] > 0) return;
    this.#other.delete(this.#otherKey[i] as K);
    this.#otherKey[i] = undefined;
    this.#otherFree.push(i);
  }

  #grow(n: number): void {
    const c = new Int32Array(n);
    c.set(this.#count);
    this.#count = c;
  }
}
