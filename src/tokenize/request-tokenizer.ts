/**
 * The router's tokenizer: a request's prompt token ids exactly as vLLM will compute them, which
 * precise prefix routing turns into block keys.
 *
 *   completions  prompt string          -> encode(prompt, add_special_tokens ?? true)
 *                prompt token ids       -> unchanged (first prompt of a batch)
 *   chat         messages               -> chat template (vLLM's rendering, see vllm-chat.ts)
 *                                          -> encode(rendered, add_special_tokens ?? false)
 *
 * Sources (config `source`):
 *   - `dir`: a local Hugging Face model folder (tokenizer.json + tokenizer_config.json);
 *   - `builtin`: the simulator's built-in tokenizer and its Llama 3 chat template, so a router in
 *     front of a default simulated fleet tokenizes exactly like it;
 *   - `endpoint`: POSTs the prompt or messages to an engine's vLLM `/tokenize` (timeout; errors
 *     are KvrErrors, and the caller falls back to approximate routing);
 *   - `endpoints`: the pool's healthy endpoints' own tokenizers, called round robin (no single
 *     hot spot or point of failure), each in its engine's format (engine adapters: vLLM/SGLang
 *     `{prompt}`, llama.cpp `{content}` after `/apply-template` for chat). The router attaches
 *     the pool with {@link RequestTokenizer.useEndpoints}.
 * An empty or malformed token list is an error (never "0 blocks, precise"): llama.cpp answers a
 * vLLM-format body with 200 `{"tokens": []}`.
 * Local sources reuse earlier work through a {@link PrefixTokenCache} (exact) and tokenize long
 * texts in a {@link TokenizeWorkerPool}; short texts tokenize inline. The result is memoized on
 * the request, so every plugin asking for it shares one tokenization.
 */
import { Agent, request } from 'undici';
import { z } from 'zod';
import { KvrError } from '../core/errors.js';
import { memoize, type ApiKind, type InferenceRequest } from '../core/request.js';
import { loadEncoder, type EncoderSpec, type TokenEncoder } from './encoder.js';
import type { FastBpeStats } from './fast-bpe.js';
import { PrefixTokenCache, type PrefixCacheStats } from './prefix-cache.js';
import { chatOptionsFromBody } from './vllm-chat.js';
import type { Endpoint } from '../core/endpoint.js';
import { adapterFor } from '../engines/registry.js';
import { TokenizeWorkerPool, type WorkerPoolStats } from './worker-pool.js';

/** Configuration of a {@link RequestTokenizer} (validated by {@link createRequestTokenizer}). */
export const requestTokenizerConfigSchema = z.strictObject({
  source: z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('builtin') }),
    z.strictObject({ type: z.literal('dir'), dir: z.string().min(1) }),
    z.strictObject({
      type: z.literal('endpoint'),
      /** Base URL of a vLLM server, e.g. http://10.0.0.11:8000 (POST {url}/tokenize). */
      url: z.string().url(),
      timeoutMs: z.number().int().min(1).max(60_000).default(2_000),
    }),
    z.strictObject({
      type: z.literal('endpoints'),
      timeoutMs: z.number().int().min(1).max(60_000).default(2_000),
    }),
  ]),
  /** Prefix cache of local sources; false turns it off. */
  prefixCache: z
    .union([
      z.literal(false),
      z.strictObject({
        blockChars: z.number().int().min(16).max(65_536).default(512),
        maxBytes: z.number().int().min(0).default(32 * 1024 * 1024),
      }),
    ])
    .default({ blockChars: 512, maxBytes: 32 * 1024 * 1024 }),
  /** Worker threads of local sources; false tokenizes everything inline. */
  workers: z
    .union([
      z.literal(false),
      z.strictObject({
        size: z.number().int().min(1).max(16).default(1),
        /** Texts (their uncached part) of at least this many characters go to a worker. */
        minChars: z.number().int().min(0).default(16_384),
        /**
         * Jobs that may wait for a worker; beyond it a request is not tokenized and precise
         * routing falls back to approximate for it (counted: queue_full).
         */
        maxQueued: z.number().int().min(0).max(100_000).default(32),
      }),
    ])
    .default({ size: 1, minChars: 16_384, maxQueued: 32 }),
  /**
   * The fast exact byte-level BPE path (pre-token cache; fast-bpe.ts) where the tokenizer allows
   * it; false tokenizes with @huggingface/tokenizers alone. Same ids either way.
   */
  fastBpe: z.boolean().optional(),
});

/** Input form of the configuration (defaults filled in by the schema). */
export type RequestTokenizerConfig = z.input<typeof requestTokenizerConfigSchema>;

/** Counters of a {@link RequestTokenizer} (plain numbers; the metrics layer exports them). */
export interface RequestTokenizerStats {
  source: 'builtin' | 'dir' | 'endpoint' | 'endpoints';
  /** Requests tokenized (token-id prompts included) and failed. */
  requests: number;
  failures: number;
  /** Token-id prompts passed through unchanged. */
  passthrough: number;
  /** Texts tokenized on the event loop / in workers; calls to the endpoint. */
  inline: number;
  offloaded: number;
  /** Offloaded texts tokenized inline after all because their worker failed. */
  workerFallbacks: number;
  /** Requests not tokenized because the worker queue was full (precise routing fell back). */
  queueFull: number;
  /** Requests whose tokenization stopped because the client went away. */
  aborted: number;
  endpointCalls: number;
  prefixCache?: PrefixCacheStats;
  workers?: WorkerPoolStats;
  /** The fast byte-level BPE path's counters, when the tokenizer has one. */
  fastBpe?: FastBpeStats;
}

const MEMO_KEY = 'request-tokenizer/tokens';

function bad(message: string, param: string): KvrError {
  return new KvrError('KVR_ERR_BAD_REQUEST', message, { param });
}

const isIdArray = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => Number.isInteger(x) && x >= 0);

/** The completion prompt to tokenize: text, or token ids that pass through (first prompt of a batch). */
export function completionPrompt(p: unknown): { text: string } | { ids: number[] } {
  if (typeof p === 'string') return { text: p };
  if (isIdArray(p)) return { ids: p };
  if (Array.isArray(p) && p.length > 0) {
    if (typeof p[0] === 'string') return { text: p[0] };
    if (isIdArray(p[0])) return { ids: p[0] };
  }
  throw bad("'prompt' must be a string, an array of strings, an array of token ids, or an array of token-id arrays", 'prompt');
}

function boolField(body: Record<string, unknown>, name: string, dflt: boolean): boolean {
  const v = body[name];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw bad(`'${name}' must be a boolean`, name);
  return v;
}

/** Tokenizes requests exactly like the engine. See the module comment. */
export class RequestTokenizer {
  readonly #source: RequestTokenizerStats['source'];
  readonly #encoder: TokenEncoder | undefined;
  readonly #cache: PrefixTokenCache | undefined;
  readonly #pool: TokenizeWorkerPool | undefined;
  readonly #minWorkerChars: number;
  readonly #endpoint: { url: string; timeoutMs: number; agent: Agent } | undefined;
  readonly #pool2: { timeoutMs: number; agent: Agent } | undefined;
  #endpoints: () => readonly Endpoint[] = () => [];
  #rr = 0;
  readonly #stats = { requests: 0, failures: 0, passthrough: 0, inline: 0, offloaded: 0, workerFallbacks: 0, queueFull: 0, aborted: 0, endpointCalls: 0 };
  #closed = false;

  /** Use {@link createRequestTokenizer}. */
  constructor(config: z.output<typeof requestTokenizerConfigSchema>) {
    const src = config.source;
    this.#source = src.type;
    if (config.fastBpe !== undefined && src.type !== 'dir') {
      throw new KvrError('KVR_ERR_CONFIG', `tokenizer option fastBpe applies to source 'dir' only (this source is '${src.type}'); remove it`);
    }
    if (src.type === 'endpoint') {
      this.#endpoint = { url: src.url.replace(/\/+$/, ''), timeoutMs: src.timeoutMs, agent: new Agent({ keepAliveTimeout: 10_000, connections: 8 }) };
      this.#minWorkerChars = Infinity;
      return;
    }
    if (src.type === 'endpoints') {
      this.#pool2 = { timeoutMs: src.timeoutMs, agent: new Agent({ keepAliveTimeout: 10_000, connections: 8 }) };
      this.#minWorkerChars = Infinity;
      return;
    }
    const spec: EncoderSpec = src.type === 'dir' ? { kind: 'dir', dir: src.dir, fastPath: config.fastBpe ?? true } : { kind: 'builtin' };
    this.#encoder = loadEncoder(spec);
    const rule = this.#encoder.safeCut;
    if (config.prefixCache !== false && rule) this.#cache = new PrefixTokenCache(rule, config.prefixCache);
    if (config.workers !== false) this.#pool = new TokenizeWorkerPool(spec, config.workers.size, { maxQueued: config.workers.maxQueued });
    this.#minWorkerChars = config.workers === false ? Infinity : config.workers.minChars;
  }

  /**
   * The request's prompt token ids as the engine computes them (memoized on the request).
   * Rejects with a KvrError (bad request body, endpoint failure, worker queue full, the request's
   * signal fired) so the caller can fall back.
   */
  tokenize(req: InferenceRequest): Promise<number[]> {
    return memoize(req, MEMO_KEY, () => this.tokenizeBody(req.api, req.body, req.model, req.signal));
  }

  /**
   * Same as {@link RequestTokenizer.tokenize} for a parsed OpenAI body (not memoized). `signal`
   * (the request's lifecycle signal) removes a queued worker job, so an aborted request's
   * tokenization never runs.
   */
  async tokenizeBody(api: ApiKind, body: Record<string, unknown>, model?: string, signal?: AbortSignal): Promise<number[]> {
    this.#stats.requests++;
    try {
      if (this.#closed) throw new KvrError('KVR_ERR_INTERNAL', 'the tokenizer is closed');
      if (body === null || typeof body !== 'object') throw bad('request body must be an object', 'body');
      if (api === 'completions') {
        const p = completionPrompt(body.prompt);
        if ('ids' in p) {
          this.#stats.passthrough++;
          return p.ids.slice();
        }
        const add = boolField(body, 'add_special_tokens', true);
        if (this.#pool2) return await this.#viaPool({ text: p.text, add }, model);
        if (this.#endpoint) return nonEmpty(await this.#remote({ model, prompt: p.text, add_special_tokens: add }), p.text, this.#endpoint.url);
        return await this.#encode(p.text, add, signal);
      }
      if (api !== 'chat') throw bad(`unknown api ${JSON.stringify(api)}`, 'api');
      const opts = chatOptionsFromBody(body);
      if (this.#pool2) return await this.#viaPool({ messages: body.messages, add: opts.addSpecialTokens }, model);
      if (this.#endpoint) {
        const out: Record<string, unknown> = { model, messages: body.messages };
        for (const k of ['add_generation_prompt', 'continue_final_message', 'add_special_tokens', 'tools', 'documents', 'chat_template', 'chat_template_kwargs']) {
          if (body[k] !== undefined && body[k] !== null) out[k] = body[k];
        }
        return nonEmpty(await this.#remote(out), 'messages', this.#endpoint.url);
      }
      const text = this.#encoder!.chat.render(body.messages, opts);
      return await this.#encode(text, opts.addSpecialTokens, signal);
    } catch (err) {
      this.#stats.failures++;
      const code = (err as { code?: unknown }).code;
      if (code === 'KVR_ERR_OVERLOADED') this.#stats.queueFull++;
      else if (code === 'KVR_ERR_CLIENT_CLOSED') this.#stats.aborted++;
      throw err instanceof KvrError ? err : new KvrError('KVR_ERR_INTERNAL', `tokenization failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Plain ids of `text` (+ the post-processor's specials when `addSpecialTokens`), locally. */
  async #encode(text: string, addSpecialTokens: boolean, signal: AbortSignal | undefined): Promise<number[]> {
    const enc = this.#encoder!;
    const plan = this.#cache?.plan(text);
    const ranges = plan ? plan.segments : [[0, text.length] as const];
    const texts = ranges.map(([a, b]) => text.slice(a, b));
    let chars = 0;
    for (const t of texts) chars += t.length;
    let segs: ArrayLike<number>[];
    if (this.#pool && chars >= this.#minWorkerChars) {
      this.#stats.offloaded++;
      try {
        segs = await this.#pool.encodeBatch(texts, signal);
      } catch (err) {
        if (this.#closed) throw err;
        // A full queue is overload: tokenizing inline would stall the event loop for everyone,
        // so this request routes without precise data. An aborted request needs no tokens.
        const code = (err as KvrError).code;
        if (code === 'KVR_ERR_OVERLOADED' || code === 'KVR_ERR_CLIENT_CLOSED') throw err;
        // A crashed worker costs latency, not correctness: same tokens, on the event loop.
        this.#stats.workerFallbacks++;
        segs = texts.map((t) => enc.encodePlain(t));
      }
    } else {
      this.#stats.inline++;
      segs = texts.map((t) => enc.encodePlain(t));
    }
    const ids = plan ? this.#cache!.commit(plan, segs) : Array.from(segs[0]);
    if (!addSpecialTokens || (enc.specialPrefix.length === 0 && enc.specialSuffix.length === 0)) return ids;
    return [...enc.specialPrefix, ...ids, ...enc.specialSuffix];
  }

  /**
   * Tokenizes with the pool's own engines ({@link RequestTokenizer.useEndpoints}): the next
   * healthy endpoint whose engine has a tokenizer endpoint, round robin, in its format.
   */
  async #viaPool(what: { text: string; add: boolean } | { messages: unknown; add: boolean }, model: string | undefined): Promise<number[]> {
    const cfg = this.#pool2!;
    const usable = this.#endpoints().filter((e) => e.healthy && adapterFor(e.engine).tokenizeText('', false, undefined) !== undefined);
    if (usable.length === 0) throw new KvrError('KVR_ERR_UPSTREAM', 'no healthy endpoint with a tokenizer endpoint (give the router a local tokenizer: --tokenizer <folder with tokenizer.json>)');
    const ep = usable[this.#rr++ % usable.length];
    const adapter = adapterFor(ep.engine);
    const base = { url: ep.url, timeoutMs: cfg.timeoutMs, agent: cfg.agent };
    let text: string;
    let add = what.add;
    if ('text' in what) text = what.text;
    else if (adapter.kind === 'llamacpp') {
      // llama.cpp renders chat with its own template first (POST /apply-template -> {prompt}).
      const r = await this.#post(base, '/apply-template', { messages: what.messages });
      const prompt = (r as { prompt?: unknown }).prompt;
      if (typeof prompt !== 'string') throw new KvrError('KVR_ERR_UPSTREAM', `${ep.url}/apply-template answered without a 'prompt' string`);
      text = prompt;
      add = true;
    } else {
      const r = await this.#post(base, '/tokenize', { model, messages: what.messages });
      try {
        return adapter.parseTokens(r);
      } catch (err) {
        throw new KvrError('KVR_ERR_UPSTREAM', `${ep.url}: ${(err as Error).message}`);
      }
    }
    const call = adapter.tokenizeText(text, add, model)!;
    const r = await this.#post(base, call.path, call.body);
    try {
      return adapter.parseTokens(r);
    } catch (err) {
      throw new KvrError('KVR_ERR_UPSTREAM', `${ep.url}: ${(err as Error).message}`);
    }
  }

  /** Tokenizes through the pool's endpoints from now on (source `endpoints`). */
  useEndpoints(endpoints: () => readonly Endpoint[]): void {
    this.#endpoints = endpoints;
  }

  /** POST {url}/tokenize (vLLM's TokenizeCompletionRequest / TokenizeChatRequest). */
  async #remote(payload: Record<string, unknown>): Promise<number[]> {
    const ep = this.#endpoint!;
    const json = await this.#post(ep, '/tokenize', payload);
    const tokens = (json as { tokens?: unknown }).tokens;
    if (!Array.isArray(tokens) || !tokens.every((x) => Number.isInteger(x) && x >= 0)) {
      throw new KvrError('KVR_ERR_UPSTREAM', `tokenize endpoint ${ep.url} answered without a 'tokens' array of token ids`);
    }
    return tokens as number[];
  }

  /** POSTs JSON to `{url}{path}`; the parsed answer, or a KvrError (timeout, status, not JSON). */
  async #post(ep: { url: string; timeoutMs: number; agent: Agent }, path: string, payload: Record<string, unknown>): Promise<unknown> {
    this.#stats.endpointCalls++;
    let status: number;
    let text: string;
    try {
      const res = await request(`${ep.url}${path}`, {
        method: 'POST',
        dispatcher: ep.agent,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        headersTimeout: ep.timeoutMs,
        bodyTimeout: ep.timeoutMs,
        signal: AbortSignal.timeout(ep.timeoutMs),
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const e = err as Error & { code?: string };
      const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
      if (timedOut) throw new KvrError('KVR_ERR_UPSTREAM_TIMEOUT', `tokenize endpoint ${ep.url} did not answer within ${ep.timeoutMs} ms`, { cause: err });
      throw new KvrError('KVR_ERR_UPSTREAM', `tokenize endpoint ${ep.url} failed: ${e.message}`, { cause: err });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new KvrError('KVR_ERR_UPSTREAM', `tokenize endpoint ${ep.url} answered ${status} with a body that is not JSON`);
    }
    if (status !== 200) {
      const msg = (json as { error?: { message?: unknown }; message?: unknown })?.error?.message ?? (json as { message?: unknown })?.message ?? '';
      const code = status >= 400 && status < 500 ? 'KVR_ERR_BAD_REQUEST' : 'KVR_ERR_UPSTREAM';
      throw new KvrError(code, `tokenize endpoint ${ep.url}${path} answered ${status}: ${String(msg)}`);
    }
    return json;
  }

  /** Counters (copies). */
  stats(): RequestTokenizerStats {
    return {
      source: this.#source,
      ...this.#stats,
      ...(this.#cache ? { prefixCache: this.#cache.stats() } : {}),
      ...(this.#pool ? { workers: this.#pool.stats() } : {}),
      ...(this.#encoder?.fastPathStats?.() ? { fastBpe: this.#encoder.fastPathStats()! } : {}),
    };
  }

  /** Stops the workers and the endpoint connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool?.close();
    await this.#endpoint?.agent.close();
    await this.#pool2?.agent.close();
  }
}

/** An empty token list for a non-empty input is an error (wrong request format for the engine). */
function nonEmpty(tokens: number[], input: string, url: string): number[] {
  if (tokens.length === 0 && input !== '') {
    throw new KvrError('KVR_ERR_UPSTREAM', `tokenize endpoint ${url} answered an empty token list (not vLLM's /tokenize? llama.cpp takes {"content": ...}); routing falls back to approximate`);
  }
  return tokens;
}

/**
 * Validates `config` and builds the tokenizer (loading the tokenizer files now, so a bad folder
 * fails at start). Throws KVR_ERR_CONFIG naming the bad field or folder.
 */
export function createRequestTokenizer(config: RequestTokenizerConfig): RequestTokenizer {
  const parsed = requestTokenizerConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.join('.') || 'tokenizer';
    throw new KvrError(
      'KVR_ERR_CONFIG',
      `invalid tokenizer config at "${path}": ${issue.message}; expected source {type: 'builtin'} | {type: 'dir', dir: '<model folder with tokenizer.json>'} | {type: 'endpoint', url: 'http://host:port'} | {type: 'endpoints'}`,
    );
  }
  return new RequestTokenizer(parsed.data);
}
