/**
 * Reading OpenAI response bodies on the way through, without buffering a stream:
 *
 * - {@link SseShaper} splits an SSE stream into events as it passes. It notices the first token
 *   (the first event carrying generated text, a tool call or a finish reason: prefill is done),
 *   captures the engine's `usage` (the chunk with `choices: []` that `include_usage` adds), drops
 *   that chunk when the router asked for it on the client's behalf, spots error events, and can
 *   hand every event to a {@link ResponseAssembler} to rebuild a non-streaming body.
 * - {@link UsageSniffer} finds `usage` in a JSON body (pass-through non-streaming answers).
 */
import { StringDecoder } from 'node:string_decoder';
import type { Usage } from '../../lifecycle/types.js';
import type { ResponseAssembler } from './response-assembler.js';
import { topLevelValueSpan } from './json-splice.js';
import { plainDelta } from './plain-delta.js';
import { adapterFor } from '../../engines/registry.js';

export type { Usage } from '../../lifecycle/types.js';

const JSON_CAP = 4 * 1024 * 1024;
/** Largest SSE event the shaper holds while waiting for its end (bigger ones pass unparsed). */
const EVENT_CAP = 4 * 1024 * 1024;

/** `usage` of an OpenAI response object, or undefined. */
export function usageOf(obj: unknown): Usage | undefined {
  const u = (obj as { usage?: Record<string, unknown> } | undefined)?.usage;
  if (!u || typeof u !== 'object') return undefined;
  const details = u.prompt_tokens_details as Record<string, unknown> | undefined | null;
  return { promptTokens: num(u.prompt_tokens), completionTokens: num(u.completion_tokens), cachedTokens: num(details?.cached_tokens) };
}

/** An error event of a stream: status to answer with and the body. */
export interface StreamError {
  status: number;
  body: Record<string, unknown>;
}

/** Options of {@link SseShaper}. */
export interface SseShaperOptions {
  /** Drop the usage-only chunk (the client did not ask for usage; the router did). */
  stripUsage?: boolean;
  /** Collect the events into a non-streaming body instead of passing them on. */
  assembler?: ResponseAssembler;
}

/**
 * Completes `u` from llama.cpp's `timings` (the only engine that sends them): older llama.cpp
 * builds report cached prompt tokens nowhere else (`timings.cache_n`, or `usage.prompt_tokens -
 * timings.prompt_n`). The llama.cpp adapter reads them; `u` is returned unchanged without timings.
 */
function withTimings(u: Usage | undefined, timings: unknown): Usage | undefined {
  if (timings === undefined || (u !== undefined && u.cachedTokens !== undefined)) return u;
  const read = adapterFor('llamacpp').readUsage({ usage: { prompt_tokens: u?.promptTokens, completion_tokens: u?.completionTokens }, timings });
  if (read === undefined) return u;
  return { promptTokens: u?.promptTokens ?? read.promptTokens, completionTokens: u?.completionTokens ?? read.completionTokens, cachedTokens: read.cachedTokens };
}

/** Event-level view of an SSE response; see the file comment. */
export class SseShaper {
  readonly #strip: boolean;
  readonly #assembler: ResponseAssembler | undefined;
  readonly #decoder = new StringDecoder('utf8');
  #buf = '';
  #firstToken = false;
  #usage: Usage | undefined;
  /** llama.cpp's `timings` of the stream (see {@link withTimings}). */
  #timings: unknown;
  #error: StreamError | undefined;
  #done = false;

  constructor(o: SseShaperOptions = {}) {
    this.#strip = o.stripUsage === true;
    this.#assembler = o.assembler;
  }

  /** True once an event carried generated output. */
  get firstToken(): boolean {
    return this.#firstToken;
  }
  get usage(): Usage | undefined {
    return withTimings(this.#usage, this.#timings);
  }
  /** The first error event of the stream, if any (looked for while assembling, and before the first token). */
  get error(): StreamError | undefined {
    return this.#error;
  }
  /** True once `data: [DONE]` passed. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Feeds one chunk; returns what to send to the client now: the chunk itself when nothing is
   * dropped, the kept events when stripping, nothing when assembling.
   */
  push(chunk: Buffer): Buffer | string | undefined {
    // Fast path (almost every chunk of a long stream): at an event boundary, a chunk of whole
    // events with nothing to look at once the first token was seen passes untouched, undecoded.
    // (Error events matter only while assembling or before the first token: not looked for here.)
    if (this.#firstToken && this.#assembler === undefined && this.#buf.length === 0 && endsEvent(chunk) && !hasUsageObject(chunk) && chunk.indexOf(TIMINGS) < 0) {
      if (chunk.indexOf(DONE, Math.max(0, chunk.length - DONE_TAIL)) >= 0) this.#done = true; // [DONE] is the last event
      return chunk;
    }
    let text = this.#decoder.write(chunk);
    if (text.includes('\r')) text = text.replace(/\r\n/g, '\n');
    this.#buf += text;
    let kept = '';
    let dropped = false;
    let from = 0;
    for (;;) {
      const end = this.#buf.indexOf('\n\n', from);
      if (end < 0) break;
      const ev = this.#buf.slice(from, end + 2);
      from = end + 2;
      if (this.#event(ev)) kept += ev;
      else dropped = true;
    }
    this.#buf = this.#buf.slice(from);
    if (this.#buf.length > EVENT_CAP) {
      // Not SSE as we know it: stop looking, pass bytes on.
      kept += this.#buf;
      this.#buf = '';
      this.#firstToken = true;
    }
    if (this.#assembler !== undefined) return undefined;
    if (!this.#strip) return chunk;
    if (!dropped && this.#buf.length === 0) return kept.length === text.length ? chunk : kept;
    return kept.length > 0 ? kept : undefined;
  }

  /** What is left at the end of the stream (an unterminated last event). */
  end(): string | undefined {
    const rest = this.#buf + this.#decoder.end();
    this.#buf = '';
    if (rest.length === 0) return undefined;
    const keep = this.#event(rest);
    return this.#assembler === undefined && this.#strip && keep ? rest : undefined;
  }

  /** Looks at one event; returns false when it must be dropped. */
  #event(ev: string): boolean {
    const data = dataOf(ev);
    if (data === undefined) return true;
    if (data === '[DONE]') {
      this.#done = true;
      return true;
    }
    // Re-assembling: after the first token, a plain text chunk is read without JSON.parse.
    const assembler = this.#assembler;
    if (assembler !== undefined && this.#firstToken && assembler.headKnown) {
      const d = plainDelta(data, assembler.chat);
      if (d !== undefined) {
        assembler.addText(d.index, d.text);
        return true;
      }
    }
    // After the first token only an event with a usage object (not `"usage":null`) or an error is parsed.
    const needParse = this.#assembler !== undefined || !this.#firstToken || hasUsageObject(data) || data.includes('"error"') || data.includes('"timings"');
    if (!needParse) return true;
    const obj = safeParse(data) as Record<string, unknown> | undefined;
    if (obj === undefined || typeof obj !== 'object' || obj === null) return true;
    const choices = obj.choices;
    if (isError(obj)) {
      if (this.#error === undefined) this.#error = { status: errorStatus(obj), body: obj };
      this.#firstToken = true;
      return true;
    }
    this.#assembler?.add(obj);
    if (obj.timings !== null && typeof obj.timings === 'object') this.#timings = obj.timings;
    if (!this.#firstToken && Array.isArray(choices) && choices.some(carriesOutput)) this.#firstToken = true;
    const u = obj.usage !== undefined && obj.usage !== null ? usageOf(obj) : undefined;
    if (u !== undefined) {
      this.#usage = u;
      if (Array.isArray(choices) && choices.length === 0) return !this.#strip;
    }
    return true;
  }
}

const USAGE = Buffer.from('"usage"');
/** llama.cpp's per-request timings (cached prompt tokens on builds without prompt_tokens_details). */
const TIMINGS = Buffer.from('"timings"');
const DONE = Buffer.from('data: [DONE]');
/** `data: [DONE]` and its blank line (CRLF or LF), at the end of a chunk. */
const DONE_TAIL = DONE.length + 4;

/** True when `chunk` ends with a blank line (the end of an SSE event). */
function endsEvent(chunk: Buffer): boolean {
  const n = chunk.length;
  return n >= 2 && chunk[n - 1] === 10 && (chunk[n - 2] === 10 || (n >= 4 && chunk[n - 2] === 13 && chunk[n - 3] === 10 && chunk[n - 4] === 13));
}

/**
 * True when `s` holds `"usage"` followed by anything but `null` (a usage object, or a chunk cut
 * right there: conservative). vLLM-style chunks may carry `"usage":null` on every event.
 */
function hasUsageObject(s: Buffer | string): boolean {
  return typeof s === 'string' ? usageObjectInText(s) : usageObjectInBytes(s);
}

const isJsonSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/** {@link hasUsageObject} of bytes. */
function usageObjectInBytes(b: Buffer): boolean {
  const n = b.length;
  for (let i = b.indexOf(USAGE); i >= 0; i = b.indexOf(USAGE, i + 7)) {
    let j = i + 7;
    while (j < n && isJsonSpace(b[j])) j++;
    if (j >= n) return true;
    if (b[j] === 0x3a) {
      j++;
      while (j < n && isJsonSpace(b[j])) j++;
      if (j >= n || b[j] !== 0x6e) return true; // not `null`
    }
  }
  return false;
}

/** {@link hasUsageObject} of text. */
function usageObjectInText(s: string): boolean {
  const n = s.length;
  for (let i = s.indexOf('"usage"'); i >= 0; i = s.indexOf('"usage"', i + 7)) {
    let j = i + 7;
    while (j < n && isJsonSpace(s.charCodeAt(j))) j++;
    if (j >= n) return true;
    if (s.charCodeAt(j) === 0x3a) {
      j++;
      while (j < n && isJsonSpace(s.charCodeAt(j))) j++;
      if (j >= n || s.charCodeAt(j) !== 0x6e) return true; // not `null`
    }
  }
  return false;
}

function dataOf(ev: string): string | undefined {
  // Common case: one `data: ...` line then the blank line.
  if (ev.startsWith('data: ') && ev.indexOf('\n') === ev.length - 2) return ev.slice(6, ev.length - 2);
  let data: string | undefined;
  for (const line of ev.split('\n')) {
    if (!line.startsWith('data:')) continue;
    const v = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    data = data === undefined ? v : `${data}\n${v}`;
  }
  return data;
}

function isError(obj: Record<string, unknown>): boolean {
  return (obj.error !== undefined && obj.error !== null && obj.choices === undefined) || obj.object === 'error';
}

function errorStatus(obj: Record<string, unknown>): number {
  const e = (obj.error ?? obj) as { code?: unknown };
  return typeof e.code === 'number' && e.code >= 400 && e.code <= 599 ? e.code : 500;
}

/** A choice chunk with generated output: text, content, reasoning, a tool call or a finish reason. */
function carriesOutput(c: unknown): boolean {
  const ch = c as { text?: unknown; delta?: Record<string, unknown>; finish_reason?: unknown } | null;
  if (ch === null || typeof ch !== 'object') return false;
  if (typeof ch.text === 'string' && ch.text.length > 0) return true;
  if (ch.finish_reason !== undefined && ch.finish_reason !== null) return true;
  const d = ch.delta;
  if (d === undefined || d === null) return false;
  if (typeof d.content === 'string' && d.content.length > 0) return true;
  if (typeof d.reasoning === 'string' && d.reasoning.length > 0) return true;
  if (typeof d.reasoning_content === 'string' && d.reasoning_content.length > 0) return true;
  return Array.isArray(d.tool_calls) && d.tool_calls.length > 0;
}

/** Finds `usage` in a JSON (non-SSE) body up to a size cap; see the file comment. */
export class UsageSniffer {
  readonly #sse: boolean;
  #chunks: Buffer[] = [];
  #size = 0;
  #overflow = false;
  #shaper: SseShaper | undefined;

  constructor(contentType: string | undefined) {
    this.#sse = (contentType ?? '').includes('text/event-stream');
    if (this.#sse) this.#shaper = new SseShaper();
  }

  /** Feeds one chunk of the response body. */
  push(chunk: Buffer): void {
    if (this.#shaper !== undefined) {
      this.#shaper.push(chunk);
      return;
    }
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size > JSON_CAP) {
      this.#overflow = true;
      this.#chunks = [];
    }
  }

  /** The usage reported by the engine, or undefined when there was none. */
  usage(): Usage | undefined {
    if (this.#shaper !== undefined) {
      this.#shaper.end();
      return this.#shaper.usage;
    }
    if (this.#overflow || this.#chunks.length === 0) return undefined;
    // Only the top-level `usage` value is parsed (the body was not: it may hold a long answer).
    const body = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#size);
    const span = topLevelValueSpan(body, 'usage');
    const u = span === undefined ? undefined : usageOf({ usage: safeParse(body.toString('utf8', span[0], span[1])) });
    const t = topLevelValueSpan(body, 'timings');
    return t === undefined ? u : withTimings(u, safeParse(body.toString('utf8', t[0], t[1])));
  }
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function safeParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
