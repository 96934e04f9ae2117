/**
 * An open-addressing hash table from a block key (an integer in [0, 2^53), a JavaScript number)
 * to a stable small id: the primitive under the approximate index, its LRUs and the
 * common-prefix window, where a `Map` keyed by such numbers hashes a boxed heap number per
 * probe (V8's OrderedHashMap: ~200 instructions a lookup, measured under callgrind).
 *
 *   slots:  key[s] (Float64Array), idOf[s] = id + 1 (Int32Array, 0 = empty)
 *           power-of-two number of slots, load <= 1/2, linear probing
 *   ids:    pos[id] = the id's slot (kept when entries move), so `remove` needs no probe
 *
 * Hash: the key's low and high 32-bit halves mixed with Math.imul, the top bits of a Fibonacci
 * product pick the slot, so sequential keys (tests) and hash-valued keys (production) both
 * spread. Deletion shifts the following probe run back (no tombstones), so lookups never slow
 * down with churn. Freed ids are reused (LIFO); owners keep per-id data in parallel arrays, grown
 * through `onGrow`. Keys outside [0, 2^53) or not integers must not be passed (callers check).
 */

const TWO_32 = 4294967296;

/** Open-addressing map block key -> id; see the file comment. */
export class BlockKeyTable {
  #key: Float64Array;
  #idOf: Int32Array;
  #pos: Int32Array;
  #nextFree: Int32Array;
  #freeHead = -1;
  #top = 0;
  #size = 0;
  #shift: number;
  /** Whether the last {@link upsert} inserted its key. */
  inserted = false;
  readonly #onGrow: ((capacity: number) => void) | undefined;

  /**
   * @param onGrow called with the new id capacity whenever ids outgrow it (owners grow their arrays)
   * @param initial initial id capacity (a power of two >= 2)
   */
  constructor(onGrow?: (capacity: number) => void, initial = 64) {
    this.#onGrow = onGrow;
    this.#pos = new Int32Array(initial);
    this.#nextFree = new Int32Array(initial);
    this.#key = new Float64Array(initial * 2);
    this.#idOf = new Int32Array(initial * 2);
    this.#shift = 32 - Math.log2(initial * 2);
  }

  /** Ids in use. */
  get size(): number {
    return this.#size;
  }

  /** Current id capacity (owners' per-id arrays must be at least this long). */
  get capacity(): number {
    return this.#pos.length;
  }

  /** The key of `id` (an id in use). */
  keyOf(id: number): number {
    return this.#key[this.#pos[id]];
  }

  /** The id of `key`, or -1. */
  find(key: number): number {
    const keys = this.#key;
    const idOf = this.#idOf;
    const mask = keys.length - 1;
    for (let i = this.#home(key); ; i = (i + 1) & mask) {
      const s = idOf[i];
      if (s === 0) return -1;
      if (keys[i] === key) return s - 1;
    }
  }

  /**
   * Writes the ids of `keys[from..to)` into `ids[from..]` up to the first key that is absent;
   * returns the index of that key (`to` when all are present). One loop with the table's arrays
   * in locals: the batch form of {@link find} for the index's per-request walks.
   */
  findRun(keys: Float64Array, from: number, to: number, ids: Int32Array): number {
    const tk = this.#key;
    const idOf = this.#idOf;
    const mask = tk.length - 1;
    const shift = this.#shift;
    for (let b = from; b < to; b++) {
      const key = keys[b];
      const lo = key >>> 0;
      const hi = ((key - lo) / TWO_32) | 0;
      const h = Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1);
      let i = (h ^ (h >>> 15)) >>> shift;
      let s = idOf[i];
      while (s !== 0 && tk[i] !== key) {
        i = (i + 1) & mask;
        s = idOf[i];
      }
      if (s === 0) return b;
      ids[b] = s - 1;
    }
    return to;
  }

  /** Keys {@link upsertRun} inserted in its last call. */
  runInserted = 0;

  /**
   * Upserts `keys[from..to)` in order, writing their ids into `ids[from..]`, and stops before a
   * key that is not a block key or that would be insertion number `maxInserted + 1` (not
   * inserted); returns the index it stopped at (`to` when it did all). The batch form of
   * {@link upsert}; {@link runInserted} says how many it inserted.
   */
  upsertRun(keys: Float64Array, from: number, to: number, ids: Int32Array, maxInserted: number): number {
    let tk = this.#key;
    let idOf = this.#idOf;
    let mask = tk.length - 1;
    let inserted = 0;
    let b = from;
    for (; b < to; b++) {
      const key = keys[b];
      if (!(key >= 0 && key <= Number.MAX_SAFE_INTEGER && Math.floor(key) === key)) break;
      const lo = key >>> 0;
      const hi = ((key - lo) / TWO_32) | 0;
      const h = Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1);
      let i = (h ^ (h >>> 15)) >>> this.#shift;
      let s = idOf[i];
      while (s !== 0 && tk[i] !== key) {
        i = (i + 1) & mask;
        s = idOf[i];
      }
      if (s !== 0) {
        ids[b] = s - 1;
        continue;
      }
      if (inserted === maxInserted) break;
      inserted++;
      ids[b] = this.#insert(key, i);
      tk = this.#key;
      idOf = this.#idOf;
      mask = tk.length - 1;
    }
    this.runInserted = inserted;
    return b;
  }

  /**
   * The id of `key`, inserting it when absent (then {@link inserted} is true). The probe is kept
   * small so that hot loops inline it (a call would box the key); inserting is out of line.
   */
  upsert(key: number): number {
    const keys = this.#key;
    const idOf = this.#idOf;
    const mask = keys.length - 1;
    let i = this.#home(key);
    for (; ; i = (i + 1) & mask) {
      const s = idOf[i];
      if (s === 0) return this.#insert(key, i);
      if (keys[i] === key) {
        this.inserted = false;
        return s - 1;
      }
    }
  }

  /** Inserts `key` (absent) whose probe ended at the empty `slot`. */
  #insert(key: number, slot: number): number {
    let i = slot;
    let id = this.#freeHead;
    if (id >= 0) this.#freeHead = this.#nextFree[id];
    else {
      if (this.#top === this.#pos.length) this.#growIds();
      id = this.#top++;
    }
    this.#size++;
    if (this.#size * 2 > this.#key.length) {
      this.#rehash(this.#key.length * 2);
      const mask = this.#key.length - 1;
      i = this.#home(key);
      while (this.#idOf[i] !== 0) i = (i + 1) & mask;
    }
    this.#key[i] = key;
    this.#idOf[i] = id + 1;
    this.#pos[id] = i;
    this.inserted = true;
    return id;
  }

  /** Removes `id` (which must be in use); its id may be handed out again. */
  remove(id: number): void {
    const keys = this.#key;
    const idOf = this.#idOf;
    const mask = keys.length - 1;
    let i = this.#pos[id];
    // Backward-shift deletion: move later members of the probe run into the hole when their
    // home slot does not lie cyclically within (hole, their slot].
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const s = idOf[j];
      if (s === 0) break;
      const k = this.#home(keys[j]);
      if (i <= j ? i < k && k <= j : i < k || k <= j) continue;
      keys[i] = keys[j];
      idOf[i] = s;
      this.#pos[s - 1] = i;
      i = j;
    }
    idOf[i] = 0;
    this.#nextFree[id] = this.#freeHead;
    this.#freeHead = id;
    this.#size--;
  }

  /** Forgets every key (capacity is kept). */
  clear(): void {
    this.#idOf.fill(0);
    this.#freeHead = -1;
    this.#top = 0;
    this.#size = 0;
  }

  /** Home slot of `key`. */
  #home(key: number): number {
    const lo = key >>> 0;
    const hi = ((key - lo) / TWO_32) | 0;
    const h = Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1);
    return (h ^ (h >>> 15)) >>> this.#shift;
  }

  #rehash(slots: number): void {
    const oldKey = this.#key;
    const oldId = this.#idOf;
    const keys = new Float64Array(slots);
    const idOf = new Int32Array(slots);
    this.#key = keys;
    this.#idOf = idOf;
    this.#shift = 32 - Math.log2(slots);
    const mask = slots - 1;
    for (let j = 0; j < oldId.length; j++) {
      const s = oldId[j];
      if (s === 0) continue;
      let i = this.#home(oldKey[j]);
      while (idOf[i] !== 0) i = (i + 1) & mask;
      keys[i] = oldKey[j];
      idOf[i] = s;
      this.#pos[s - 1] = i;
    }
  }

  #growIds(): void {
    const cap = this.#pos.length * 2;
    const pos = new Int32Array(cap);
    pos.set(this.#pos);
    this.#pos = pos;
    const next = new Int32Array(cap);
    next.set(this.#nextFree);
    this.#nextFree = next;
    this.#onGrow?.(cap);
  }
}
