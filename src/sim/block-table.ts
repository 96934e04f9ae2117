/**
 * The prefix cache's hash -> block map of one simulated engine, on typed arrays: exact 64-bit
 * keys held as two 32-bit lanes, no BigInt, no allocation per lookup.
 *
 * ```
 *   open addressing, linear probing, power-of-two slots, load <= 1/2 (grows by doubling)
 *   slot s: keyHi[s], keyLo[s], head[s] (-1 = empty)
 *   head = the block lookups return for that hash; other blocks holding the same hash (vLLM does
 *   not de-duplicate) follow it in insertion order on a per-block chain (dupNext / dupPrev), so
 *   when the head is evicted the oldest duplicate takes its place
 *   delete: backward-shift (no tombstones), so probe lengths never degrade
 * ```
 *
 * The chain arrays are indexed by block id and grow with the highest block id seen.
 */

/** Hash -> head block, plus the duplicate chains (see the file comment). */
export class BlockTable {
  #hi: Uint32Array;
  #lo: Uint32Array;
  #head: Int32Array;
  #mask: number;
  #size = 0;
  #dupNext: Int32Array;
  #dupPrev: Int32Array;

  constructor(initialSlots = 1024) {
    let n = 16;
    while (n < initialSlots) n *= 2;
    this.#hi = new Uint32Array(n);
    this.#lo = new Uint32Array(n);
    this.#head = new Int32Array(n).fill(-1);
    this.#mask = n - 1;
    this.#dupNext = new Int32Array(64).fill(-1);
    this.#dupPrev = new Int32Array(64).fill(-1);
  }

  /** Distinct hashes held. */
  get size(): number {
    return this.#size;
  }

  /** Home slot: both lanes through MurmurHash3's fmix32 (every input bit reaches the low bits). */
  #home(hi: number, lo: number): number {
    let h = lo ^ Math.imul(hi, 0x9e3779b1);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h & this.#mask;
  }

  #slotOf(hi: number, lo: number): number {
    const head = this.#head;
    let s = this.#home(hi, lo);
    while (head[s] !== -1) {
      if (this.#lo[s] === lo && this.#hi[s] === hi) return s;
      s = (s + 1) & this.#mask;
    }
    return -1 - s;
  }

  /** The block lookups return for hash (hi, lo), or -1. */
  get(hi: number, lo: number): number {
    const s = this.#slotOf(hi, lo);
    return s >= 0 ? this.#head[s] : -1;
  }

  /** Records that `block` holds (hi, lo): the head if the hash is new, else the newest duplicate. */
  add(hi: number, lo: number, block: number): void {
    this.#ensureBlock(block);
    this.#dupNext[block] = -1;
    this.#dupPrev[block] = -1;
    const s = this.#slotOf(hi, lo);
    if (s >= 0) {
      let t = this.#head[s];
      while (this.#dupNext[t] !== -1) t = this.#dupNext[t];
      this.#dupNext[t] = block;
      this.#dupPrev[block] = t;
      return;
    }
    const e = -1 - s;
    this.#hi[e] = hi;
    this.#lo[e] = lo;
    this.#head[e] = block;
    if (++this.#size * 2 > this.#head.length) this.#grow();
  }

  /** `block` no longer holds (hi, lo); the oldest duplicate (if any) becomes the head. */
  remove(hi: number, lo: number, block: number): void {
    const s = this.#slotOf(hi, lo);
    if (s < 0) throw new Error(`block ${block}: hash not in the table`);
    const next = this.#dupNext[block];
    const prev = this.#dupPrev[block];
    this.#dupNext[block] = -1;
    this.#dupPrev[block] = -1;
    if (this.#head[s] === block) {
      if (next === -1) this.#deleteSlot(s);
      else {
        this.#dupPrev[next] = -1;
        this.#head[s] = next;
      }
      return;
    }
    if (prev === -1) throw new Error(`block ${block} does not hold that hash`);
    this.#dupNext[prev] = next;
    if (next !== -1) this.#dupPrev[next] = prev;
  }

  /** Forgets everything. */
  clear(): void {
    this.#head.fill(-1);
    this.#dupNext.fill(-1);
    this.#dupPrev.fill(-1);
    this.#size = 0;
  }

  #deleteSlot(s: number): void {
    const head = this.#head;
    const mask = this.#mask;
    let i = s;
    let j = s;
    for (;;) {
      j = (j + 1) & mask;
      if (head[j] === -1) break;
      const k = this.#home(this.#hi[j], this.#lo[j]);
      // Move j back to i unless its home lies cyclically in (i, j].
      if (i <= j ? k <= i || k > j : k <= i && k > j) {
        this.#hi[i] = this.#hi[j];
        this.#lo[i] = this.#lo[j];
        head[i] = head[j];
        i = j;
      }
    }
    head[i] = -1;
    this.#size--;
  }

  #grow(): void {
    const oh = this.#hi;
    const ol = this.#lo;
    const ob = this.#head;
    const n = ob.length * 2;
    this.#hi = new Uint32Array(n);
    this.#lo = new Uint32Array(n);
    this.#head = new Int32Array(n).fill(-1);
    this.#mask = n - 1;
    for (let s = 0; s < ob.length; s++) {
      if (ob[s] === -1) continue;
      let e = this.#home(oh[s], ol[s]);
      while (this.#head[e] !== -1) e = (e + 1) & this.#mask;
      this.#hi[e] = oh[s];
      this.#lo[e] = ol[s];
      this.#head[e] = ob[s];
    }
  }

  #ensureBlock(block: number): void {
    if (block < this.#dupNext.length) return;
    let n = this.#dupNext.length;
    while (n <= block) n *= 2;
    const nx = new Int32Array(n).fill(-1);
    const pv = new Int32Array(n).fill(-1);
    nx.set(this.#dupNext);
    pv.set(this.#dupPrev);
    this.#dupNext = nx;
    this.#dupPrev = pv;
  }
}
