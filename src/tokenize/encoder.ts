/**
 * Text encoders behind the router's tokenizer: a Hugging Face `tokenizer.json` folder or the
 * simulator's built-in tokenizer, with what the prefix cache needs to know about them.
 *
 * A {@link TokenEncoder} encodes text WITHOUT the post-processor's special tokens
 * (`encodePlain`); `add_special_tokens=true` is `specialPrefix ++ encodePlain(text) ++
 * specialSuffix`, the single-sequence template of the tokenizer's post-processor (probed at load,
 * e.g. `[<|begin_of_text|>]` for a Llama 3 tokenizer.json whose post-processor is
 * TemplateProcessing, nothing for the first Llama 3 release whose post-processor is ByteLevel).
 *
 * Safe cuts. The prefix cache splits a text at positions `c` where
 * `encodePlain(t) == encodePlain(t[0:c]) ++ encodePlain(t[c:])` is guaranteed by the tokenizer's
 * structure, not by luck. For byte-level BPE behind a regex pre-tokenizer (GPT-2, Llama 3,
 * Qwen 2) that holds at any `c` where:
 *   1. the text is split on added tokens first: no occurrence of an added token's content
 *      overlaps t[c-1..c] (checked with every added token, longest first, in a window around c),
 *      and no added token strips whitespace (lstrip/rstrip/single_word) or is normalized;
 *   2. there is no normalizer and the byte-level step neither adds a prefix space nor splits
 *      on its own;
 *   3. t[c-1] is a letter (\p{L}) and t[c] is not. No alternative of these pre-tokenizer regexes
 *      matches a letter followed by a non-letter (contractions and `\p{L}+` end in letters,
 *      the other alternatives hold no letters), so the pre-token holding t[c-1] ends at c; the
 *      regexes have no look-behind, so pre-tokens after c are those of t[c:]; BPE never merges
 *      across pre-tokens.
 * Any other tokenizer.json gets no safe cuts (the cache is then bypassed: always exact).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { KvrError } from '../core/errors.js';
import { BuiltinTokenizer } from '../sim/tokenizer.js';
import { ByteLevelBpe, type FastBpeStats, type PieceSplit } from './fast-bpe.js';
import { ChatRenderer, LLAMA3_CHAT_TEMPLATE } from './vllm-chat.js';

/**
 * Where an encoder comes from (also what a worker thread needs to load its own copy). `fastPath`
 * (default true) uses the fast exact byte-level BPE path where the tokenizer allows it
 * (fast-bpe.ts); false tokenizes with @huggingface/tokenizers alone (the benchmarks' baseline).
 */
export type EncoderSpec = { kind: 'builtin' } | { kind: 'dir'; dir: string; fastPath?: boolean };

/** Decides whether a text may be cut at a position without changing its tokens. */
export interface SafeCutRule {
  /** Characters on each side of `c` that {@link SafeCutRule.isSafe} reads (t[c-window, c+window)). */
  readonly window: number;
  /** True when encodePlain(t) == encodePlain(t[0:c]) ++ encodePlain(t[c:]) is guaranteed. */
  isSafe(text: string, c: number): boolean;
}

/** A loaded tokenizer as the router uses it. */
export interface TokenEncoder {
  readonly spec: EncoderSpec;
  /** Ids of `text` with no special tokens added by the post-processor. */
  encodePlain(text: string): number[];
  /** Ids the post-processor puts before / after one sequence when add_special_tokens is true. */
  readonly specialPrefix: readonly number[];
  readonly specialSuffix: readonly number[];
  /** The safe-cut rule of this tokenizer, or undefined when none is proven (no prefix caching). */
  readonly safeCut: SafeCutRule | undefined;
  /** Renders chat like vLLM with this tokenizer's template and special tokens. */
  readonly chat: ChatRenderer;
  /** Counters of the fast byte-level BPE path, or undefined when this tokenizer has none. */
  fastPathStats?(): FastBpeStats | undefined;
}

/** Full encoding with or without the post-processor's special tokens. */
export function encodeFull(enc: TokenEncoder, text: string, addSpecialTokens: boolean): number[] {
  const ids = enc.encodePlain(text);
  if (!addSpecialTokens || (enc.specialPrefix.length === 0 && enc.specialSuffix.length === 0)) return ids;
  return [...enc.specialPrefix, ...ids, ...enc.specialSuffix];
}

// Pre-tokenizer regexes with a proven "letter then non-letter" boundary (see the header).
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const KNOWN_SPLITS = new Set([LLAMA3_SPLIT, QWEN2_SPLIT]);

type Json = Record<string, unknown>;

/** True when the pre-tokenizer is one of the regex byte-level ones the boundary proof covers. */
function preTokenizerIsKnown(pre: unknown): boolean {
  if (!pre || typeof pre !== 'object') return false;
  const p = pre as Json;
  // GPT-2 style: ByteLevel with its built-in regex.
  if (p.type === 'ByteLevel') return p.add_prefix_space === false && p.use_regex !== false;
  if (p.type !== 'Sequence' || !Array.isArray(p.pretokenizers) || p.pretokenizers.length !== 2) return false;
  const [split, bl] = p.pretokenizers as Json[];
  const pattern = (split.pattern as Json | undefined)?.Regex;
  return (
    split.type === 'Split' &&
    typeof pattern === 'string' &&
    KNOWN_SPLITS.has(pattern) &&
    split.behavior === 'Isolated' &&
    split.invert !== true &&
    bl.type === 'ByteLevel' &&
    bl.add_prefix_space === false &&
    bl.use_regex === false
  );
}

const LETTER = /\p{L}/u;
const isSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdfff;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The safe-cut rule for regex byte-level BPE tokenizers with these added tokens. */
class ByteLevelBpeCutRule implements SafeCutRule {
  readonly window: number;
  readonly #added: RegExp | undefined;
  readonly #firstChars: Set<string>;
  readonly #maxLen: number;

  constructor(addedContents: readonly string[]) {
    const contents = [...new Set(addedContents.filter((s) => s.length > 0))].sort((a, b) => b.length - a.length);
    this.#maxLen = contents.reduce((m, s) => Math.max(m, s.length), 0);
    this.#firstChars = new Set(contents.map((s) => s[0]));
    this.#added = contents.length ? new RegExp(contents.map(escapeRe).join('|'), 'y') : undefined;
    this.window = this.#maxLen + 2;
  }

  isSafe(text: string, c: number): boolean {
    if (c <= 0 || c >= text.length) return false;
    const a = text.charCodeAt(c - 1);
    const b = text.charCodeAt(c);
    if (isSurrogate(a) || isSurrogate(b)) return false;
    if (!LETTER.test(text[c - 1]) || LETTER.test(text[c])) return false;
    const re = this.#added;
    if (!re) return true;
    // No added-token occurrence may overlap [c-1, c+1): starts in [c-maxLen, c], ends > c-1.
    for (let s = Math.max(0, c - this.#maxLen); s <= c; s++) {
      if (!this.#firstChars.has(text[s])) continue;
      re.lastIndex = s;
      const m = re.exec(text);
      if (m && s + m[0].length > c - 1) return false;
    }
    return true;
  }
}

/** Text the fast path must tokenize like the library before it is used (letters, digits, spaces, symbols, scripts). */
const FAST_PATH_PROBE =
  "Hello, World! It's 12345 o'clock;  we'LL see\n\n\tdone.\r\n  naïve café Straße ΑΒΓ привет 東京タワー 한국어 عربى हिन्दी 😀👍🏽 \u00a0\u2028 x\ud800y ==== ```js\nconst a = 1;```   ";

/** The library's compiled pre-tokenizer regex and how it is applied, when its shape is the one we mirror. */
function librarySplit(tok: Tokenizer): PieceSplit | undefined {
  const pre = (tok as unknown as { pre_tokenizer?: Record<string, unknown> }).pre_tokenizer;
  if (!pre) return undefined;
  const steps = pre.tokenizers;
  if (Array.isArray(steps)) {
    const [split, bl] = steps as Record<string, unknown>[];
    const cfg = split?.config as Json | undefined;
    const blCfg = bl?.config as Json | undefined;
    if (steps.length !== 2 || !(split?.pattern instanceof RegExp) || cfg?.behavior !== 'Isolated' || cfg.invert === true) return undefined;
    if (bl?.use_regex !== false || bl.add_prefix_space !== false || blCfg?.type !== 'ByteLevel') return undefined;
    return { regex: split.pattern, mode: 'isolated' };
  }
  const cfg = pre.config as Json | undefined;
  if (cfg?.type === 'ByteLevel' && pre.use_regex === true && pre.add_prefix_space === false && pre.pattern instanceof RegExp) {
    return { regex: pre.pattern, mode: 'matches' };
  }
  return undefined;
}

/** The built-in tokenizer's rule: whitespace at c after a non-whitespace character. */
const BUILTIN_CUT: SafeCutRule = {
  window: 1,
  isSafe(text: string, c: number): boolean {
    if (c <= 0 || c >= text.length) return false;
    return /\s/.test(text[c]) && !/\s/.test(text[c - 1]);
  },
};

const tokStr = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : undefined;

/** Probes the post-processor's single-sequence template: ids added before and after. */
function probeSpecials(tok: Tokenizer): { prefix: number[]; suffix: number[] } | undefined {
  const probes = ['Hello world', 'a b c 123 !?'];
  let found: { prefix: number[]; suffix: number[] } | undefined;
  for (const p of probes) {
    const plain: number[] = tok.encode(p, { add_special_tokens: false }).ids;
    const full: number[] = tok.encode(p, { add_special_tokens: true }).ids;
    let at = -1;
    for (let k = 0; k + plain.length <= full.length && at < 0; k++) {
      if (plain.every((x, i) => full[k + i] === x)) at = k;
    }
    if (at < 0) return undefined;
    const r = { prefix: full.slice(0, at), suffix: full.slice(at + plain.length) };
    if (found && (found.prefix.join() !== r.prefix.join() || found.suffix.join() !== r.suffix.join())) return undefined;
    found = r;
  }
  return found;
}

/** A Hugging Face tokenizer.json folder. */
class HfEncoder implements TokenEncoder {
  readonly spec: EncoderSpec;
  readonly specialPrefix: readonly number[];
  readonly specialSuffix: readonly number[];
  readonly safeCut: SafeCutRule | undefined;
  readonly chat: ChatRenderer;
  readonly #tok: Tokenizer;
  readonly #directSpecials: boolean;
  readonly #fast: ByteLevelBpe | undefined;

  constructor(dir: string, fastPath: boolean) {
    this.spec = { kind: 'dir', dir, fastPath };
    const json = readJson(join(dir, 'tokenizer.json'));
    const cfgPath = join(dir, 'tokenizer_config.json');
    const cfg = existsSync(cfgPath) ? readJson(cfgPath) : {};
    try {
      this.#tok = new Tokenizer(json, cfg);
    } catch (err) {
      throw new KvrError('KVR_ERR_CONFIG', `cannot load ${join(dir, 'tokenizer.json')}: ${(err as Error).message}; pass a folder with a Hugging Face tokenizer.json`, { cause: err });
    }
    const probed = probeSpecials(this.#tok);
    this.#directSpecials = probed === undefined;
    this.specialPrefix = probed?.prefix ?? [];
    this.specialSuffix = probed?.suffix ?? [];
    const special: Record<string, unknown> = {};
    for (const k of ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token']) {
      const s = tokStr(cfg[k]);
      if (s !== undefined) special[k] = s;
    }
    if (Array.isArray(cfg.additional_special_tokens)) special.additional_special_tokens = cfg.additional_special_tokens.map(tokStr);
    this.chat = new ChatRenderer(cfg.chat_template, special);
    const added = (Array.isArray(json.added_tokens) ? json.added_tokens : []) as Json[];
    const structural =
      json.normalizer == null &&
      preTokenizerIsKnown(json.pre_tokenizer) &&
      (json.model as Json | undefined)?.type === 'BPE' &&
      (json.model as Json).dropout == null &&
      !this.#directSpecials &&
      !cfg.remove_space &&
      !cfg.do_lowercase_and_remove_accent &&
      added.every((a) => !a.lstrip && !a.rstrip && !a.single_word && !a.normalized);
    this.safeCut = structural ? new ByteLevelBpeCutRule(added.map((a) => String(a.content ?? ''))) : undefined;
    this.#fast = structural && fastPath ? this.#fastPath(json) : undefined;
  }

  /** The fast BPE path over the library's own pre-tokenizer regex, if it agrees with the library on a probe. */
  #fastPath(json: Json): ByteLevelBpe | undefined {
    const split = librarySplit(this.#tok);
    const fast = split && ByteLevelBpe.fromTokenizerJson(json, split);
    if (!fast) return undefined;
    const probe = FAST_PATH_PROBE + [...(Array.isArray(json.added_tokens) ? json.added_tokens : [])].slice(0, 8).map((a) => String((a as Json).content)).join(' x');
    const want = this.#tok.encode(probe, { add_special_tokens: false }).ids;
    const got = fast.encode(probe);
    return got !== undefined && got.length === want.length && got.every((x, i) => x === want[i]) ? fast : undefined;
  }

  encodePlain(text: string): number[] {
    return this.#fast?.encode(text) ?? this.#tok.encode(text, { add_special_tokens: false }).ids;
  }

  fastPathStats(): FastBpeStats | undefined {
    return this.#fast?.stats();
  }
}

/** The simulator's built-in tokenizer (no post-processor specials, like Llama 3's first tokenizer.json). */
class BuiltinEncoder implements TokenEncoder {
  readonly spec: EncoderSpec = { kind: 'builtin' };
  readonly specialPrefix: readonly number[] = [];
  readonly specialSuffix: readonly number[] = [];
  readonly safeCut = BUILTIN_CUT;
  readonly chat = new ChatRenderer(LLAMA3_CHAT_TEMPLATE, { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' });
  readonly #tok = new BuiltinTokenizer();

  encodePlain(text: string): number[] {
    return this.#tok.encode(text);
  }
}

function readJson(path: string): Json {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Json;
  } catch (err) {
    throw new KvrError('KVR_ERR_CONFIG', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Loads the encoder of `spec`. Throws KVR_ERR_CONFIG when the folder does not exist or has no
 * tokenizer.json, saying what to pass.
 */
export function loadEncoder(spec: EncoderSpec): TokenEncoder {
  if (spec.kind === 'builtin') return new BuiltinEncoder();
  const dir = spec.dir;
  if (typeof dir !== 'string' || dir.length === 0 || !existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new KvrError('KVR_ERR_CONFIG', `tokenizer folder ${JSON.stringify(dir)} does not exist; pass the folder of a Hugging Face model that holds tokenizer.json (and tokenizer_config.json), or use the 'builtin' or 'endpoint' tokenizer source`);
  }
  if (!existsSync(join(dir, 'tokenizer.json'))) {
    throw new KvrError('KVR_ERR_CONFIG', `no tokenizer.json in ${dir}; pass the folder of a Hugging Face model that holds tokenizer.json (and tokenizer_config.json with its chat_template)`);
  }
  return new HfEncoder(dir, spec.fastPath !== false);
}
