/**
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
 *
 * Storage (fleet scale: a thousand engines in one process): hashes are two 32-bit lanes
 * ({@link BlockLanes}) in typed arrays and a {@link BlockTable}, never BigInt (BigInts are made
 * only for KV events); per-block arrays grow with the highest block ever used. The free queue
 * starts as 0..N-1, so its head is the never-used range [fresh, N) followed by a linked list of
 * blocks freed since: a block is materialised when first allocated, and an engine that used
 * 1,000 blocks of 54,320 holds arrays for ~1,000.
 */
import { extendBlockHashes, extendBlockLanes, laneHash, lanesOf, lanesToBigInt, newBlockLanes, type BlockLanes } from './block-hash.js';
import { BlockTable } from './block-table.js';

/** KV-cache events, shaped like vLLM's (a publisher maps them to the ZeroMQ wire format). */
export type KvCacheEvent =
  | {
      type: 'BlockStored';
      blockHashes: bigint[];
      parentBlockHash: bigint | null;
      tokenIds: number[];
      blockSize: number;
      medium: 'GPU';
    }
  | { type: 'BlockRemoved'; blockHashes: bigint[]; medium: 'GPU' }
  | { type: 'AllBlocksCleared' };

/** Options of a {@link BlockManager}. */
export interface BlockManagerOptions {
  numBlocks: number;
  /** Tokens per block (vLLM default 16). */
  blockSize?: number;
  /** Receives every KV-cache event, synchronously. */
  onEvent?: (ev: KvCacheEvent) => void;
}

/** Result of a prefix-cache lookup. */
export interface CacheHit {
  /** Block ids of the cached prefix, in order. */
  blocks: number[];
  /** Cached tokens (= blocks.length * blockSize). */
  tokens: number;
}

/** The simulated paged KV cache with prefix caching. */
export class BlockManager {
  readonly numBlocks: number;
  readonly blockSize: number;
  #onEvent: ((ev: KvCacheEvent) => void) | undefined;
  /** Per-block arrays, valid below `#fresh` (grown on demand up to numBlocks). */
  #ref: Int32Array;
  #prev: Int32Array;
  #next: Int32Array;
  #inQueue: Uint8Array;
  #cachedFlag: Uint8Array;
  #hashHi: Uint32Array;
  #hashLo: Uint32Array;
  #table = new BlockTable();
  /** Blocks fresh..numBlocks-1 were never used: the head of the free queue, in id order. */
  #fresh = 0;
  #cached = 0;
  /** Linked part of the free queue (blocks below `#fresh` freed since). */
  #head = -1;
  #tail = -1;
  #numFree = 0;
  #hit: number[] = [];

  constructor(opts: BlockManagerOptions) {
    if (!(opts.numBlocks >= 1) || !Number.isInteger(opts.numBlocks)) throw new RangeError('numBlocks must be a positive integer');
    this.numBlocks = opts.numBlocks;
    this.blockSize = opts.blockSize ?? 16;
    this.#onEvent = opts.onEvent;
    const n = Math.min(this.numBlocks, 256);
    this.#ref = new Int32Array(n);
    this.#prev = new Int32Array(n);
    this.#next = new Int32Array(n);
    this.#inQueue = new Uint8Array(n);
    this.#cachedFlag = new Uint8Array(n);
    this.#hashHi = new Uint32Array(n);
    this.#hashLo = new Uint32Array(n);
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
    return block < this.#fresh ? this.#ref[block] : 0;
  }

  /** Block holding `hash`, or undefined. */
  lookup(hash: bigint): number | undefined {
    const b = this.#table.get(Number(hash >> 32n) >>> 0, Number(hash & 0xffffffffn) >>> 0);
    return b >= 0 ? b : undefined;
  }

  /** Hashes of the full blocks of `tokens` (convenience over {@link extendBlockHashes}). */
  hashTokens(tokens: ArrayLike<number>): bigint[] {
    return extendBlockHashes(tokens, this.blockSize, []);
  }

  /** Hashes of the full blocks of `tokens` as lanes (the form the fast methods take). */
  hashLanes(tokens: ArrayLike<number>): BlockLanes {
    return extendBlockLanes(tokens, this.blockSize, newBlockLanes(Math.floor(tokens.length / this.blockSize)));
  }

  /**
   * Longest cached prefix of a prompt whose full-block hashes are `hashes`, capped so that at
   * most `numTokens - 1` tokens hit.
   */
  findCachedPrefix(hashes: readonly bigint[], numTokens: number): CacheHit {
    const blocks: number[] = [];
    this.findPrefixLanes(lanesOf(hashes), numTokens, blocks);
    return { blocks, tokens: blocks.length * this.blockSize };
  }

  /** {@link findCachedPrefix} on lanes: appends the hit blocks to `out`; returns the hit tokens. */
  findPrefixLanes(hashes: BlockLanes, numTokens: number, out: number[]): number {
    const max = Math.min(hashes.count, Math.floor((numTokens - 1) / this.blockSize));
    const a = hashes.lanes;
    const t = this.#table;
    let n = 0;
    for (; n < max; n++) {
      const b = t.get(a[2 * n], a[2 * n + 1]);
      if (b < 0) break;
      out.push(b);
    }
    return n * this.blockSize;
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
      if (b >= this.#fresh) throw new Error(`block ${b} was never allocated`);
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
      let b: number;
      if (this.#fresh < this.numBlocks) {
        b = this.#fresh++;
        if (b >= this.#ref.length) this.#grow(b);
        this.#numFree--;
      } else {
        b = this.#head;
        this.#unlink(b);
      }
      this.#ref[b] = 1;
      if (this.#cachedFlag[b] === 1) {
        if (this.#onEvent) (removed ??= []).push(lanesToBigInt(this.#hashHi[b], this.#hashLo[b]));
        this.#uncache(b);
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
  cacheBlocks(blocks: readonly number[], hashes: readonly bigint[], tokens: ArrayLike<number>, from: number, to: number): void {
    this.cacheBlocksLanes(blocks, lanesOf(hashes), tokens, from, to);
  }

  /** {@link cacheBlocks} with the hashes as lanes; the tokens are `tokens` then `tail` (when given). */
  cacheBlocksLanes(blocks: readonly number[], hashes: BlockLanes, tokens: ArrayLike<number>, from: number, to: number, tail?: readonly number[]): void {
    const a = hashes.lanes;
    let firstStored = -1;
    let stored = 0;
    for (let i = from; i < to; i++) {
      const b = blocks[i];
      if (this.#cachedFlag[b] === 1) continue;
      const hi = a[2 * i];
      const lo = a[2 * i + 1];
      this.#cachedFlag[b] = 1;
      this.#hashHi[b] = hi;
      this.#hashLo[b] = lo;
      this.#cached++;
      this.#table.add(hi, lo, b);
      if (!this.#onEvent) continue;
      if (stored > 0 && firstStored + stored !== i) {
        this.#emitStored(hashes, tokens, firstStored, stored, tail);
        stored = 0;
      }
      if (stored === 0) firstStored = i;
      stored++;
    }
    if (stored > 0) this.#emitStored(hashes, tokens, firstStored, stored, tail);
  }

  /**
   * Drops one reference on each block, in reverse order so a request's tail blocks are evicted
   * before its head (vLLM frees the same way). Blocks reaching 0 join the free-queue tail.
   */
  free(blocks: readonly number[]): void {
    for (let i = blocks.length - 1; i >= 0; i--) {
      const b = blocks[i];
      if (b >= this.#fresh || this.#ref[b] <= 0) throw new Error(`block ${b} freed more often than taken`);
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
    this.#table.clear();
    this.#cached = 0;
    this.#cachedFlag.fill(0);
  }

  /** Block `b` loses its hash; another block holding it (if any) becomes the one lookups find. */
  #uncache(b: number): void {
    this.#cachedFlag[b] = 0;
    this.#cached--;
    this.#table.remove(this.#hashHi[b], this.#hashLo[b], b);
  }

  #emitStored(hashes: BlockLanes, tokens: ArrayLike<number>, first: number, count: number, tail: readonly number[] | undefined): void {
    const bs = this.blockSize;
    const blockHashes = new Array<bigint>(count);
    for (let k = 0; k < count; k++) blockHashes[k] = laneHash(hashes, first + k);
    const from = first * bs;
    const to = (first + count) * bs;
    let tokenIds = Array.prototype.slice.call(tokens, from, to) as number[];
    if (tail !== undefined && to > tokens.length) tokenIds = tokenIds.concat(tail.slice(Math.max(0, from - tokens.length), to - tokens.length));
    this.#onEvent!({
      type: 'BlockStored',
      blockHashes,
      parentBlockHash: first === 0 ? null : laneHash(hashes, first - 1),
      tokenIds,
      blockSize: bs,
      medium: 'GPU',
    });
  }

  /** The queue as at start: every block never used (0..N-1 in order), no linked part. */
  #initQueue(): void {
    this.#fresh = 0;
    this.#head = -1;
    this.#tail = -1;
    this.#inQueue.fill(0);
    this.#numFree = this.numBlocks;
  }

  #grow(b: number): void {
    let n = this.#ref.length;
    while (n <= b) n *= 2;
    n = Math.min(n, this.numBlocks);
    const g32 = (a: Int32Array): Int32Array => {
      const x = new Int32Array(n);
      x.set(a);
      return x;
    };
    const gu32 = (a: Uint32Array): Uint32Array => {
      const x = new Uint32Array(n);
      x.set(a);
      return x;
    };
    const g8 = (a: Uint8Array): Uint8Array => {
      const x = new Uint8Array(n);
      x.set(a);
      return x;
    };
    this.#ref = g32(this.#ref);
    this.#prev = g32(this.#prev);
    this.#next = g32(this.#next);
    this.#inQueue = g8(this.#inQueue);
    this.#cachedFlag = g8(this.#cachedFlag);
    this.#hashHi = gu32(this.#hashHi);
    this.#hashLo = gu32(this.#hashLo);
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
