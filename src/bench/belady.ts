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
 * Algorithm: one backward pass gives each access its next use; a max-heap of (next use, depth)
 * with lazy deletion picks the victim. O(A log A) for A block accesses.
 */
import { blockKeys } from './oracle.js';

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
  const cap = Math.floor(capacityBlocks);
  if (!(cap >= 1)) throw new RangeError('OPT capacity must be at least one block');
  const perReq = requests.map((r) => r.keys);
  let total = 0;
  for (const k of perReq) total += k.length;
  // Access order: request by request, block by block from the root.
  const nextUse = new Float64Array(total);
  const last = new Map<number, number>();
  let a = total;
  for (let r = perReq.length - 1; r >= 0; r--) {
    const keys = perReq[r];
    for (let b = keys.length - 1; b >= 0; b--) {
      a--;
      nextUse[a] = last.get(keys[b]) ?? Infinity;
      last.set(keys[b], a);
    }
  }
  last.clear();
  const heap = new OptHeap();
  const inCache = new Map<number, number>(); // key -> its current next use
  let queries = 0;
  let hits = 0;
  a = 0;
  for (let r = 0; r < perReq.length; r++) {
    const keys = perReq[r];
    const tokens = requests[r].tokens;
    const capHit = Math.min(keys.length, Math.floor((tokens - 1) / blockSize));
    let hit = 0;
    while (hit < capHit && inCache.has(keys[hit])) hit++;
    for (let b = 0; b < keys.length; b++, a++) {
      const k = keys[b];
      const nu = nextUse[a];
      if (!inCache.has(k)) {
        while (inCache.size >= cap) {
          const v = heap.pop()!;
          if (inCache.get(v.key) === v.next) inCache.delete(v.key);
        }
      }
      inCache.set(k, nu);
      heap.push(nu, b, k);
    }
    if (requests[r].measured) {
      queries += tokens;
      hits += hit * blockSize;
    }
  }
  return queries > 0 ? hits / queries : 0;
}

/** Max-heap on (next use, depth) with parallel arrays. */
class OptHeap {
  #next: number[] = [];
  #depth: number[] = [];
  #key: number[] = [];

  #gt(i: number, j: number): boolean {
    return this.#next[i] > this.#next[j] || (this.#next[i] === this.#next[j] && this.#depth[i] > this.#depth[j]);
  }

  #swap(i: number, j: number): void {
    [this.#next[i], this.#next[j]] = [this.#next[j], this.#next[i]];
    [this.#depth[i], this.#depth[j]] = [this.#depth[j], this.#depth[i]];
    [this.#key[i], this.#key[j]] = [this.#key[j], this.#key[i]];
  }

  push(next: number, depth: number, key: number): void {
    let i = this.#next.length;
    this.#next.push(next);
    this.#depth.push(depth);
    this.#key.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#gt(i, p)) break;
      this.#swap(i, p);
      i = p;
    }
  }

  pop(): { next: number; key: number } | undefined {
    const n = this.#next.length;
    if (n === 0) return undefined;
    const top = { next: this.#next[0], key: this.#key[0] };
    this.#swap(0, n - 1);
    this.#next.pop();
    this.#depth.pop();
    this.#key.pop();
    let i = 0;
    const m = n - 1;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let big = i;
      if (l < m && this.#gt(l, big)) big = l;
      if (r < m && this.#gt(r, big)) big = r;
      if (big === i) break;
      this.#swap(i, big);
      i = big;
    }
    return top;
  }
}
