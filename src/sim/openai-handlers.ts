/**
 * vLLM-shaped OpenAI handlers of the simulated replica: /v1/completions and
 * /v1/chat/completions (streaming or not), /tokenize, /detokenize, /v1/models.
 */
import type { ServerResponse } from 'node:http';
import type { Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import type { SimEngine, SimEngineResult } from './engine.js';
import type { SimMetrics } from './sim-metrics.js';
import { sendError, sendJson, vllmErrorBody } from './http-io.js';
import type { ChatMessage, SimTokenizer } from './tokenizer.js';
import { chatOptionsFromBody } from '../tokenize/vllm-chat.js';
import type { SimDialect } from './dialects/types.js';
import type { PdConnector } from './pd/pd-connector.js';
import type { SimRequestHandle } from './engine-types.js';

/** What the handlers need from their replica. */
export interface HandlerContext {
  modelName: string;
  maxModelLen: number;
  tokenizer: SimTokenizer;
  engine: SimEngine;
  clock: Clock;
  metrics: SimMetrics;
  nextId(): string;
  /** vLLM `--enable-prompt-tokens-details` (default off): usage carries cached_tokens when > 0. */
  promptTokensDetails?: boolean;
  /** SGLang / llama.cpp surface (src/sim/dialects); absent = vLLM. */
  dialect?: SimDialect;
  /** The replica's KV connector (`--role`); absent = no connector, kv_transfer_params ignored. */
  pd?: PdConnector;
}

type Body = Record<string, unknown>;

function bad(message: string, param: string): KvrError {
  return new KvrError('KVR_ERR_BAD_REQUEST', message, { param });
}

function checkModel(ctx: HandlerContext, body: Body): void {
  const m = body.model;
  if (m === undefined || m === null) return;
  if (typeof m !== 'string') throw bad("'model' must be a string", 'model');
  if (m !== ctx.modelName) throw new KvrError('KVR_ERR_UNKNOWN_MODEL', `The model \`${m}\` does not exist.`, { param: 'model' });
}

const isTokenArray = (v: unknown): v is number[] =>
  Array.isArray(v) && v.length > 0 && v.every((x) => Number.isInteger(x) && x >= 0);

/** A completion prompt's ids: text is encoded with vLLM's `add_special_tokens` (default true). */
function promptTokens(ctx: HandlerContext, p: unknown, addSpecialTokens: boolean): number[] {
  if (typeof p === 'string') return ctx.tokenizer.encode(p, { addSpecialTokens });
  if (isTokenArray(p)) return p;
  if (Array.isArray(p) && p.length === 1 && (typeof p[0] === 'string' || isTokenArray(p[0]))) return promptTokens(ctx, p[0], addSpecialTokens);
  if (Array.isArray(p) && p.length > 1) throw bad("the simulator serves one prompt per request: 'prompt' arrays must have one element", 'prompt');
  throw bad("'prompt' must be a string, an array of token ids, or a one-element array of either", 'prompt');
}

function messages(body: Body): ChatMessage[] {
  const m = body.messages;
  if (!Array.isArray(m) || m.length === 0) throw bad("'messages' must be a non-empty array", 'messages');
  for (const x of m) {
    const ok =
      x !== null &&
      typeof x === 'object' &&
      typeof (x as ChatMessage).role === 'string' &&
      (typeof (x as ChatMessage).content === 'string' || (x as ChatMessage).content === null || Array.isArray((x as ChatMessage).content));
    if (!ok) throw bad("each message needs a string 'role' and a string or array 'content'", 'messages');
  }
  return m as ChatMessage[];
}

/** Chat prompt ids as vLLM computes them: template rendered, then `add_special_tokens` (default false). */
function chatTokens(ctx: HandlerContext, body: Body): number[] {
  const msgs = messages(body);
  const opts = chatOptionsFromBody(body);
  return ctx.tokenizer.encode(ctx.tokenizer.renderChat(msgs, opts), { addSpecialTokens: opts.addSpecialTokens });
}

function intField(body: Body, names: string[], dflt: number): number {
  for (const n of names) {
    const v = body[n];
    if (v === undefined || v === null) continue;
    if (!Number.isInteger(v) || (v as number) < 1) throw bad(`'${n}' must be an integer >= 1`, n);
    return v as number;
  }
  return dflt;
}

function boolField(body: Body, name: string, dflt = false): boolean {
  const v = body[name];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw bad(`'${name}' must be a boolean`, name);
  return v;
}

/**
 * vLLM's `UsageInfo`: `prompt_tokens_details` is set only with `--enable-prompt-tokens-details`
 * and a cache hit (> 0 tokens). Non-streaming bodies dump unset fields as null; the streamed
 * usage chunk drops nulls (`exclude_none`), so there the key is absent.
 */
function usage(ctx: HandlerContext, r: SimEngineResult, streamed: boolean): object {
  const details = ctx.promptTokensDetails && r.cachedTokens > 0 ? { cached_tokens: r.cachedTokens } : null;
  return {
    prompt_tokens: r.promptTokens,
    total_tokens: r.promptTokens + r.completionTokens,
    completion_tokens: r.completionTokens,
    ...(details || !streamed ? { prompt_tokens_details: details } : {}),
  };
}

/** POST /v1/completions (`chat` false) and /v1/chat/completions (`chat` true). */
export function handleGenerate(ctx: HandlerContext, body: Body, res: ServerResponse, chat: boolean): void {
  checkModel(ctx, body);
  const tokens = chat ? chatTokens(ctx, body) : promptTokens(ctx, body.prompt, boolField(body, 'add_special_tokens', true));
  if (tokens.length === 0) throw bad("'prompt' is empty", chat ? 'messages' : 'prompt');
  const maxTokens = intField(body, chat ? ['max_completion_tokens', 'max_tokens'] : ['max_tokens'], chat ? 64 : 16);
  const stream = boolField(body, 'stream');
  const ignoreEos = boolField(body, 'ignore_eos');
  const so = body.stream_options;
  if (so !== undefined && so !== null && typeof so !== 'object') throw bad("'stream_options' must be an object", 'stream_options');
  const includeUsage = stream && !!so && (so as Body).include_usage === true;
  if (tokens.length + maxTokens > ctx.maxModelLen) {
    throw new KvrError(
      'KVR_ERR_CONTEXT_TOO_LONG',
      `This model's maximum context length is ${ctx.maxModelLen} tokens. However, you requested ${tokens.length + maxTokens} tokens (${tokens.length} in the prompt, ${maxTokens} in the completion). Please reduce the length of the prompt or the completion.`,
      { param: chat ? 'messages' : 'prompt' },
    );
  }
  const id = (chat ? 'chatcmpl-' : 'cmpl-') + ctx.nextId();
  const created = Math.floor(ctx.clock.now() / 1000);
  const model = ctx.modelName;
  const object = chat ? 'chat.completion.chunk' : 'text_completion';
  const ids: number[] = [];
  let done = false;
  // Dialect hooks: its usage shape, extra final fields (llama.cpp timings), its submit path (slots).
  const dialect = ctx.dialect;
  const usageOf = (r: SimEngineResult, streamed: boolean): object => dialect?.usage?.(r) ?? usage(ctx, r, streamed);
  const t0 = ctx.clock.now();
  let tFirst = t0;
  const extras = (r: SimEngineResult): Record<string, unknown> =>
    dialect?.finalExtras?.(r, { promptMs: tFirst - t0, predictedMs: ctx.clock.now() - tFirst }) ?? {};
  const engineSubmit = dialect?.submit ?? ((q: Parameters<SimEngine['submit']>[0], c: Parameters<SimEngine['submit']>[1]) => ctx.engine.submit(q, c));
  const write = (o: object): void => void res.write(`data: ${JSON.stringify(o)}\n\n`);
  // vLLM dumps completion chunks with exclude_unset=False (every chunk carries "usage": null);
  // chat chunks with exclude_unset=True (no usage key unless continuous usage stats are asked).
  const chunkUsage = chat || dialect !== undefined ? {} : { usage: null };
  const choice = (text: string, finish: string | null, first = false): object =>
    chat
      ? { index: 0, delta: first ? { role: 'assistant', content: text } : finish && !text ? {} : { content: text }, logprobs: null, finish_reason: finish, ...(finish ? { stop_reason: null } : {}) }
      : { index: 0, text, logprobs: null, finish_reason: finish, stop_reason: null };
  if (stream) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    if (chat) write({ id, object, created, model, choices: [choice('', null, true)] });
  }
  let pending: { tok: number; text: string } | undefined;
  // P/D hook (sim/pd/pd-connector.ts): hold blocks for a remote decoder, or pull them first.
  const pd = ctx.pd?.begin(body, tokens, id);
  const kvField = ctx.pd !== undefined ? (r: SimEngineResult): object => ({ kv_transfer_params: pd?.finish(r) ?? null }) : (): object => ({});
  let handle: SimRequestHandle | undefined;
  let closed = false;
  const submit = (): SimRequestHandle => engineSubmit(
    { id, promptTokens: tokens, maxTokens, ignoreEos, holdBlocks: pd?.holdBlocks },
    {
      onToken(tok, i) {
        if (i === 0) tFirst = ctx.clock.now();
        if (!stream) return void ids.push(tok);
        // Hold one token back so the last one can carry finish_reason.
        if (pending) write({ id, object, created, model, choices: [choice(pending.text, null)], ...chunkUsage });
        pending = { tok, text: ctx.tokenizer.decode([tok]) };
      },
      onFinish(r) {
        done = true;
        ctx.metrics.finished(r.finishReason);
        const kv = kvField(r);
        if (stream) {
          // Dialect extras (llama.cpp timings) ride on the last chunk, as llama.cpp sends them.
          write({ id, object, created, model, choices: [choice(pending?.text ?? '', r.finishReason)], ...(includeUsage ? {} : extras(r)), ...chunkUsage });
          if (includeUsage) write({ id, object, created, model, choices: [], usage: usageOf(r, true), ...extras(r) });
          res.end('data: [DONE]\n\n');
          return;
        }
        const text = ctx.tokenizer.decode(ids);
        const c = chat
          ? { index: 0, message: { role: 'assistant', content: text, tool_calls: [] }, logprobs: null, finish_reason: r.finishReason, stop_reason: null }
          : { index: 0, text, logprobs: null, finish_reason: r.finishReason, stop_reason: null, prompt_logprobs: null };
        sendJson(res, 200, { id, object: chat ? 'chat.completion' : 'text_completion', created, model, choices: [c], usage: usageOf(r, false), ...extras(r), ...kv });
      },
      onError(err) {
        done = true;
        if (stream) {
          write(vllmErrorBody(err));
          res.end('data: [DONE]\n\n');
        } else sendError(res, err);
      },
    },
  );
  if (pd?.ready === undefined) handle = submit();
  else {
    pd.ready.then(() => {
      if (closed) return;
      try {
        handle = submit();
      } catch (err) {
        done = true;
        if (stream) {
          write(vllmErrorBody(err));
          res.end('data: [DONE]\n\n');
        } else sendError(res, err);
      }
    }, () => undefined);
  }
  res.on('close', () => {
    closed = true;
    if (done) return;
    handle?.abort();
    pd?.abort();
  });
}

/**
 * POST /tokenize: `{prompt, add_special_tokens?}` or `{messages, add_generation_prompt?,
 * continue_final_message?, add_special_tokens?, ...}` -> `{count, max_model_len, tokens}`,
 * tokenized exactly like the generate endpoints (vLLM's defaults).
 */
export function handleTokenize(ctx: HandlerContext, body: Body, res: ServerResponse): void {
  checkModel(ctx, body);
  let tokens: number[];
  if (body.messages !== undefined) tokens = chatTokens(ctx, body);
  else if (typeof body.prompt === 'string') tokens = ctx.tokenizer.encode(body.prompt, { addSpecialTokens: boolField(body, 'add_special_tokens', true) });
  else throw bad("give 'prompt' (a string) or 'messages'", 'prompt');
  sendJson(res, 200, { count: tokens.length, max_model_len: ctx.maxModelLen, tokens, token_strs: null });
}

/** POST /detokenize: `{tokens}` -> `{prompt}`. */
export function handleDetokenize(ctx: HandlerContext, body: Body, res: ServerResponse): void {
  checkModel(ctx, body);
  const t = body.tokens;
  if (!Array.isArray(t) || !t.every((x) => Number.isInteger(x) && x >= 0)) throw bad("'tokens' must be an array of token ids", 'tokens');
  sendJson(res, 200, { prompt: ctx.tokenizer.decode(t as number[]) });
}

/** GET /v1/models body, vLLM's shape. */
export function modelsBody(ctx: HandlerContext, created: number): object {
  return {
    object: 'list',
    data: [
      {
        id: ctx.modelName,
        object: 'model',
        created,
        owned_by: ctx.dialect?.modelsOwner ?? 'vllm',
        root: ctx.modelName,
        parent: null,
        max_model_len: ctx.maxModelLen,
        permission: [],
      },
    ],
  };
}
