/**
 * The pooled-LRU reference (benchmarks.md; formerly called the "oracle bound"): the prefix-cache
 * hit rate of ONE LRU cache whose capacity is the sum of all replicas' capacities, fed the same
 * request sequence (arrival order). It is NOT an upper bound once eviction happens (a router can
 * beat LRU by placement); `belady.ts` computes the real bound (OPT on the pooled cache).
 *
 *   per request: keys = chained keys of its full blocks
 *                hit  = longest run of keys present from the first, capped at
 *                       floor((prompt_len - 1) / blockSize) blocks (vLLM never hits the last token)
 *                then every key is touched / inserted, tail first, so the prefix root is the most
 *                recently used and a request's tail is evicted first (as engines free blocks)
 *   bound = sum(hit blocks x blockSize) / sum(prompt tokens) over the measured requests
 *
 * Keys are 53-bit numbers from two 32-bit FNV-style lanes chained over the parent key and the
 * block's token ids (a collision only makes one lookup wrong). Only prompt blocks enter the cache.
 * The cache is a typed open-addressing table (src/kv-index/key-table.ts) whose ids carry the LRU
 * list: no `Map` of boxed numbers.
 */
import { KeyTable, grownInt32 } from '../kv-index/key-table.js';

const TWO_32 = 4294967296;

/** Incremental oracle; feed requests in arrival order. */
export class PooledCacheOracle {
  readonly capacityBlocks: number;
  readonly blockSize: number;
  /** key (two 32-bit words) -> id; ids form a doubly linked list, head = least recently used. */
  readonly #table = new KeyTable((n) => this.#grow(n), 1024);
  #prev = new Int32Array(1024);
  #next = new Int32Array(1024);
  #head = -1;
  #tail = -1;
  #queries = 0;
  #hits = 0;

  constructor(capacityBlocks: number, blockSize = 16) {
    if (!(capacityBlocks >= 1)) throw new RangeError('oracle capacity must be at least one block');
    this.capacityBlocks = Math.floor(capacityBlocks);
    this.blockSize = blockSize;
  }

  #grow(n: number): void {
    this.#prev = grownInt32(this.#prev, n);
    this.#next = grownInt32(this.#next, n);
  }

  #unlink(i: number): void {
    const p = this.#prev[i];
    const n = this.#next[i];
    if (p >= 0) this.#next[p] = n;
    else this.#head = n;
    if (n >= 0) this.#prev[n] = p;
    else this.#tail = p;
  }

  #append(i: number): void {
    this.#prev[i] = this.#tail;
    this.#next[i] = -1;
    if (this.#tail >= 0) this.#next[this.#tail] = i;
    else this.#head = i;
    this.#tail = i;
  }

  #has(k: number): boolean {
    const lo = k >>> 0;
    return this.#table.find(lo, (k - lo) / TWO_32, 0) >= 0;
  }

  /** Marks `k` most recently used, inserting it (evicting the LRU key when full). */
  #touch(k: number): void {
    const lo = k >>> 0;
    const t = this.#table;
    const i = t.upsert(lo, (k - lo) / TWO_32, 0);
    if (!t.inserted) this.#unlink(i);
    else if (t.size > this.capacityBlocks) {
      const old = this.#head;
      this.#unlink(old);
      t.remove(old);
    }
    this.#append(i);
  }

  /** Feeds one request; counts it when `measured`. Returns its hit tokens. */
  feed(tokens: ArrayLike<number>, measured = true): number {
    return this.feedKeys(blockKeys(tokens, this.blockSize), tokens.length, measured);
  }

  /** {@link feed} of a request whose {@link blockKeys} are known (`promptTokens`: its length in tokens). */
  feedKeys(keys: ArrayLike<number>, promptTokens: number, measured = true): number {
    const bs = this.blockSize;
    const full = keys.length;
    const cap = Math.min(full, Math.floor((promptTokens - 1) / bs));
    let hit = 0;
    while (hit < cap && this.#has(keys[hit])) hit++;
    for (let b = full - 1; b >= 0; b--) this.#touch(keys[b]);
    if (measured) {
      this.#queries += promptTokens;
      this.#hits += hit * bs;
    }
    return hit * bs;
  }

  /** Prompt tokens of measured requests. */
  get queries(): number {
    return this.#queries;
  }

  /** Hit tokens of measured requests. */
  get hits(): number {
    return this.#hits;
  }

  /** The bound (0 when nothing was measured). */
  get hitRate(): number {
    return this.#queries > 0 ? this.#hits / this.#queries : 0;
  }
}

/**
 * Chained keys of the full blocks of `tokens` (53-bit numbers from two 32-bit FNV-style lanes
 * over the parent key and the block's token ids), shared by the LRU reference and OPT.
 */
export function blockKeys(tokens: ArrayLike<number>, bs: number): Float64Array {
  const full = Math.floor(tokens.length / bs);
  const keys = new Float64Array(full);
  let h1 = 0x811c9dc5;
  let h2 = 0x9747b28c;
  for (let b = 0; b < full; b++) {
    for (let i = b * bs, end = i + bs; i < end; i++) {
      const t = tokens[i];
      h1 = Math.imul(h1 ^ t, 0x01000193);
      h2 = Math.imul(h2 ^ t, 0x5bd1e995);
      h2 ^= h2 >>> 13;
    }
    h1 >>>= 0;
    h2 >>>= 0;
    keys[b] = h1 * 2097152 + (h2 >>> 11);
  }
  return keys;
}
