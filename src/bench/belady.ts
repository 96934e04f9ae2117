/**
 * Belady / OPT on the pooled cache: the real upper bound that `vs bound` is measured against.
 *
 * Model: one cache of all replicas' capacity (blocks), fed the workload's requests in arrival
 * order; a request hits the longest run of its full-block keys present from the first (capped at
 * floor((prompt_len - 1) / blockSize) blocks, as vLLM), then every block of the request is in the
 * cache (engines insert every block they compute). On a miss with the cache full, OPT evicts the
 * block whose next use lies furthest in the future (never used again first); ties go to the
 * deeper block, so a block never outlives its parent. For demand insertion OPT maximises block
 * hits (Belady 1966), and a child is never used without its parent, so it also maximises prefix
 * hits: no router over separate caches of the same total capacity that insert what they compute
 * can hit more (separate caches only add duplicates). Engines also pin the blocks of running
 * requests, which OPT ignores: the bound is optimistic, as a bound should be.
 *
 * Algorithm: requests are added one by one ({@link OptBound}); their keys are interned to dense
 * ids as they come (one typed open-addressing table, src/kv-index/key-table.ts) and kept as one
 * Int32Array of accesses, so a 100k-request workload costs 4 bytes per block access instead of
 * an array per request. One backward pass gives each access its next use; an indexed max-heap of
 * the cached blocks on (next use, depth), with each block's position, picks the victim and is
 * updated in place when a cached block is used again, so it never holds more than the cache.
 * O(A log C) time for A block accesses and a cache of C blocks; O(A + distinct blocks + C) memory.
 * Blocks never used again tie on next use; which of them goes first changes no hit (none of them
 * is read again), so the result equals a heap with any tie order.
 */
import { KeyTable } from '../kv-index/key-table.js';
import { blockKeys } from './oracle.js';

const TWO_32 = 4294967296;
/** Next use of an access whose block is never used again. */
const NEVER = 0x7fffffff;

/** One request for {@link beladyHitRate}: its block keys ({@link blockKeys}) and prompt length. */
export interface OptRequest {
  keys: Float64Array;
  /** Prompt tokens. */
  tokens: number;
  /** Counted in the hit rate (false: warm-up). */
  measured: boolean;
}

/** {@link OptRequest} of a prompt. */
export function optRequest(tokens: ArrayLike<number>, measured: boolean, blockSize = 16): OptRequest {
  return { keys: blockKeys(tokens, blockSize), tokens: tokens.length, measured };
}

/** Hit rate of OPT on a pooled cache of `capacityBlocks` (hit tokens / prompt tokens, measured requests). */
export function beladyHitRate(requests: readonly OptRequest[], capacityBlocks: number, blockSize = 16): number {
  const b = new OptBound(blockSize);
  for (const r of requests) b.add(r.keys, r.tokens, r.measured);
  return b.hitRate(capacityBlocks);
}

/** Grows `a` to hold at least `n` elements (doubling), keeping its content. */
function grown(a: Int32Array<ArrayBuffer>, n: number): Int32Array<ArrayBuffer> {
  if (a.length >= n) return a;
  const b = new Int32Array(Math.max(n, a.length * 2));
  b.set(a);
  return b;
}

/** OPT over requests added in arrival order; see the file comment. */
export class OptBound {
  readonly blockSize: number;
  readonly #ids = new KeyTable(() => undefined, 4096);
  /** Block ids of every access, request by request, block by block from the root. */
  #access = new Int32Array(1 << 16);
  #accesses = 0;
  /** Per request: end of its accesses, prompt tokens, measured (1) or not (0). */
  #end = new Int32Array(1024);
  #tokens = new Int32Array(1024);
  #measured = new Uint8Array(1024);
  #requests = 0;

  constructor(blockSize = 16) {
    this.blockSize = blockSize;
  }

  /** Adds a request: its chained block keys ({@link blockKeys}), its prompt tokens and whether it is measured. */
  add(keys: ArrayLike<number>, tokens: number, measured: boolean): void {
    const n = keys.length;
    this.#access = grown(this.#access, this.#accesses + n);
    const ids = this.#ids;
    const access = this.#access;
    let a = this.#accesses;
    for (let i = 0; i < n; i++) {
      const k = keys[i];
      const lo = k >>> 0;
      access[a++] = ids.upsert(lo, (k - lo) / TWO_32, 0);
    }
    this.#accesses = a;
    const r = this.#requests++;
    if (r === this.#end.length) {
      this.#end = grown(this.#end, r + 1);
      this.#tokens = grown(this.#tokens, r + 1);
      const m = new Uint8Array(this.#end.length);
      m.set(this.#measured);
      this.#measured = m;
    }
    this.#end[r] = a;
    this.#tokens[r] = tokens;
    this.#measured[r] = measured ? 1 : 0;
  }

  /** Hit rate of OPT on a pooled cache of `capacityBlocks` (hit tokens / prompt tokens, measured requests). */
  hitRate(capacityBlocks: number): number {
    const cap = Math.floor(capacityBlocks);
    if (!(cap >= 1)) throw new RangeError('OPT capacity must be at least one block');
    const bs = this.blockSize;
    const total = this.#accesses;
    const access = this.#access;
    const distinct = this.#ids.capacity;
    // Backward pass: each access's next use (NEVER when its block is not used again).
    const nextUse = new Int32Array(total);
    const last = new Int32Array(distinct).fill(NEVER);
    for (let a = total - 1; a >= 0; a--) {
      const id = access[a];
      nextUse[a] = last[id];
      last[id] = a;
    }
    // Forward pass with an indexed max-heap of the cached blocks on (next use, depth).
    const pos = last.fill(-1);
    const heap = new MaxHeap(Math.min(cap, distinct), pos);
    const end = this.#end;
    let queries = 0;
    let hits = 0;
    let a = 0;
    for (let r = 0; r < this.#requests; r++) {
      const start = a;
      const n = end[r] - start;
      const tokens = this.#tokens[r];
      const capHit = Math.min(n, Math.floor((tokens - 1) / bs));
      let hit = 0;
      while (hit < capHit && pos[access[start + hit]] >= 0) hit++;
      for (let b = 0; b < n; b++, a++) {
        const id = access[a];
        const nu = nextUse[a];
        const p = pos[id];
        if (p >= 0) heap.raise(p, nu);
        else {
          if (heap.size >= cap) heap.pop();
          heap.push(id, nu, b);
        }
      }
      if (this.#measured[r] === 1) {
        queries += tokens;
        hits += hit * bs;
      }
    }
    return queries > 0 ? hits / queries : 0;
  }
}

/** Max-heap of block ids on (next use, depth), with each id's position in `pos` (-1 = absent). */
class MaxHeap {
  readonly #next: Int32Array;
  readonly #depth: Int32Array;
  readonly #id: Int32Array;
  readonly #pos: Int32Array;
  size = 0;

  constructor(capacity: number, pos: Int32Array) {
    this.#next = new Int32Array(capacity);
    this.#depth = new Int32Array(capacity);
    this.#id = new Int32Array(capacity);
    this.#pos = pos;
  }

  push(id: number, next: number, depth: number): void {
    const i = this.size++;
    this.#next[i] = next;
    this.#depth[i] = depth;
    this.#id[i] = id;
    this.#pos[id] = i;
    this.#up(i);
  }

  /** The entry at `i` is used again: its next use grows to `next`. */
  raise(i: number, next: number): void {
    this.#next[i] = next;
    this.#up(i);
  }

  /** Removes the entry that is used furthest in the future (deepest first among equals). */
  pop(): void {
    const last = --this.size;
    this.#pos[this.#id[0]] = -1;
    if (last === 0) return;
    this.#move(last, 0);
    this.#down(0);
  }

  #gt(i: number, j: number): boolean {
    const a = this.#next[i];
    const b = this.#next[j];
    return a > b || (a === b && this.#depth[i] > this.#depth[j]);
  }

  #move(from: number, to: number): void {
    this.#next[to] = this.#next[from];
    this.#depth[to] = this.#depth[from];
    const id = this.#id[from];
    this.#id[to] = id;
    this.#pos[id] = to;
  }

  #swap(i: number, j: number): void {
    const n = this.#next[i];
    const d = this.#depth[i];
    const id = this.#id[i];
    this.#move(j, i);
    this.#next[j] = n;
    this.#depth[j] = d;
    this.#id[j] = id;
    this.#pos[id] = j;
  }

  #up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#gt(i, p)) break;
      this.#swap(i, p);
      i = p;
    }
  }

  #down(i: number): void {
    const m = this.size;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let big = i;
      if (l < m && this.#gt(l, big)) big = l;
      if (r < m && this.#gt(r, big)) big = r;
      if (big === i) return;
      this.#swap(i, big);
      i = big;
    }
  }
}
