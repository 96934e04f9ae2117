/**
 * The storage of the memory block index: which endpoint slot holds which block key in which
 * tiers, in typed arrays, with no allocation per block once warm.
 *
 *   blocks (id from a KeyTable on the key's two 32-bit halves):
 *     used[id]              second-chance flag, set by lookups
 *     rPrev[id], rNext[id]  recency list, oldest -> newest (a store moves a block to newest)
 *     head[id]              first holder pair of the block
 *   pairs (one per (block, endpoint slot)):
 *     pSlot, pMask (tier bits), pBlock, pNext (the block's holders, singly linked),
 *     ePrev, eNext (the slot's pairs, doubly linked, so a slot clears in O(its entries))
 *   copies: pair id -> extra copies by tier bit (rare: vLLM stores a recomputed block again)
 *
 * Entries are (block, slot, tier) triples: a pair holding two tiers is two entries. Eviction
 * (second chance, CLOCK): the oldest block goes, unless a lookup read it since it was last moved,
 * then its flag is cleared and it moves to newest instead; each block gets at most one second
 * chance per pass, so a pass ends.
 */
import { KeyTable, grownInt32 } from './key-table.js';
import { popcount, type TierBits } from './tiers.js';

const NIL = -1;
const TWO_32 = 4294967296;

/** Estimated bytes of a block (its per-id arrays and index slots) and of a holder pair. */
export const BLOCK_BYTES = 40;
export const PAIR_BYTES = 28;

/** True when `k` is a {@link RouterKey}: an integer in [0, 2^53). */
export function isRouterKey(k: unknown): k is number {
  return typeof k === 'number' && Number.isSafeInteger(k) && k >= 0;
}

/** Blocks, holder pairs and their orders; see the file comment. */
export class BlockStore {
  readonly #table = new KeyTable((n) => this.#growBlocks(n));
  #used = new Uint8Array(1024);
  #rPrev = new Int32Array(1024);
  #rNext = new Int32Array(1024);
  #head = new Int32Array(1024);
  #oldest = NIL;
  #newest = NIL;
  #pSlot = new Int32Array(1024);
  #pMask = new Int32Array(1024);
  #pBlock = new Int32Array(1024);
  #pNext = new Int32Array(1024);
  #ePrev = new Int32Array(1024);
  #eNext = new Int32Array(1024);
  #pFree = NIL;
  #pTop = 0;
  #pairs = 0;
  readonly #eHead: number[] = [];
  readonly #slotEntries: number[] = [];
  readonly #copies = new Map<number, number[]>();
  /** (block, slot, tier) entries held. */
  entries = 0;
  /** Entries added / removed / evicted since start. */
  added = 0;
  removed = 0;
  evicted = 0;

  /** Distinct blocks held. */
  get blocks(): number {
    return this.#table.size;
  }

  /** Estimated bytes of blocks and pairs. */
  bytes(): number {
    return this.#table.size * BLOCK_BYTES + this.#pairs * PAIR_BYTES;
  }

  /** Entries of `slot`. */
  entriesOf(slot: number): number {
    return this.#slotEntries[slot] ?? 0;
  }

  /** Makes `slot` known (slots are numbered 0, 1, 2, ... by the index). */
  addSlot(slot: number): void {
    this.#eHead[slot] = NIL;
    this.#slotEntries[slot] = 0;
  }

  /** The block id of `key` (a valid RouterKey), or -1. */
  find(key: number): number {
    const lo = key >>> 0;
    return this.#table.find(lo, (key - lo) / TWO_32, 0);
  }

  /**
   * The lookup walk: `candOf[slot]` = candidate index or -1. For each key in turn, extends the run
   * of each candidate whose run reached it (adding the tier weight) and marks the block read; stops
   * at the first key no candidate continues, or that is not a RouterKey.
   */
  walk(keys: ArrayLike<unknown>, candOf: Int32Array, runs: Int32Array, weights: Float64Array, tiers: TierBits): void {
    const head = this.#head;
    const pNext = this.#pNext;
    const pSlot = this.#pSlot;
    const pMask = this.#pMask;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (!isRouterKey(k)) break;
      const id = this.find(k);
      if (id < 0) break;
      let cont = 0;
      for (let p = head[id]; p !== NIL; p = pNext[p]) {
        const c = candOf[pSlot[p]];
        if (c >= 0 && runs[c] === i) {
          runs[c] = i + 1;
          weights[c] += tiers.weightOfMask(pMask[p]);
          cont++;
        }
      }
      if (cont === 0) break;
      this.#used[id] = 1;
    }
  }

  /** Adds (key, tier bit) for `slot` and makes the block newest; false when it was held already. */
  add(slot: number, key: number, bit: number): boolean {
    const mask = 1 << bit;
    const lo = key >>> 0;
    const id = this.#table.upsert(lo, (key - lo) / TWO_32, 0);
    if (this.#table.inserted) {
      this.#used[id] = 0;
      this.#head[id] = NIL;
      this.#linkNewest(id);
      this.#newPair(slot, mask, id);
    } else {
      if (id !== this.#newest) {
        this.#unlink(id);
        this.#linkNewest(id);
      }
      const p = this.#pairIn(id, slot);
      if (p === NIL) this.#newPair(slot, mask, id);
      else if ((this.#pMask[p] & mask) === 0) this.#pMask[p] |= mask;
      else return false;
    }
    this.entries++;
    this.#slotEntries[slot]++;
    this.added++;
    return true;
  }

  /** The tiers `slot` holds `key` in (0 = none). */
  maskOf(slot: number, key: number): number {
    const id = this.find(key);
    if (id < 0) return 0;
    const p = this.#pairIn(id, slot);
    return p === NIL ? 0 : this.#pMask[p];
  }

  /** One more copy of a (key, tier) that `slot` holds. */
  addCopy(slot: number, key: number, bit: number): void {
    const id = this.find(key);
    const p = id < 0 ? NIL : this.#pairIn(id, slot);
    if (p === NIL) return;
    let c = this.#copies.get(p);
    if (c === undefined) this.#copies.set(p, (c = []));
    c[bit] = (c[bit] ?? 0) + 1;
  }

  /** Drops one extra copy of (key, tier); false when there was none (the entry itself must go). */
  dropCopy(slot: number, key: number, bit: number): boolean {
    if (this.#copies.size === 0) return false;
    const id = this.find(key);
    const p = id < 0 ? NIL : this.#pairIn(id, slot);
    const c = p === NIL ? undefined : this.#copies.get(p);
    if (c === undefined || !c[bit]) return false;
    if (--c[bit] === 0 && c.every((x) => !x)) this.#copies.delete(p);
    return true;
  }

  /**
   * Removes tiers `mask` of `slot` from `key` (their extra copies too); returns the tiers left.
   * Counted as removed, or as evicted when `evict`.
   */
  remove(slot: number, key: number, mask: number, evict = false): number {
    const id = this.find(key);
    if (id < 0) return 0;
    const p = this.#pairIn(id, slot);
    if (p === NIL) return 0;
    const had = this.#pMask[p];
    if (this.#copies.size > 0) {
      const c = this.#copies.get(p);
      if (c !== undefined) {
        for (let b = 0; b < c.length; b++) if ((mask >> b) & 1) c[b] = 0;
        if (c.every((x) => !x)) this.#copies.delete(p);
      }
    }
    const gone = popcount(had & mask);
    const left = had & ~mask;
    this.entries -= gone;
    this.#slotEntries[slot] -= gone;
    if (evict) this.evicted += gone;
    else this.removed += gone;
    if (left !== 0) this.#pMask[p] = left;
    else this.#dropPair(p, true);
    return left;
  }

  /** Drops every entry of `slot` (counted as removed). */
  clearSlot(slot: number): void {
    for (let p = this.#eHead[slot]; p !== NIL; ) {
      const next = this.#eNext[p];
      const n = popcount(this.#pMask[p]);
      this.entries -= n;
      this.removed += n;
      this.#dropPair(p, false);
      p = next;
    }
    this.#eHead[slot] = NIL;
    this.#slotEntries[slot] = 0;
  }

  /** Evicts blocks (second chance) until entries <= maxEntries and bytes <= maxBytes. */
  enforce(maxEntries: number, maxBytes: number): void {
    let chances = this.#table.size;
    while (this.#oldest !== NIL && (this.entries > maxEntries || this.bytes() > maxBytes)) {
      const id = this.#oldest;
      if (this.#used[id] === 1 && chances-- > 0) {
        this.#used[id] = 0;
        this.#unlink(id);
        this.#linkNewest(id);
        continue;
      }
      // Dropping the last pair frees the block, so walk a snapshot of the chain.
      for (let p = this.#head[id]; p !== NIL; ) {
        const next = this.#pNext[p];
        const slot = this.#pSlot[p];
        const n = popcount(this.#pMask[p]);
        this.entries -= n;
        this.#slotEntries[slot] -= n;
        this.evicted += n;
        this.#dropPair(p, true);
        p = next;
      }
    }
  }

  /** Forgets everything (slots stay numbered). */
  clear(): void {
    this.#table.clear();
    this.#oldest = this.#newest = NIL;
    this.#pFree = NIL;
    this.#pTop = 0;
    this.#pairs = 0;
    this.#copies.clear();
    this.entries = 0;
    for (let s = 0; s < this.#eHead.length; s++) this.addSlot(s);
  }

  #pairIn(id: number, slot: number): number {
    let p = this.#head[id];
    while (p !== NIL && this.#pSlot[p] !== slot) p = this.#pNext[p];
    return p;
  }

  #newPair(slot: number, mask: number, id: number): void {
    let p = this.#pFree;
    if (p !== NIL) this.#pFree = this.#pNext[p];
    else {
      if (this.#pTop === this.#pSlot.length) this.#growPairs();
      p = this.#pTop++;
    }
    this.#pSlot[p] = slot;
    this.#pMask[p] = mask;
    this.#pBlock[p] = id;
    this.#pNext[p] = this.#head[id];
    this.#head[id] = p;
    const h = this.#eHead[slot];
    this.#ePrev[p] = NIL;
    this.#eNext[p] = h;
    if (h !== NIL) this.#ePrev[h] = p;
    this.#eHead[slot] = p;
    this.#pairs++;
  }

  /** Unlinks pair `p` from its block (freeing the block with its last pair) and, if `fromSlot`, its slot list. */
  #dropPair(p: number, fromSlot: boolean): void {
    const id = this.#pBlock[p];
    if (this.#head[id] === p) this.#head[id] = this.#pNext[p];
    else {
      let q = this.#head[id];
      while (this.#pNext[q] !== p) q = this.#pNext[q];
      this.#pNext[q] = this.#pNext[p];
    }
    if (fromSlot) {
      const prev = this.#ePrev[p];
      const next = this.#eNext[p];
      if (prev !== NIL) this.#eNext[prev] = next;
      else this.#eHead[this.#pSlot[p]] = next;
      if (next !== NIL) this.#ePrev[next] = prev;
    }
    if (this.#copies.size > 0) this.#copies.delete(p);
    this.#pNext[p] = this.#pFree;
    this.#pFree = p;
    this.#pairs--;
    if (this.#head[id] === NIL) {
      this.#unlink(id);
      this.#table.remove(id);
    }
  }

  #linkNewest(id: number): void {
    this.#rPrev[id] = this.#newest;
    this.#rNext[id] = NIL;
    if (this.#newest !== NIL) this.#rNext[this.#newest] = id;
    else this.#oldest = id;
    this.#newest = id;
  }

  #unlink(id: number): void {
    const prev = this.#rPrev[id];
    const next = this.#rNext[id];
    if (prev !== NIL) this.#rNext[prev] = next;
    else this.#oldest = next;
    if (next !== NIL) this.#rPrev[next] = prev;
    else this.#newest = prev;
  }

  #growBlocks(n: number): void {
    const used = new Uint8Array(n);
    used.set(this.#used);
    this.#used = used;
    this.#rPrev = grownInt32(this.#rPrev, n);
    this.#rNext = grownInt32(this.#rNext, n);
    this.#head = grownInt32(this.#head, n);
  }

  #growPairs(): void {
    const n = this.#pSlot.length * 2;
    this.#pSlot = grownInt32(this.#pSlot, n);
    this.#pMask = grownInt32(this.#pMask, n);
    this.#pBlock = grownInt32(this.#pBlock, n);
    this.#pNext = grownInt32(this.#pNext, n);
    this.#ePrev = grownInt32(this.#ePrev, n);
    this.#eNext = grownInt32(this.#eNext, n);
  }
}
