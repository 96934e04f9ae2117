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
 * still found, 32 blocks deeper per request that carries it). Cost: O(shared depth + 32) map
 * operations per request, over at most `maxBlocks` leading blocks; block keys (numbers) are
 * counted in typed arrays (key-counts.ts), and a request's recorded keys are one copied slice.
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
  readonly #ring: (ArrayLike<K> | undefined)[];
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
    let d = 0;
    while (d < limit && this.#counts.get(keys[d]) >= need) d++;
    return d;
  }

  /** Records a request's leading keys (the oldest request leaves the window when it is full). */
  observe(keys: ArrayLike<K>): void {
    const old = this.#ring[this.#next];
    if (old !== undefined) {
      for (let i = 0; i < old.length; i++) this.#counts.decrement(old[i]);
    } else this.#filled++;
    const n = Math.min(keys.length, this.maxBlocks);
    // The recorded keys are always a leading run of `keys`: up to the 33rd never-seen one.
    let m = 0;
    let fresh = 0;
    for (; m < n; m++) {
      if (this.#counts.increment(keys[m]) === 0 && ++fresh > FRESH_KEYS) {
        this.#counts.decrement(keys[m]);
        break;
      }
    }
    const kept: ArrayLike<K> = ArrayBuffer.isView(keys) ? (keys as unknown as Float64Array).slice(0, m) as unknown as ArrayLike<K> : Array.prototype.slice.call(keys, 0, m);
    this.#ring[this.#next] = kept;
    this.#next = (this.#next + 1) % this.window;
  }

  /** {@link depth} of `keys`, then {@link observe} them. */
  depthThenObserve(keys: ArrayLike<K>): number {
    const d = this.depth(keys);
    this.observe(keys);
    return d;
  }
}
