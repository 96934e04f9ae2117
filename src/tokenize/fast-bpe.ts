/**
 * A fast, exact encoder for byte-level BPE tokenizers (GPT-2, Llama 3, Qwen 2 tokenizer.json):
 * the same token ids as `@huggingface/tokenizers`' `encode(text, {add_special_tokens: false})`,
 * several times cheaper on text it has not seen as a whole, because it remembers pre-tokens.
 *
 * Algorithm (the library's pipeline, step by step, with a cache in the middle):
 *   1. Added tokens: the text is split at occurrences of added-token contents, leftmost, longest
 *      first at a position (the library's trie splitter; here one sticky-free regex alternation
 *      sorted by length, which matches the same occurrences). Each occurrence is its token id.
 *   2. Pre-tokens: every other section is split with the pre-tokenizer's regex, the library's own
 *      compiled RegExp (passed in by the caller), keeping the text between matches as pieces like
 *      the library's `Split` with behaviour Isolated (or dropping it, for `ByteLevel`'s own regex).
 *   3. Pieces -> ids: a two-generation cache maps a piece's text to its ids (most pieces of natural
 *      text are words seen before). A miss runs BPE on the piece's UTF-8 bytes: with
 *      `ignore_merges`, a piece that is itself a vocabulary entry is that entry; otherwise the
 *      lowest-ranked adjacent pair is merged, leftmost first on equal rank, until no pair has a
 *      rank (a binary heap of (rank, position) with stale entries skipped, O(n log n); the
 *      library's heap gives the same order: rank plus a position bias below 1).
 * Anything the library would treat differently (a byte or merge result not in the vocabulary, a
 * piece longer than 2^20 bytes) makes {@link ByteLevelBpe.encode} return undefined, and the
 * caller tokenizes that text with the library instead: the fast path is exact or absent.
 * {@link ByteLevelBpe.fromTokenizerJson} accepts only the configurations this mirrors (no
 * normalizer-dependent added tokens, no BPE dropout, suffixes or byte fallback; ids one to one).
 */

import { BYTE_CHARS, writeUtf8 } from './byte-level.js';
import { PairTable, UNRESOLVED } from './pair-table.js';

/** Ids below 2^21 - 1 (NO_ID: a merge result outside the vocabulary). */
const NO_ID = 2 ** 21 - 1;
/** Heap keys are rank * 2^20 + position. */
const POS_SPACE = 2 ** 20;
/** Pieces longer than this (characters) are not cached (a cache of words, not of paragraphs). */
const MAX_CACHED_PIECE = 64;

/** How the pre-tokenizer's regex splits a section. */
export type PieceSplit = {
  /** The library's compiled pattern (global flag). */
  regex: RegExp;
  /** 'isolated': matches and the text between them are pieces (Split, Isolated); 'matches': only matches (ByteLevel). */
  mode: 'isolated' | 'matches';
};

/** Counters of a {@link ByteLevelBpe}. */
export interface FastBpeStats {
  /** Texts encoded by the fast path / handed back to the library. */
  texts: number;
  fallbacks: number;
  /** Pieces served from the cache / run through BPE. */
  pieceHits: number;
  pieceMisses: number;
  /** Pieces cached now (both generations). */
  cachedPieces: number;
}

type Json = Record<string, unknown>;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Exact byte-level BPE with a pre-token cache. See the module comment. */
export class ByteLevelBpe {
  readonly #strToId: Map<string, number>;
  /** (left id, right id) -> rank and merged id (resolved on first use; NO_ID: not in the vocabulary). */
  readonly #merges: PairTable;
  /** id -> token string. */
  readonly #idToStr: string[];
  readonly #byteIds: Int32Array;
  readonly #ignoreMerges: boolean;
  readonly #added: RegExp | undefined;
  readonly #addedIds: Map<string, number>;
  readonly #split: RegExp;
  readonly #isolated: boolean;
  readonly #capacity: number;
  #young = new Map<string, number | number[]>();
  #old = new Map<string, number | number[]>();
  // Scratch buffers, grown on demand (one encoder per thread, encode is synchronous).
  #bytes = new Uint8Array(256);
  #ids = new Int32Array(256);
  #next = new Int32Array(256);
  #prev = new Int32Array(256);
  #heap = new Float64Array(256);
  readonly #stats = { texts: 0, fallbacks: 0, pieceHits: 0, pieceMisses: 0 };

  private constructor(
    strToId: Map<string, number>,
    idToStr: string[],
    merges: PairTable,
    ignoreMerges: boolean,
    added: ReadonlyArray<{ content: string; id: number }>,
    split: PieceSplit,
    capacity: number,
  ) {
    this.#strToId = strToId;
    this.#merges = merges;
    this.#idToStr = idToStr;
    this.#ignoreMerges = ignoreMerges;
    this.#byteIds = Int32Array.from(BYTE_CHARS, (c) => strToId.get(c) ?? -1);
    this.#addedIds = new Map(added.map((a) => [a.content, a.id]));
    const contents = [...this.#addedIds.keys()].filter((c) => c.length > 0).sort((a, b) => b.length - a.length);
    this.#added = contents.length ? new RegExp(contents.map(escapeRe).join('|'), 'g') : undefined;
    this.#split = new RegExp(split.regex.source, split.regex.flags.includes('g') ? split.regex.flags : split.regex.flags + 'g');
    this.#isolated = split.mode === 'isolated';
    this.#capacity = capacity;
  }

  /**
   * The fast path for a parsed tokenizer.json, or undefined when its model is not a byte-level
   * BPE this class mirrors exactly. `split` is the library's own pre-tokenizer regex.
   * @param pieceCacheSize pieces kept per cache generation (default 65,536)
   */
  static fromTokenizerJson(json: Json, split: PieceSplit, pieceCacheSize = 65_536): ByteLevelBpe | undefined {
    const model = json.model as Json | undefined;
    if (!model || model.type !== 'BPE' || model.dropout != null || model.byte_fallback === true) return undefined;
    if (model.end_of_word_suffix != null || model.continuing_subword_suffix != null) return undefined;
    if (json.normalizer != null) return undefined;
    const vocab = model.vocab as Record<string, unknown> | undefined;
    if (!vocab || typeof vocab !== 'object' || Array.isArray(vocab) || !Array.isArray(model.merges)) return undefined;
    // Token string -> id as the library resolves it: the vocabulary, then added tokens over it.
    const strToId = new Map<string, number>();
    const idToStr: string[] = [];
    const seenIds = new Uint8Array(NO_ID);
    for (const s in vocab) {
      const id = vocab[s];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= NO_ID || seenIds[id] === 1) return undefined;
      strToId.set(s, id);
      idToStr[id] = s;
      seenIds[id] = 1;
    }
    const added: { content: string; id: number }[] = [];
    for (const a of (Array.isArray(json.added_tokens) ? json.added_tokens : []) as Json[]) {
      const content = a.content;
      const id = a.id;
      if (typeof content !== 'string' || typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= NO_ID) return undefined;
      if (a.lstrip || a.rstrip || a.single_word || a.normalized) return undefined;
      const prev = strToId.get(content);
      // Ids must stay one to one, or merging by id would differ from merging by string.
      if (prev !== undefined && prev !== id) return undefined;
      if (prev === undefined && seenIds[id] === 1) return undefined;
      strToId.set(content, id);
      idToStr[id] = content;
      seenIds[id] = 1;
      added.push({ content, id });
    }
    // Merge ranks keyed by (left id, right id); like the library, a later duplicate pair wins.
    // The merged token's id is resolved on first use (most of the 280k merges of a large
    // vocabulary never apply to the text a router sees).
    const list = model.merges as unknown[];
    const merges = new PairTable(list.length);
    for (let rank = 0; rank < list.length; rank++) {
      const m = list[rank];
      let a: string | undefined;
      let b: string | undefined;
      if (Array.isArray(m)) {
        if (typeof m[0] !== 'string' || typeof m[1] !== 'string') return undefined;
        a = m[0];
        b = m[1];
      } else if (typeof m === 'string') {
        // The library's m.split(' ', 2): the text before the first space and up to the second.
        const i = m.indexOf(' ');
        if (i < 0) continue; // [a, undefined]: a pair that never matches
        const j = m.indexOf(' ', i + 1);
        a = m.slice(0, i);
        b = j < 0 ? m.slice(i + 1) : m.slice(i + 1, j);
      } else return undefined;
      const ia = strToId.get(a);
      const ib = strToId.get(b);
      // A merge of tokens outside the vocabulary can never apply to ids we produce.
      if (ia === undefined || ib === undefined) continue;
      merges.set(ia, ib, rank);
    }
    return new ByteLevelBpe(strToId, idToStr, merges, model.ignore_merges === true, added, split, Math.max(1, Math.floor(pieceCacheSize)));
  }

  /** Counters (a copy). */
  stats(): FastBpeStats {
    return { ...this.#stats, cachedPieces: this.#young.size + this.#old.size };
  }

  /** Ids of `text` without post-processor specials, or undefined: tokenize it with the library. */
  encode(text: string): number[] | undefined {
    this.#stats.texts++;
    const out: number[] = [];
    const re = this.#added;
    let ok = true;
    if (re === undefined) ok = this.#section(text, 0, text.length, out);
    else {
      re.lastIndex = 0;
      let from = 0;
      let m: RegExpExecArray | null;
      while (ok && (m = re.exec(text)) !== null) {
        if (m.index > from) ok = this.#section(text, from, m.index, out);
        out.push(this.#addedIds.get(m[0])!);
        from = m.index + m[0].length;
      }
      if (ok && from < text.length) ok = this.#section(text, from, text.length, out);
    }
    if (!ok) {
      this.#stats.fallbacks++;
      return undefined;
    }
    return out;
  }

  /** Pre-tokenizes text[a, b) and appends the ids of its pieces. */
  #section(text: string, a: number, b: number, out: number[]): boolean {
    const s = a === 0 && b === text.length ? text : text.slice(a, b);
    const re = this.#split;
    re.lastIndex = 0;
    let prev = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(s)) !== null) {
      const len = m[0].length;
      if (this.#isolated && prev < m.index && !this.#piece(s.slice(prev, m.index), out)) return false;
      if (len > 0) {
        if (!this.#piece(m[0], out)) return false;
      } else re.lastIndex = advance(s, re.lastIndex, re.unicode);
      prev = m.index + len;
    }
    if (this.#isolated && prev < s.length && !this.#piece(s.slice(prev), out)) return false;
    return true;
  }

  /** Appends the ids of one piece (cache, then BPE). */
  #piece(p: string, out: number[]): boolean {
    let v = this.#young.get(p);
    if (v === undefined) {
      v = this.#old.get(p);
      if (v !== undefined) this.#remember(flatCopy(p), v); // promoted: still used
    }
    if (v !== undefined) {
      this.#stats.pieceHits++;
      if (typeof v === 'number') out.push(v);
      else for (let i = 0; i < v.length; i++) out.push(v[i]);
      return true;
    }
    this.#stats.pieceMisses++;
    const start = out.length;
    if (!this.#bpe(p, out)) return false;
    if (p.length <= MAX_CACHED_PIECE) {
      const n = out.length - start;
      // A flat copy of the key: a slice of the prompt would keep the whole prompt alive.
      this.#remember(flatCopy(p), n === 1 ? out[start] : out.slice(start));
    }
    return true;
  }

  #remember(key: string, v: number | number[]): void {
    this.#young.set(key, v);
    if (this.#young.size >= this.#capacity) {
      this.#old = this.#young;
      this.#young = new Map();
    }
  }

  /** BPE of one piece's UTF-8 bytes; appends the ids. False when the library would differ. */
  #bpe(p: string, out: number[]): boolean {
    const n = this.#utf8(p);
    if (n === 0) return true;
    if (n >= POS_SPACE) return false;
    const bytes = this.#bytes;
    if (this.#ignoreMerges) {
      let s = '';
      for (let i = 0; i < n; i++) s += BYTE_CHARS[bytes[i]];
      const id = this.#strToId.get(s);
      if (id !== undefined) {
        out.push(id);
        return true;
      }
    }
    if (this.#ids.length < n) {
      const size = Math.max(n, this.#ids.length * 2);
      this.#ids = new Int32Array(size);
      this.#next = new Int32Array(size);
      this.#prev = new Int32Array(size);
      this.#heap = new Float64Array(size);
    }
    const ids = this.#ids;
    const next = this.#next;
    const prev = this.#prev;
    for (let i = 0; i < n; i++) {
      const id = this.#byteIds[bytes[i]];
      if (id < 0) return false;
      ids[i] = id;
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap = this.#heap;
    let size = 0;
    const push = (key: number): void => {
      let i = size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (heap[parent] <= key) break;
        heap[i] = heap[parent];
        i = parent;
      }
      heap[i] = key;
    };
    const pop = (): number => {
      const top = heap[0];
      const last = heap[--size];
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= size) break;
        const c = l + 1 < size && heap[l + 1] < heap[l] ? l + 1 : l;
        if (heap[c] >= last) break;
        heap[i] = heap[c];
        i = c;
      }
      heap[i] = last;
      return top;
    };
    const merges = this.#merges;
    const queue = (i: number): void => {
      const j = next[i];
      if (j < 0) return;
      const slot = merges.find(ids[i], ids[j]);
      if (slot >= 0) push(merges.rank(slot) * POS_SPACE + i);
    };
    for (let i = 0; i + 1 < n; i++) queue(i);
    while (size > 0) {
      const key = pop();
      const rank = Math.floor(key / POS_SPACE);
      const i = key - rank * POS_SPACE;
      const j = next[i];
      if (ids[i] < 0 || j < 0) continue; // stale: merged away, or nothing to its right any more
      const slot = merges.find(ids[i], ids[j]);
      if (slot < 0 || merges.rank(slot) !== rank) continue; // stale: the pair changed
      const merged = this.#mergedId(slot, ids[i], ids[j]);
      if (merged === NO_ID) return false; // the library would look up a token not in the vocabulary
      ids[i] = merged;
      ids[j] = -1;
      next[i] = next[j];
      if (next[j] >= 0) prev[next[j]] = i;
      if (prev[i] >= 0) queue(prev[i]);
      queue(i);
    }
    for (let i = 0; i >= 0; i = next[i]) out.push(ids[i]);
    return true;
  }

  /** The id of the token that merging `left` and `right` makes (NO_ID when the vocabulary lacks it). */
  #mergedId(slot: number, left: number, right: number): number {
    let id = this.#merges.merged(slot);
    if (id === UNRESOLVED) {
      id = this.#strToId.get(this.#idToStr[left] + this.#idToStr[right]) ?? NO_ID;
      this.#merges.setMerged(slot, id);
    }
    return id;
  }

  /** Writes the UTF-8 bytes of `s` into the scratch buffer (grown as needed); returns their count. */
  #utf8(s: string): number {
    if (this.#bytes.length < s.length * 3) this.#bytes = new Uint8Array(Math.max(s.length * 3, this.#bytes.length * 2));
    return writeUtf8(s, this.#bytes);
  }
}

/** Where a global regex resumes after an empty match (a code point further in unicode mode). */
function advance(s: string, i: number, unicode: boolean): number {
  if (unicode && i < s.length - 1) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) return i + 2;
    }
  }
  return i + 1;
}

/** A copy of `s` that does not share storage with a larger string (V8 copies short slices anyway). */
function flatCopy(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf16le').toString('utf16le');
}
