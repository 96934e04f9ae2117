/**
 * A fixed-size open-addressing hash table from a pair of token ids to a BPE merge: its rank and,
 * once resolved, the id of the merged token. Typed arrays only, so building 280k merges costs a
 * few milliseconds and lookups allocate nothing (a Map keyed by `left * 2^21 + right` stores
 * heap numbers and costs ~20x more to build).
 *
 * Algorithm: capacity is the power of two >= 2 x the expected entries; slot = mix(left, right)
 * & mask, linear probing; `left = -1` marks an empty slot. No deletion (merges never go away).
 */

/** Merged id not resolved yet. */
export const UNRESOLVED = -2;

/** Pair -> (rank, merged id) table. See the module comment. */
export class PairTable {
  readonly #mask: number;
  readonly #left: Int32Array;
  readonly #right: Int32Array;
  readonly #rank: Int32Array;
  readonly #merged: Int32Array;
  #size = 0;

  /** @param expected entries it will hold (it never grows: inserting more than 2x this throws) */
  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.#mask = cap - 1;
    this.#left = new Int32Array(cap).fill(-1);
    this.#right = new Int32Array(cap);
    this.#rank = new Int32Array(cap);
    this.#merged = new Int32Array(cap).fill(UNRESOLVED);
  }

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  #slot(a: number, b: number): number {
    const left = this.#left;
    let s = ((Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x632be5ab, 0x85ebca6b)) >>> 0) & this.#mask;
    while (left[s] !== -1 && (left[s] !== a || this.#right[s] !== b)) s = (s + 1) & this.#mask;
    return s;
  }

  /** Sets the rank of (a, b) (ids >= 0), replacing an earlier one. */
  set(a: number, b: number, rank: number): void {
    const s = this.#slot(a, b);
    if (this.#left[s] === -1) {
      if (this.#size * 2 >= this.#left.length) throw new Error('PairTable is full');
      this.#size++;
      this.#left[s] = a;
      this.#right[s] = b;
    }
    this.#rank[s] = rank;
  }

  /** The slot of (a, b), or -1 when the pair has no merge. */
  find(a: number, b: number): number {
    const s = this.#slot(a, b);
    return this.#left[s] === -1 ? -1 : s;
  }

  /** Rank of the merge in `slot` (from {@link PairTable.find}). */
  rank(slot: number): number {
    return this.#rank[slot];
  }

  /** Merged id of `slot`, or {@link UNRESOLVED}. */
  merged(slot: number): number {
    return this.#merged[slot];
  }

  /** Records the merged id of `slot`. */
  setMerged(slot: number, id: number): void {
    this.#merged[slot] = id;
  }
}
