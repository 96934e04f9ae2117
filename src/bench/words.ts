/**
 * Deterministic synthetic text whose token ids are known without tokenizing.
 *
 * Every word is a space and three lower-case letters (` abc`): the simulator's built-in
 * tokenizer turns each such piece into exactly one token, and real BPE tokenizers into one or
 * two. So a generator can emit text of exactly N simulator tokens AND its token ids (for the
 * virtual engine and the oracle) without running a tokenizer over millions of characters:
 *
 *   word w (0..17575)  -> text ` xyz`, token id = BuiltinTokenizer.encode(' xyz')[0]
 *   text of N words    -> 4N characters, N tokens (ids concatenate; no BOS for completions)
 *
 * Words come from a 32-bit mix of a (stream, position) pair, so two texts share a prefix exactly
 * where their streams are equal.
 */
import { BuiltinTokenizer } from '../sim/tokenizer.js';

/** Distinct words (26^3). */
export const WORD_COUNT = 17_576;

let table: { text: string[]; ids: Int32Array } | undefined;

function wordTable(): { text: string[]; ids: Int32Array } {
  if (table) return table;
  const tok = new BuiltinTokenizer();
  const text: string[] = new Array(WORD_COUNT);
  const ids = new Int32Array(WORD_COUNT);
  for (let w = 0; w < WORD_COUNT; w++) {
    const s = ' ' + String.fromCharCode(97 + Math.floor(w / 676), 97 + (Math.floor(w / 26) % 26), 97 + (w % 26));
    text[w] = s;
    const enc = tok.encode(s);
    if (enc.length !== 1) throw new Error(`word '${s}' is not one built-in token`);
    ids[w] = enc[0];
  }
  table = { text, ids };
  return table;
}

/** 32-bit integer mix (lowbias32). */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** A deterministic 32-bit stream id from a label (FNV-1a). */
export function streamId(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A piece of prompt: text and its built-in token ids (always the same length in tokens as words). */
export interface TextPiece {
  text: string;
  tokens: number[];
}

const cache = new Map<string, TextPiece>();
const CACHE_MAX = 1024;

/**
 * `n` words of stream `stream` (word i = mix(stream, i)). Recent results are cached (shared system
 * prompts are asked for once per request); callers must not mutate the returned piece.
 */
export function words(stream: number, n: number): TextPiece {
  const key = `${stream}:${n}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const piece = makeWords(stream, n);
  if (n >= 256) {
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(key, piece);
  }
  return piece;
}

function makeWords(stream: number, n: number): TextPiece {
  const t = wordTable();
  const parts: string[] = new Array(n);
  const tokens: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const w = mix32((stream ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0) % WORD_COUNT;
    parts[i] = t.text[w];
    tokens[i] = t.ids[w];
  }
  return { text: parts.join(''), tokens };
}

/** Concatenation of pieces. */
export function concat(...pieces: TextPiece[]): TextPiece {
  let text = '';
  const arrays: number[][] = new Array(pieces.length);
  for (let i = 0; i < pieces.length; i++) {
    text += pieces[i].text;
    arrays[i] = pieces[i].tokens;
  }
  // One native copy into a packed array (pushing token by token grew it several times).
  const tokens = ([] as number[]).concat(...arrays);
  return { text, tokens };
}
