/**
 * Prefix-cached tokenization: a prompt whose beginning was tokenized before (a shared system
 * prompt, the earlier turns of a conversation) only pays for its new part, and the result is
 * EXACTLY the tokens of the whole text.
 *
 * The text is cut into blocks of `blockChars` characters; block i is identified by the chain
 * (entry of block i-1, text of block i), so an entry stands for the whole text up to its block's
 * end. In each block the cache picks a cut: the last position c in the block (at least `window`
 * characters from both block edges) where the encoder's {@link SafeCutRule} proves that
 * tokens(t) = tokens(t[0:c]) ++ tokens(t[c:]). An entry keeps the tokens of the segment between
 * the previous cut and its own (no cut in a block: an empty segment, the next one starts earlier).
 *
 *   text   |  block 0   |  block 1   |  block 2   | tail
 *   cuts          c0           c1           c2
 *   entries  [0,c0) toks  [c0,c1) toks [c1,c2) toks        tail: tokenized, not stored
 *
 * Lookup walks the chain block by block while entries exist, reusing their segments; the rest
 * (from the last reused cut to the end) is tokenized segment by segment at the cuts of the new
 * text's blocks, and those segments become new entries. Why this is exact: every cut is a safe
 * cut of the text it was computed on, the rule reads only characters inside the block (the
 * `window` margin), and a chain key holds the exact text of every block up to it, so the same cut
 * is safe in every text that reaches the entry; concatenating the tokens of segments cut at safe
 * positions is the tokens of the whole. Keys hold the block text itself (Map equality), so there
 * are no hash collisions. Memory is bounded: entries are kept in LRU order and evicted beyond
 * `maxBytes` (key characters x 2 + 4 bytes per token + overhead).
 */
import type { SafeCutRule } from './encoder.js';

/** Options of {@link PrefixTokenCache}. */
export interface PrefixCacheOptions {
  /** Characters per block (default 512; at least 4 x the rule's window). */
  blockChars?: number;
  /** Memory bound in bytes (default 32 MiB). */
  maxBytes?: number;
}

/** Counters of a {@link PrefixTokenCache}. */
export interface PrefixCacheStats {
  /** Texts looked up (at least one full block long). */
  lookups: number;
  /** Blocks found in the cache / not found. */
  hitBlocks: number;
  missBlocks: number;
  /** Characters whose tokens came from the cache / were tokenized. */
  reusedChars: number;
  encodedChars: number;
  /** Tokens taken from the cache; all tokens produced through the cache. */
  reusedTokens: number;
  totalTokens: number;
  /** Entries and their accounted bytes now; entries evicted so far. */
  entries: number;
  bytes: number;
  evictions: number;
}

interface Entry {
  readonly id: number;
  readonly key: string;
  /** Absolute character positions of the segment this entry holds. */
  readonly start: number;
  readonly cut: number;
  readonly tokens: Int32Array;
  readonly bytes: number;
}

interface PendingBlock {
  block: number;
  start: number;
  cut: number;
  /** Index of its segment in the plan, -1 when the block had no cut. */
  segment: number;
}

/** What to tokenize for one text: `segments` (absolute char ranges, in order, from `start`). */
export interface TokenizePlan {
  readonly text: string;
  /** Characters covered by reused entries. */
  readonly start: number;
  /** Ranges to tokenize, contiguous from `start` to the end of the text. */
  readonly segments: ReadonlyArray<readonly [number, number]>;
  /** @internal */
  readonly reused: readonly Int32Array[];
  /** @internal id of the last reused entry (0: none) */
  readonly lastId: number;
  /** @internal */
  readonly pending: readonly PendingBlock[];
  /** @internal */
  readonly firstNewBlock: number;
}

const ENTRY_OVERHEAD = 96;

/** A bounded cache of token segments keyed by text-block chains. See the module comment. */
export class PrefixTokenCache {
  readonly blockChars: number;
  readonly maxBytes: number;
  readonly #rule: SafeCutRule;
  readonly #map = new Map<string, Entry>();
  #nextId = 1;
  readonly #stats: PrefixCacheStats = {
    lookups: 0,
    hitBlocks: 0,
    missBlocks: 0,
    reusedChars: 0,
    encodedChars: 0,
    reusedTokens: 0,
    totalTokens: 0,
    entries: 0,
    bytes: 0,
    evictions: 0,
  };

  constructor(rule: SafeCutRule, opts: PrefixCacheOptions = {}) {
    this.#rule = rule;
    const min = Math.max(16, 4 * rule.window);
    this.blockChars = Math.max(min, Math.floor(opts.blockChars ?? 512));
    this.maxBytes = Math.max(0, Math.floor(opts.maxBytes ?? 32 * 1024 * 1024));
  }

  /** A copy of the counters. */
  stats(): PrefixCacheStats {
    return { ...this.#stats, entries: this.#map.size };
  }

  /** Drops every entry. */
  clear(): void {
    this.#map.clear();
    this.#stats.bytes = 0;
  }

  #key(prevId: number, text: string, block: number): string {
    const b = this.blockChars;
    return prevId.toString(36) + '\u0001' + text.slice(block * b, (block + 1) * b);
  }

  /** The last safe cut of `block`, or -1. */
  #findCut(text: string, block: number): number {
    const b = this.blockChars;
    const w = this.#rule.window;
    const lo = block * b + w;
    for (let c = (block + 1) * b - w; c >= lo; c--) if (this.#rule.isSafe(text, c)) return c;
    return -1;
  }

  /** Plans the tokenization of `text`: what is reused, which segments remain to tokenize. */
  plan(text: string): TokenizePlan {
    const nBlocks = Math.floor(text.length / this.blockChars);
    const reused: Int32Array[] = [];
    let prevId = 0;
    let cut = 0;
    let i = 0;
    if (nBlocks > 0) this.#stats.lookups++;
    for (; i < nBlocks; i++) {
      const key = this.#key(prevId, text, i);
      const e = this.#map.get(key);
      if (!e || e.start !== cut) break;
      this.#map.delete(key);
      this.#map.set(key, e);
      if (e.tokens.length) reused.push(e.tokens);
      prevId = e.id;
      cut = e.cut;
    }
    this.#stats.hitBlocks += i;
    this.#stats.missBlocks += nBlocks - i;
    const segments: Array<[number, number]> = [];
    const pending: PendingBlock[] = [];
    let segStart = cut;
    for (let j = i; j < nBlocks; j++) {
      const c = this.#findCut(text, j);
      if (c > segStart) {
        segments.push([segStart, c]);
        pending.push({ block: j, start: segStart, cut: c, segment: segments.length - 1 });
        segStart = c;
      } else {
        pending.push({ block: j, start: segStart, cut: segStart, segment: -1 });
      }
    }
    segments.push([segStart, text.length]);
    return { text, start: cut, segments, reused, lastId: prevId, pending, firstNewBlock: i };
  }

  /**
   * Stores the new entries of `plan` from the tokens of its segments (same order) and returns the
   * tokens of the whole text.
   */
  commit(plan: TokenizePlan, segmentTokens: ReadonlyArray<ArrayLike<number>>): number[] {
    if (segmentTokens.length !== plan.segments.length) throw new Error('segment count mismatch');
    let prevId = plan.lastId;
    for (const p of plan.pending) {
      const key = this.#key(prevId, plan.text, p.block);
      const existing = this.#map.get(key);
      if (existing && existing.start === p.start && existing.cut === p.cut) {
        prevId = existing.id;
        continue;
      }
      if (existing) this.#remove(key, existing);
      const tokens = p.segment >= 0 ? Int32Array.from(segmentTokens[p.segment]) : new Int32Array(0);
      // A flat copy of the key, so the entry does not keep the whole prompt string alive.
      const flatKey = Buffer.from(key, 'utf16le').toString('utf16le');
      const e: Entry = { id: this.#nextId++, key: flatKey, start: p.start, cut: p.cut, tokens, bytes: flatKey.length * 2 + tokens.byteLength + ENTRY_OVERHEAD };
      this.#map.set(flatKey, e);
      this.#stats.bytes += e.bytes;
      prevId = e.id;
    }
    this.#evict();
    let n = 0;
    for (const r of plan.reused) n += r.length;
    const reusedTokens = n;
    for (const s of segmentTokens) n += s.length;
    const out = new Array<number>(n);
    let k = 0;
    for (const r of plan.reused) for (let j = 0; j < r.length; j++) out[k++] = r[j];
    for (const s of segmentTokens) for (let j = 0; j < s.length; j++) out[k++] = s[j];
    this.#stats.reusedChars += plan.start;
    this.#stats.encodedChars += plan.text.length - plan.start;
    this.#stats.reusedTokens += reusedTokens;
    this.#stats.totalTokens += n;
    return out;
  }

  #remove(key: string, e: Entry): void {
    this.#map.delete(key);
    this.#stats.bytes -= e.bytes;
  }

  #evict(): void {
    while (this.#stats.bytes > this.maxBytes && this.#map.size > 0) {
      const [key, e] = this.#map.entries().next().value as [string, Entry];
      this.#remove(key, e);
      this.#stats.evictions++;
    }
  }
}
