/**
 * An open-addressing hash table from a key of three unsigned 32-bit words to a stable small
 * integer id: the primitive under the memory block index (block keys, engine hashes), where a
 * JavaScript `Map` would cost a boxed number or a BigInt per key and a rehash per few thousand
 * writes.
 *
 *   index:  slots[4h .. 4h+3] = w0, w1, w2, id + 1 (0 = empty)
 *           power-of-two number of slots, load <= 1/2, linear probing; the key words sit
 *           beside the id, so a probe reads one cache line
 *   ids:    pos[id]                           the id's slot (word index), kept when entries move,
 *                                             so `remove` and the key words of an id need no probe
 *
 * An id stays the same while its key is present, so owners keep their own per-id data in
 * parallel typed arrays (grown through `onGrow`). Freed ids are reused (LIFO). Deletion shifts
 * the following probe run back (no tombstones), so lookups never slow down with churn.
 * Hash: the words are mixed with Math.imul and the top bits of a Fibonacci product pick the slot,
 * so sequential keys (tests) and hash-valued keys (production) both spread.
 */

const EMPTY_FREE = -1;

/** Open-addressing map (w0, w1, w2) -> id; see the file comment. */
export class KeyTable {
  #pos: Int32Array;
  #nextFree: Int32Array;
  #freeHead = EMPTY_FREE;
  #top = 0;
  #size = 0;
  #slots: Uint32Array;
  /** Whether the last {@link upsert} inserted its key. */
  inserted = false;
  #shift: number;
  readonly #onGrow: (capacity: number) => void;

  /**
   * @param onGrow called with the new id capacity whenever ids outgrow it (owners grow their arrays)
   * @param initial initial id capacity (a power of two)
   */
  constructor(onGrow: (capacity: number) => void, initial = 1024) {
    this.#onGrow = onGrow;
    this.#pos = new Int32Array(initial);
    this.#nextFree = new Int32Array(initial);
    this.#slots = new Uint32Array(initial * 8);
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

  /** First word of the key of `id` (an id in use). */
  wordA(id: number): number {
    return this.#slots[this.#pos[id]];
  }

  /** Second word of the key of `id`. */
  wordB(id: number): number {
    return this.#slots[this.#pos[id] + 1];
  }

  /** Third word of the key of `id`. */
  wordC(id: number): number {
    return this.#slots[this.#pos[id] + 2];
  }

  /** The id of key (a, b, c), or -1. */
  find(a: number, b: number, c: number): number {
    const slots = this.#slots;
    const mask = slots.length - 4;
    for (let i = this.#home(a, b, c); ; i = (i + 4) & mask) {
      const s = slots[i + 3];
      if (s === 0) return -1;
      if (slots[i] === a && slots[i + 1] === b && slots[i + 2] === c) return s - 1;
    }
  }

  /**
   * The id of key (a, b, c), inserting the key when absent (then {@link inserted} is true):
   * one probe pass for a lookup that usually becomes a write.
   */
  upsert(a: number, b: number, c: number): number {
    let slots = this.#slots;
    let mask = slots.length - 4;
    let i = this.#home(a, b, c);
    for (; ; i = (i + 4) & mask) {
      const s = slots[i + 3];
      if (s === 0) break;
      if (slots[i] === a && slots[i + 1] === b && slots[i + 2] === c) {
        this.inserted = false;
        return s - 1;
      }
    }
    let id = this.#freeHead;
    if (id !== EMPTY_FREE) this.#freeHead = this.#nextFree[id];
    else {
      if (this.#top === this.#pos.length) this.#growIds();
      id = this.#top++;
    }
    this.#size++;
    if (this.#size * 8 > slots.length) {
      this.#rehash(slots.length * 2);
      slots = this.#slots;
      mask = slots.length - 4;
      i = this.#home(a, b, c);
      while (slots[i + 3] !== 0) i = (i + 4) & mask;
    }
    slots[i] = a;
    slots[i + 1] = b;
    slots[i + 2] = c;
    slots[i + 3] = id + 1;
    this.#pos[id] = i;
    this.inserted = true;
    return id;
  }

  /** Removes `id` (which must be in use); its id may be handed out again. */
  remove(id: number): void {
    const slots = this.#slots;
    const mask = slots.length - 4;
    let i = this.#pos[id];
    // Backward-shift deletion: move later members of the probe run into the hole when their
    // home slot does not lie cyclically within (hole, their slot].
    for (let j = (i + 4) & mask; ; j = (j + 4) & mask) {
      if (slots[j + 3] === 0) break;
      const k = this.#home(slots[j], slots[j + 1], slots[j + 2]);
      if (i <= j ? i < k && k <= j : i < k || k <= j) continue;
      slots.copyWithin(i, j, j + 4);
      this.#pos[slots[i + 3] - 1] = i;
      i = j;
    }
    slots[i + 3] = 0;
    this.#nextFree[id] = this.#freeHead;
    this.#freeHead = id;
    this.#size--;
  }

  /** Forgets every key (capacity is kept). */
  clear(): void {
    this.#slots.fill(0);
    this.#freeHead = EMPTY_FREE;
    this.#top = 0;
    this.#size = 0;
  }

  /** Index (in words) of the home slot of key (a, b, c). */
  #home(a: number, b: number, c: number): number {
    const h = Math.imul(a ^ Math.imul(b, 0x85ebca6b) ^ Math.imul(c, 0xc2b2ae35), 0x9e3779b1);
    return ((h ^ (h >>> 15)) >>> this.#shift) << 2;
  }

  #place(slots: Uint32Array, a: number, b: number, c: number, idPlus1: number): void {
    const mask = slots.length - 4;
    let i = this.#home(a, b, c);
    while (slots[i + 3] !== 0) i = (i + 4) & mask;
    slots[i] = a;
    slots[i + 1] = b;
    slots[i + 2] = c;
    slots[i + 3] = idPlus1;
    this.#pos[idPlus1 - 1] = i;
  }

  #rehash(words: number): void {
    const old = this.#slots;
    const slots = new Uint32Array(words);
    this.#slots = slots;
    this.#shift = 32 - Math.log2(words / 4);
    for (let i = 0; i < old.length; i += 4) if (old[i + 3] !== 0) this.#place(slots, old[i], old[i + 1], old[i + 2], old[i + 3]);
  }

  #growIds(): void {
    const cap = this.#pos.length * 2;
    const grow = <T extends Uint32Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.#pos = grow(this.#pos, (n) => new Int32Array(n));
    this.#nextFree = grow(this.#nextFree, (n) => new Int32Array(n));
    this.#onGrow(cap);
  }
}

/** Grows a typed array to `n` elements, keeping its content (new elements are `fill`). */
export function grownInt32(a: Int32Array<ArrayBuffer>, n: number, fill = 0): Int32Array<ArrayBuffer> {
  if (a.length >= n) return a;
  const b = new Int32Array(n);
  b.set(a);
  if (fill !== 0) b.fill(fill, a.length);
  return b;
}
