/**
 * Turns an HTTP request into an {@link InferenceRequest}: reads the body within a size limit,
 * parses JSON, validates the OpenAI fields the router needs (schemas compiled once), and
 * renders the prompt the router routes on. Every failure is a KvrError that names the field
 * and says what is expected; nothing here throws anything else.
 */
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { KvrError } from '../../core/errors.js';
import type { ApiKind, ChatMessage, InferenceRequest } from '../../core/request.js';
import { SourcedRequest } from '../../lifecycle/signal-sourced.js';

const contentPart = z.object({ type: z.string(), text: z.string().optional() }).passthrough();
const chatMessage = z
  .object({
    role: z.string().min(1),
    content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  })
  .passthrough();
const common = {
  model: z.string().min(1),
  stream: z.boolean().optional(),
  max_tokens: z.number().int().nonnegative().nullable().optional(),
  max_completion_tokens: z.number().int().nonnegative().nullable().optional(),
};
const chatSchema = z.object({ ...common, messages: z.array(chatMessage).min(1) }).passthrough();
const completionSchema = z
  .object({
    ...common,
    prompt: z.union([z.string(), z.array(z.string()).min(1), z.array(z.number().int()).min(1), z.array(z.array(z.number().int()).min(1)).min(1)]),
  })
  .passthrough();

const optTokens = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0);

/** The fields {@link chatSchema} and {@link completionSchema} share, checked by hand. */
function plainCommon(b: Record<string, unknown>): boolean {
  const m = b.model;
  const st = b.stream;
  return typeof m === 'string' && m.length > 0 && (st === undefined || typeof st === 'boolean') && optTokens(b.max_tokens) && optTokens(b.max_completion_tokens);
}

/**
 * True when `b` is a chat body {@link chatSchema} accepts without changing anything (the common
 * shape: string or null content, or text parts); false sends it to zod, which accepts or says why.
 */
function plainChat(b: Record<string, unknown>): boolean {
  const msgs = b.messages;
  if (!plainCommon(b) || !Array.isArray(msgs) || msgs.length === 0) return false;
  for (const m of msgs as unknown[]) {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return false;
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || role.length === 0) return false;
    if (content === undefined || content === null || typeof content === 'string') continue;
    if (!Array.isArray(content)) return false;
    for (const part of content as unknown[]) {
      if (typeof part !== 'object' || part === null || Array.isArray(part)) return false;
      const { type, text } = part as { type?: unknown; text?: unknown };
      if (typeof type !== 'string' || (text !== undefined && typeof text !== 'string')) return false;
    }
  }
  return true;
}

/** Same as {@link plainChat} for completions: a string prompt or a non-empty list of strings. */
function plainCompletion(b: Record<string, unknown>): boolean {
  const p = b.prompt;
  if (!plainCommon(b)) return false;
  if (typeof p === 'string') return true;
  if (!Array.isArray(p) || p.length === 0) return false;
  for (const x of p as unknown[]) if (typeof x !== 'string') return false;
  return true;
}

/** Reads the whole body, refusing more than `limit` bytes with KVR_ERR_BODY_TOO_LARGE. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw tooLarge(limit);
  }
  // Plain listeners rather than `for await` (an async iterator and a promise per chunk).
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      // closed before 'end': the client went away mid-body
      if (!req.complete) onError(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function tooLarge(limit: number): KvrError {
  return new KvrError('KVR_ERR_BODY_TOO_LARGE', `request body is larger than ${limit} bytes; send a shorter prompt or raise --max-body-bytes`);
}

/** Flattens a chat message's content (string or parts) to text. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const part of content as Array<Record<string, unknown>>) {
    if (typeof part.text === 'string') out += part.text;
    else if (part.type === 'image_url') out += `[image:${JSON.stringify(part.image_url ?? '')}]`;
  }
  return out;
}

/**
 * Renders the whole conversation as the text the router routes on (every message in order,
 * so turn N+1 shares turn N's prefix). The engine renders its own chat template; this only has
 * to be deterministic and prefix-stable.
 */
export function renderChatForRouting(messages: readonly ChatMessage[]): string {
  let s = '';
  for (const m of messages) s += `<|${m.role}|>\n${m.content}\n`;
  return s;
}

function firstIssue(err: z.ZodError): { path: string; message: string } {
  const issue = err.issues[0];
  const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  return { path: path || 'body', message: issue.message };
}

export interface BuildOptions {
  id: string;
  clientIp: string;
  arrivedAt: number;
  defaultMaxTokens: number;
  /**
   * The models the fleet serves. When given, the model is checked before any heavy work (schema
   * validation, prompt rendering): a request without `model` gets the only served model (as vLLM
   * and llama.cpp do; 400 naming them when several are served), an unknown one 404.
   */
  models?: readonly string[];
  /** Most chat messages, batched prompts or content parts in one request (default {@link MAX_REQUEST_ITEMS}). */
  maxItems?: number;
}

/** Default bound on messages (chat), batched prompts (completions) and content parts per request. */
export const MAX_REQUEST_ITEMS = 10_000;

/**
 * The models the fleet serves, for {@link BuildOptions.models}: undefined while some endpoint has
 * not reported its list (an endpoint with an unknown list accepts any model).
 */
export function knownModels(pool: { all(): readonly { models: readonly string[] }[] }): string[] | undefined {
  const eps = pool.all();
  if (eps.length === 0 || eps.some((e) => e.models.length === 0)) return undefined;
  return [...new Set(eps.flatMap((e) => e.models))].sort();
}

/** Resolves the request's model against the served ones (see {@link BuildOptions.models}); mutates `body.model` when defaulted. */
function resolveModel(body: Record<string, unknown>, models: readonly string[]): void {
  const m = body.model;
  if (m === undefined || m === null || m === '') {
    if (models.length === 1) {
      body.model = models[0];
      return;
    }
    const list = models.length === 0 ? '(none reported yet)' : models.join(', ');
    throw new KvrError('KVR_ERR_BAD_REQUEST', `"model" is required when several models are served; name one of: ${list}`, { param: 'model' });
  }
  if (typeof m === 'string' && !models.includes(m)) {
    throw new KvrError('KVR_ERR_UNKNOWN_MODEL', `model "${m.slice(0, 200)}" is not served here; available: ${models.join(', ') || '(none reported)'}`, { param: 'model' });
  }
}

/** Bounds the number of items a request makes the router walk (messages, batched prompts, content parts). */
function checkItemCount(api: ApiKind, body: Record<string, unknown>, max: number): void {
  const tooMany = (what: string, n: number, param: string) =>
    new KvrError('KVR_ERR_BAD_REQUEST', `too many ${what} (${n}); at most ${max} are accepted in one request: split it or shorten the conversation`, { param });
  if (api === 'chat') {
    const msgs = body.messages;
    if (!Array.isArray(msgs)) return;
    if (msgs.length > max) throw tooMany('messages', msgs.length, 'messages');
    let parts = 0;
    for (const m of msgs) {
      const c = (m as { content?: unknown } | null)?.content;
      if (Array.isArray(c)) parts += c.length;
    }
    if (parts > max) throw tooMany('content parts', parts, 'messages');
    return;
  }
  const p = body.prompt;
  if (Array.isArray(p) && p.length > max && typeof p[0] !== 'number') throw tooMany('prompts', p.length, 'prompt');
}


/** {@link renderChatForRouting} of the body's messages, without an intermediate message list. */
function renderChatBody(messages: ReadonlyArray<{ role: string; content?: unknown }>): string {
  let s = '';
  for (const m of messages) s += `<|${m.role}|>\n${contentText(m.content)}\n`;
  return s;
}

/** Parses and validates a body for `api`; throws KvrError (400) naming the bad field. */
export function buildInferenceRequest(
  api: ApiKind,
  raw: Buffer,
  headers: Record<string, string | undefined>,
  opts: BuildOptions,
): InferenceRequest {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new KvrError('KVR_ERR_BAD_JSON', `request body is not valid JSON (${(err as Error).message}); send a JSON object with Content-Type: application/json`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new KvrError('KVR_ERR_BAD_JSON', 'request body must be a JSON object');
  }
  if (opts.models !== undefined && opts.models.length > 0) resolveModel(json as Record<string, unknown>, opts.models);
  checkItemCount(api, json as Record<string, unknown>, opts.maxItems ?? MAX_REQUEST_ITEMS);
  const body = json as Record<string, unknown>;
  // The schemas decide; the hand check only spares zod's copy of a body they would accept as is.
  if (!(api === 'chat' ? plainChat(body) : plainCompletion(body))) {
    const schema = api === 'chat' ? chatSchema : completionSchema;
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const { path, message } = firstIssue(parsed.error);
      const hint = api === 'chat' ? 'a chat request needs "model" (string) and "messages" (non-empty array of {role, content})' : 'a completion request needs "model" (string) and "prompt" (string, string array or token ids)';
      throw new KvrError('KVR_ERR_BAD_REQUEST', `invalid field "${path}": ${message}; ${hint}`, { param: path });
    }
  }
  const data = body as z.infer<typeof chatSchema> & z.infer<typeof completionSchema>;
  let promptText: string;
  if (api === 'chat') {
    promptText = renderChatBody(data.messages);
  } else {
    const p = data.prompt;
    promptText = typeof p === 'string' ? p : Array.isArray(p[0]) ? (p[0] as number[]).join(' ') : typeof p[0] === 'string' ? (p[0] as string) : (p as number[]).join(' ');
  }
  const maxTokens = data.max_completion_tokens ?? data.max_tokens ?? opts.defaultMaxTokens;
  return new SourcedRequest(opts.id, api, data.model, body, promptText, maxTokens, data.stream === true, opts.clientIp, headers, opts.arrivedAt);
}
