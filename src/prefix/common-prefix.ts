/**
 * Common-prefix depth: how many leading blocks of a request are shared by (nearly) every recent
 * request, e.g. a system prompt or a tool preamble that all traffic starts with.
 *
 * Such a prefix says nothing about where a request belongs: every endpoint that served any
 * request holds it (or will after one prefill), so letting it decide placement sends all new
 * conversations to whichever endpoint saw the prefix first ("all traffic on one pod" at low load).
 * The prefix scorers therefore treat the common blocks as held by every candidate, so placement
 * follows the conversation- or document-specific part of the prompt.
 *
 * Algorithm: a ring of the block keys (chained, so a key stands for its whole prefix) of the last
 * `window` requests and a count per key. The depth of a new request is the longest run of its
 * leading keys each present in at least `share` x (requests in the ring) of them (and in two at
 * least), 0 until the ring holds `minRequests`, and at most `keys.length - 1` (a request always keeps one block of its own,
 * so a repeated identical prompt still goes where it is cached). Keys are chained, so counts
 * never increase along a prompt and the run stops at the first rarer block. A request records its
 * keys while they have been seen before, plus at most 32 never-seen ones (a new shared prefix is
 * still found, 32 blocks deeper per request that carries it).
 *
 * Cost per request: the depth is a binary search (a request's counts never increase along its
 * keys: a window request that recorded key j recorded every key before it, keys being chained),
 * so O(log maxBlocks) lookups; recording is one counted insert per recorded key (shared depth +
 * 32 at most); the request leaving the window takes its counts back by id (its recorded keys are
 * kept as the ids the counts gave them, one Int32Array), without hashing or probing again.
 * Block keys (numbers) are counted in typed arrays (key-counts.ts).
 */
import { KeyCounts } from './key-counts.js';

/**
 * Keys never seen before that one request records past its shared part. A request's tail is
 * mostly unique, so recording all of it costs map work for nothing; a prefix that starts to be
 * shared is still found, growing by this many blocks per request that carries it.
 */
const FRESH_KEYS = 32;

/** Options of {@link CommonPrefixTracker}. */
export interface CommonPrefixOptions {
  /** Share of recent requests a block must appear in to count as common (0 < share <= 1). */
  share: number;
  /** Recent requests remembered (default 200). */
  window?: number;
  /** Requests seen before any block counts as common (default 2). */
  minRequests?: number;
  /** Leading blocks tracked per request (default 512). */
  maxBlocks?: number;
}

/** Tracks the prefix (nearly) every recent request shares; see the file comment. */
export class CommonPrefixTracker<K> {
  readonly share: number;
  readonly window: number;
  readonly minRequests: number;
  readonly maxBlocks: number;
  /** Per window request: the ids of its recorded keys. */
  readonly #ring: (Int32Array | undefined)[];
  #ids = new Int32Array(64);
  readonly #counts = new KeyCounts<K>();
  #next = 0;
  #filled = 0;

  constructor(o: CommonPrefixOptions) {
    if (!(o.share > 0 && o.share <= 1)) throw new RangeError(`common-prefix share must be in (0, 1]; got ${o.share}`);
    this.share = o.share;
    this.window = Math.max(1, Math.floor(o.window ?? 200));
    this.minRequests = Math.min(this.window, Math.max(1, Math.floor(o.minRequests ?? 2)));
    this.maxBlocks = Math.max(1, Math.floor(o.maxBlocks ?? 512));
    this.#ring = new Array(this.window);
  }

  /** Requests in the window now. */
  get size(): number {
    return this.#filled;
  }

  /** Leading blocks of `keys` that count as common (see the file comment); does not record them. */
  depth(keys: ArrayLike<K>): number {
    if (this.#filled < this.minRequests || keys.length < 2) return 0;
    const need = Math.max(2, this.share * this.#filled);
    const limit = Math.min(keys.length - 1, this.maxBlocks);
    // Counts never increase along the keys: the first block below `need` by binary search.
    let lo = 0;
    let hi = limit;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#counts.get(keys[mid]) >= need) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Records a request's leading keys (the oldest request leaves the window when it is full). */
  observe(keys: ArrayLike<K>): void {
    const counts = this.#counts;
    const old = this.#ring[this.#next];
    if (old !== undefined) {
      for (let i = 0; i < old.length; i++) counts.decrementId(old[i]);
    } else this.#filled++;
    const n = Math.min(keys.length, this.maxBlocks);
    if (this.#ids.length < n) this.#ids = new Int32Array(Math.max(n, this.#ids.length * 2));
    const ids = this.#ids;
    // The recorded keys are always a leading run of `keys`: up to the 33rd never-seen one.
    let m = 0;
    let fresh = 0;
    if (keys instanceof Float64Array) {
      // Block keys (the approximate scorer's) in one batch; any rest (a stop) goes the general way.
      m = counts.incrementRun(keys, 0, n, ids, FRESH_KEYS);
      fresh = counts.runFresh;
    }
    for (; m < n; m++) {
      const id = counts.incrementId(keys[m]);
      if (counts.before === 0 && ++fresh > FRESH_KEYS) {
        counts.decrementId(id);
        break;
      }
      ids[m] = id;
    }
    this.#ring[this.#next] = ids.slice(0, m);
    this.#next = (this.#next + 1) % this.window;
  }

  /** {@link depth} of `keys`, then {@link observe} them. */
  depthThenObserve(keys: ArrayLike<K>): number {
    const d = this.depth(keys);
    this.observe(keys);
    return d;
  }
}
