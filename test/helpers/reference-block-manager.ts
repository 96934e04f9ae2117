/**
 * The block manager as it was before its fleet-scale rewrite (BigInt hashes in Maps, every block's
 * arrays allocated up front), kept unchanged as the reference model that the differential test
 * (src/sim/block-manager-diff.test.ts) runs the new one against, operation by operation.
 *
 * A paged KV cache modelled on vLLM v1's `KVCacheManager` / `BlockPool`.
 *
 * ```
 *   blocks 0..N-1, each blockSize tokens
 *   refCount[b] > 0  : used by running requests
 *   refCount[b] == 0 : in the free queue (maybe still cached: hash kept until evicted)
 *
 *   free queue (doubly linked over typed arrays, O(1) remove from the middle):
 *     head = least recently freed  ->  ...  ->  tail = most recently freed
 *   allocate() pops from the head; a cached block popped there loses its hash (BlockRemoved)
 * ```
 *
 * Only full blocks are cached, keyed by chained block hashes ({@link chainBlockHash}). A lookup
 * never returns the whole prompt: at most `promptLen - 1` tokens hit, so a fully cached prompt
 * recomputes its last block, like vLLM. Like vLLM's BlockPool, blocks are not de-duplicated: the
 * recomputed block is cached again under the same hash (a second BlockStored for it), a hash
 * may be held by several blocks, and each evicted block sends its own BlockRemoved.
 */
import { extendBlockHashes } from '../../src/sim/block-hash.js';

import type { BlockManagerOptions, CacheHit, KvCacheEvent } from '../../src/sim/block-manager.js';

/** The reference (pre-rewrite) paged KV cache with prefix caching. */
export class ReferenceBlockManager {
  readonly numBlocks: number;
  readonly blockSize: number;
  #onEvent: ((ev: KvCacheEvent) => void) | undefined;
  #ref: Int32Array;
  #prev: Int32Array;
  #next: Int32Array;
  #inQueue: Uint8Array;
  #hashOf: (bigint | undefined)[];
  /** One block per cached hash (the one lookups return)... */
  #byHash = new Map<bigint, number>();
  /** ...and the other blocks holding the same hash (vLLM keeps duplicates). */
  #extra = new Map<bigint, Set<number>>();
  #cached = 0;
  #head = -1;
  #tail = -1;
  #numFree = 0;

  constructor(opts: BlockManagerOptions) {
    if (!(opts.numBlocks >= 1) || !Number.isInteger(opts.numBlocks)) throw new RangeError('numBlocks must be a positive integer');
    this.numBlocks = opts.numBlocks;
    this.blockSize = opts.blockSize ?? 16;
    this.#onEvent = opts.onEvent;
    const n = this.numBlocks;
    this.#ref = new Int32Array(n);
    this.#prev = new Int32Array(n);
    this.#next = new Int32Array(n);
    this.#inQueue = new Uint8Array(n);
    this.#hashOf = new Array<bigint | undefined>(n).fill(undefined);
    this.#initQueue();
  }

  /** Blocks with refcount 0 (free, including cached-but-unreferenced ones). */
  get numFreeBlocks(): number {
    return this.#numFree;
  }

  /** Blocks currently holding a cached hash (referenced or not). */
  get numCachedBlocks(): number {
    return this.#cached;
  }

  /** KV usage like vLLM: 1 - free/total. */
  get usage(): number {
    return 1 - this.#numFree / this.numBlocks;
  }

  /** Reference count of a block (for tests and diagnostics). */
  refCount(block: number): number {
    return this.#ref[block];
  }

  /** Block holding `hash`, or undefined. */
  lookup(hash: bigint): number | undefined {
    return this.#byHash.get(hash);
  }

  /** Hashes of the full blocks of `tokens` (convenience over {@link extendBlockHashes}). */
  hashTokens(tokens: ArrayLike<number>): bigint[] {
    return extendBlockHashes(tokens, this.blockSize, []);
  }

  /**
   * Longest cached prefix of a prompt whose full-block hashes are `hashes`, capped so that at
   * most `numTokens - 1` tokens hit.
   */
  findCachedPrefix(hashes: readonly bigint[], numTokens: number): CacheHit {
    const max = Math.min(hashes.length, Math.floor((numTokens - 1) / this.blockSize));
    const blocks: number[] = [];
    for (let i = 0; i < max; i++) {
      const b = this.#byHash.get(hashes[i]);
      if (b === undefined) break;
      blocks.push(b);
    }
    return { blocks, tokens: blocks.length * this.blockSize };
  }

  /** Whether `hit` plus `numNew` fresh blocks can be taken now. */
  canAllocate(hit: readonly number[], numNew: number): boolean {
    let evictableHits = 0;
    for (let i = 0; i < hit.length; i++) if (this.#ref[hit[i]] === 0) evictableHits++;
    return numNew <= this.#numFree - evictableHits;
  }

  /** Takes a reference on each block of a cache hit (removing free ones from the free queue). */
  touch(blocks: readonly number[]): void {
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i];
      if (this.#ref[b] === 0) this.#unlink(b);
      this.#ref[b]++;
    }
  }

  /**
   * Takes `n` blocks from the head of the free queue (evicting their cached hashes), appending
   * their ids to `out`. Returns false, taking nothing, when fewer than `n` are free.
   */
  allocate(n: number, out: number[]): boolean {
    if (n > this.#numFree) return false;
    let removed: bigint[] | undefined;
    for (let i = 0; i < n; i++) {
      const b = this.#head;
      this.#unlink(b);
      this.#ref[b] = 1;
      const h = this.#hashOf[b];
      if (h !== undefined) {
        this.#uncache(b, h);
        (removed ??= []).push(h);
      }
      out.push(b);
    }
    if (removed && this.#onEvent) this.#onEvent({ type: 'BlockRemoved', blockHashes: removed, medium: 'GPU' });
    return true;
  }

  /**
   * Marks blocks `blocks[from..to)` of a request as cached under `hashes[from..to)` and emits one
   * BlockStored. A hash already cached in another block is cached again (vLLM does not
   * de-duplicate: the recomputed last block of a fully cached prompt is stored a second time).
   * `tokens` are the request's tokens.
   */
  cacheBlocks(
    blocks: readonly number[],
    hashes: readonly bigint[],
    tokens: ArrayLike<number>,
    from: number,
    to: number,
  ): void {
    let stored: bigint[] | undefined;
    let firstStored = -1;
    for (let i = from; i < to; i++) {
      const b = blocks[i];
      const h = hashes[i];
      if (this.#hashOf[b] !== undefined) continue;
      this.#hashOf[b] = h;
      this.#cached++;
      if (!this.#byHash.has(h)) this.#byHash.set(h, b);
      else {
        let set = this.#extra.get(h);
        if (set === undefined) this.#extra.set(h, (set = new Set()));
        set.add(b);
      }
      if (!this.#onEvent) continue;
      if (stored === undefined) {
        stored = [];
        firstStored = i;
      } else if (firstStored + stored.length !== i) {
        this.#emitStored(stored, hashes, tokens, firstStored);
        stored = [];
        firstStored = i;
      }
      stored.push(h);
    }
    if (stored && stored.length > 0) this.#emitStored(stored, hashes, tokens, firstStored);
  }

  /**
   * Drops one reference on each block, in reverse order so a request's tail blocks are evicted
   * before its head (vLLM frees the same way). Blocks reaching 0 join the free-queue tail.
   */
  free(blocks: readonly number[]): void {
    for (let i = blocks.length - 1; i >= 0; i--) {
      const b = blocks[i];
      if (this.#ref[b] <= 0) throw new Error(`block ${b} freed more often than taken`);
      if (--this.#ref[b] === 0) this.#append(b);
    }
  }

  /**
   * Drops all cached hashes if no block is in use (vLLM's reset_prefix_cache). Returns whether it
   * did; emits AllBlocksCleared when it did.
   */
  resetPrefixCache(): boolean {
    if (this.#numFree !== this.numBlocks) return false;
    this.#forgetAll();
    this.#initQueue();
    this.#onEvent?.({ type: 'AllBlocksCleared' });
    return true;
  }

  /**
   * Forgets everything, references included (a restart). Emits AllBlocksCleared unless
   * `clearEvent` is false: a restarted vLLM is a new process and sends none.
   */
  reset(clearEvent = true): void {
    this.#ref.fill(0);
    this.#forgetAll();
    this.#initQueue();
    if (clearEvent) this.#onEvent?.({ type: 'AllBlocksCleared' });
  }

  #forgetAll(): void {
    this.#byHash.clear();
    this.#extra.clear();
    this.#cached = 0;
    this.#hashOf.fill(undefined);
  }

  /** Block `b` loses hash `h`; another block holding `h` (if any) becomes the one lookups find. */
  #uncache(b: number, h: bigint): void {
    this.#hashOf[b] = undefined;
    this.#cached--;
    const set = this.#extra.get(h);
    if (this.#byHash.get(h) === b) {
      if (set === undefined) this.#byHash.delete(h);
      else {
        const next = set.values().next().value as number;
        set.delete(next);
        this.#byHash.set(h, next);
      }
    } else set?.delete(b);
    if (set !== undefined && set.size === 0) this.#extra.delete(h);
  }

  #emitStored(stored: bigint[], hashes: readonly bigint[], tokens: ArrayLike<number>, first: number): void {
    const bs = this.blockSize;
    const tokenIds = Array.prototype.slice.call(tokens, first * bs, (first + stored.length) * bs) as number[];
    this.#onEvent!({
      type: 'BlockStored',
      blockHashes: stored,
      parentBlockHash: first === 0 ? null : hashes[first - 1],
      tokenIds,
      blockSize: bs,
      medium: 'GPU',
    });
  }

  #initQueue(): void {
    const n = this.numBlocks;
    for (let i = 0; i < n; i++) {
      this.#prev[i] = i - 1;
      this.#next[i] = i + 1 < n ? i + 1 : -1;
    }
    this.#inQueue.fill(1);
    this.#head = 0;
    this.#tail = n - 1;
    this.#numFree = n;
  }

  #unlink(b: number): void {
    if (!this.#inQueue[b]) throw new Error(`block ${b} is not free`);
    const p = this.#prev[b];
    const nx = this.#next[b];
    if (p >= 0) this.#next[p] = nx;
    else this.#head = nx;
    if (nx >= 0) this.#prev[nx] = p;
    else this.#tail = p;
    this.#inQueue[b] = 0;
    this.#numFree--;
  }

  #append(b: number): void {
    this.#prev[b] = this.#tail;
    this.#next[b] = -1;
    if (this.#tail >= 0) this.#next[this.#tail] = b;
    else this.#head = b;
    this.#tail = b;
    this.#inQueue[b] = 1;
    this.#numFree++;
  }
}
