/**
 * Tokenizers of the simulator. {@link BuiltinTokenizer} is fast and deterministic (~4 characters
 * per token, prefix-stable); {@link loadTokenizer} loads a real Hugging Face `tokenizer.json`
 * (+ `tokenizer_config.json`, whose `chat_template` is then rendered with @huggingface/jinja).
 * Chat is rendered the way vLLM renders it (src/tokenize/vllm-chat.ts, shared with the router's
 * tokenizer) and `encode` adds the post-processor's special tokens only when asked, as vLLM does
 * (completions: add_special_tokens defaults to true; chat: false, the template holds the BOS).
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ChatRenderer, LLAMA3_CHAT_TEMPLATE, type ChatRenderOptions } from '../tokenize/vllm-chat.js';

/** One chat message (OpenAI shape; array content keeps its text parts). */
export interface ChatMessage {
  role: string;
  content: string | null | { type: string; text?: string }[];
}

/** What the simulator needs from a tokenizer. */
/** Options of {@link SimTokenizer.encode}. */
export interface EncodeOptions {
  /** Add the post-processor's special tokens (vLLM's `add_special_tokens`); default false. */
  addSpecialTokens?: boolean;
}

export interface SimTokenizer {
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: readonly number[]): string;
  /**
   * Renders chat messages to a prompt string like vLLM (generation prompt included unless
   * `opts` says otherwise). Throws KVR_ERR_BAD_REQUEST for messages it cannot render.
   */
  renderChat(messages: readonly ChatMessage[], opts?: ChatRenderOptions): string;
  /** Maps a uniform r in [0,1) to an output token id that decodes to readable text. */
  sampleToken(r: number): number;
  readonly eosTokenId: number;
}

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they ' +
  'you were her she there been one all we their has would when if so no will more can out other into what time ' +
  'model cache token request server router prefix block latency memory batch queue replica engine data system ' +
  'value result fast small large first last next open simple clear good new old same each many most some such ' +
  'only also very well just then now here where how why because while after before under over between through'
).split(' ');
const WORD_BASE = 100_000;
const HASH_RANGE = WORD_BASE - 256;
const SPECIALS: Record<string, number> = {
  '<|begin_of_text|>': 128000,
  '<|end_of_text|>': 128001,
  '<|start_header_id|>': 128006,
  '<|end_header_id|>': 128007,
  '<|eot_id|>': 128009,
};
const SPECIAL_BY_ID = new Map(Object.entries(SPECIALS).map(([k, v]) => [v, k]));
const SPECIAL_RE = /<\|[a-z_]+\|>/g;
const PIECE_RE = /\s*[^\s]+|\s+/g;

function contentText(c: ChatMessage['content']): string {
  if (typeof c === 'string') return c;
  if (!c) return '';
  return c.map((p) => (typeof p.text === 'string' ? p.text : '')).join('');
}

/** Llama-3 chat format: `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>` ... */
export function renderLlama3Chat(messages: readonly ChatMessage[], bos = '<|begin_of_text|>'): string {
  let s = bos;
  for (const m of messages) s += `<|start_header_id|>${m.role}<|end_header_id|>\n\n${contentText(m.content).trim()}<|eot_id|>`;
  return s + '<|start_header_id|>assistant<|end_header_id|>\n\n';
}

/**
 * A deterministic built-in tokenizer: text is cut into whitespace-led pieces, each piece into
 * 4-character chunks; a chunk's id is an FNV-1a hash in [256, 100000). Words of its output word
 * list map to ids 100000+; Llama-3 special tokens keep their ids. Cutting a text changes only the
 * tokens of the piece at the cut. Decoding hashed ids is best effort (recently seen chunks).
 */
export class BuiltinTokenizer implements SimTokenizer {
  readonly eosTokenId = 128009;
  #wordIds = new Map(WORDS.map((w, i) => [' ' + w, WORD_BASE + i]));
  #seen = new Map<number, string>();
  #chat = new ChatRenderer(LLAMA3_CHAT_TEMPLATE, { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' });

  /**
   * Ids of `text`. Its post-processor adds no special tokens (like the first Llama 3
   * tokenizer.json), so `opts.addSpecialTokens` changes nothing; chat templates carry the BOS.
   */
  encode(text: string, _opts?: EncodeOptions): number[] {
    const out: number[] = [];
    let last = 0;
    for (const m of text.matchAll(SPECIAL_RE)) {
      const id = SPECIALS[m[0]];
      if (id === undefined) continue;
      this.#encodePlain(text.slice(last, m.index), out);
      out.push(id);
      last = m.index! + m[0].length;
    }
    this.#encodePlain(text.slice(last), out);
    return out;
  }

  decode(ids: readonly number[]): string {
    let s = '';
    for (const id of ids) {
      if (id >= WORD_BASE && id < WORD_BASE + WORDS.length) s += ' ' + WORDS[id - WORD_BASE];
      else s += SPECIAL_BY_ID.get(id) ?? this.#seen.get(id) ?? '';
    }
    return s;
  }

  renderChat(messages: readonly ChatMessage[], opts?: ChatRenderOptions): string {
    return this.#chat.render(messages, opts);
  }

  sampleToken(r: number): number {
    return WORD_BASE + Math.floor(r * WORDS.length);
  }

  #encodePlain(text: string, out: number[]): void {
    if (text.length === 0) return;
    for (const m of text.matchAll(PIECE_RE)) {
      const piece = m[0];
      const w = this.#wordIds.get(piece);
      if (w !== undefined) {
        out.push(w);
        continue;
      }
      for (let i = 0; i < piece.length; i += 4) {
        let h = 0x811c9dc5;
        const end = Math.min(piece.length, i + 4);
        for (let j = i; j < end; j++) h = Math.imul(h ^ piece.charCodeAt(j), 0x01000193);
        const id = 256 + ((h >>> 0) % HASH_RANGE);
        out.push(id);
        if (this.#seen.size > 200_000) this.#seen.clear();
        this.#seen.set(id, piece.slice(i, end));
      }
    }
  }
}

/** A Hugging Face tokenizer loaded from a directory. */
class HfTokenizer implements SimTokenizer {
  readonly eosTokenId: number;
  #tok: Tokenizer;
  #chat: ChatRenderer;
  #eos: string;
  #outputIds: number[];

  constructor(dir: string) {
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as object;
    const cfgPath = join(dir, 'tokenizer_config.json');
    const cfg = (existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, 'utf8')) : {}) as Record<string, unknown>;
    this.#tok = new Tokenizer(json, cfg);
    const tokStr = (v: unknown): string =>
      typeof v === 'string' ? v : v && typeof v === 'object' && 'content' in v ? String((v as { content: unknown }).content) : '';
    this.#eos = tokStr(cfg.eos_token);
    const special: Record<string, unknown> = {};
    for (const k of ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token']) {
      const v = tokStr(cfg[k]);
      if (v) special[k] = v;
    }
    if (Array.isArray(cfg.additional_special_tokens)) special.additional_special_tokens = cfg.additional_special_tokens.map(tokStr);
    this.#chat = new ChatRenderer(cfg.chat_template ?? LLAMA3_CHAT_TEMPLATE, special);
    this.eosTokenId = this.#tok.token_to_id('<|eot_id|>') ?? this.#tok.token_to_id(this.#eos) ?? 0;
    this.#outputIds = [];
    for (const w of WORDS) {
      const ids = this.#tok.encode(' ' + w, { add_special_tokens: false }).ids;
      if (ids.length === 1) this.#outputIds.push(ids[0]);
    }
  }

  encode(text: string, opts?: EncodeOptions): number[] {
    return this.#tok.encode(text, { add_special_tokens: opts?.addSpecialTokens === true }).ids;
  }

  decode(ids: readonly number[]): string {
    return this.#tok.decode(ids as number[], { skip_special_tokens: false });
  }

  renderChat(messages: readonly ChatMessage[], opts?: ChatRenderOptions): string {
    return this.#chat.render(messages, opts);
  }

  sampleToken(r: number): number {
    return this.#outputIds[Math.floor(r * this.#outputIds.length)];
  }
}

/**
 * The tokenizer of `dir` (a folder with `tokenizer.json`), or the built-in one when `dir` is
 * undefined. Throws when the folder has no tokenizer.json.
 */
export function loadTokenizer(dir?: string): SimTokenizer {
  if (dir === undefined) return new BuiltinTokenizer();
  if (!existsSync(join(dir, 'tokenizer.json'))) throw new Error(`no tokenizer.json in ${dir}`);
  return new HfTokenizer(dir);
}
