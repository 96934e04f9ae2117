/**
 * A minimal measuring client for OpenAI-compatible servers (the demo and benchmarks use it):
 * sends one request, reads the SSE stream as it arrives (or the one JSON body of a request sent
 * with `stream: false`), and reports time to first token, end-to-end time, the engine's usage
 * (with `cached_tokens`) and which endpoint served it.
 *
 * TTFT of a non-streaming request is taken the way the router's request lifecycle takes it when
 * the first token cannot be observed: it is not observed at all (`ttftMs` undefined; the answer
 * arrives in one piece, so prefill counts until the answer), never guessed.
 */
import { request, type Dispatcher } from 'undici';
import type { Clock } from '../core/clock.js';

export interface StreamResult {
  status: number;
  /** False when the request was sent with `stream: false` (one JSON body, no TTFT). */
  streamed: boolean;
  /** Time to the first generated text (ms); undefined when none arrived. */
  ttftMs: number | undefined;
  e2eMs: number;
  promptTokens?: number;
  cachedTokens?: number;
  /** The chunks that carried `usage` or `timings` (read by engine adapters, e.g. llama.cpp's timings). */
  usageChunks?: Record<string, unknown>[];
  completionTokens?: number;
  /** `x-kvroute-endpoint` (gateway) or `x-kvroute-sim-replica` (simulator) header. */
  endpoint?: string;
  text: string;
  /** Error body or transport error message when the request failed. */
  error?: string;
}

export interface StreamRequest {
  baseUrl: string;
  api: 'chat' | 'completions';
  body: Record<string, unknown>;
  headers?: Record<string, string>;
  dispatcher?: Dispatcher;
  clock: Clock;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
function readUsage(out: StreamResult, obj: Record<string, any>): void {
  // The raw chunk(s) carrying usage / timings, for engine adapters (llama.cpp timings).
  if (obj.usage || obj.timings) out.usageChunks = [...(out.usageChunks ?? []), obj];
  if (obj.usage) {
    out.promptTokens = obj.usage.prompt_tokens;
    out.completionTokens = obj.usage.completion_tokens;
    out.cachedTokens = obj.usage.prompt_tokens_details?.cached_tokens ?? 0;
  }
}

/** Reads a non-streaming answer (one JSON body): text, usage, error. */
function readJsonAnswer(out: StreamResult, raw: string): void {
  let obj: Record<string, any>;
  try {
    obj = JSON.parse(raw);
  } catch {
    out.error = `the answer is not JSON: ${raw.slice(0, 200)}`;
    return;
  }
  if (obj.error) out.error = JSON.stringify(obj.error);
  const choice = obj.choices?.[0];
  const piece: unknown = choice?.text ?? choice?.message?.content;
  if (typeof piece === 'string') out.text = piece;
  else if (!obj.error) out.error = 'the answer has no choices[0].text / message.content';
  readUsage(out, obj);
}

/**
 * Sends `body` and measures it. Streaming (the default): `stream: true` with `include_usage`.
 * A body with `stream: false` is sent as it is and its JSON answer read whole (`streamed: false`,
 * no TTFT, see the file comment). Never throws.
 */
export async function streamRequest(req: StreamRequest): Promise<StreamResult> {
  const t0 = req.clock.now();
  const path = req.api === 'chat' ? '/v1/chat/completions' : '/v1/completions';
  const streamed = req.body.stream !== false;
  const body = streamed ? { ...req.body, stream: true, stream_options: { include_usage: true } } : { ...req.body };
  let ttftMs: number | undefined;
  let text = '';
  const out: StreamResult = { status: 0, streamed, ttftMs: undefined, e2eMs: 0, text: '' };
  try {
    const res = await request(req.baseUrl + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...req.headers },
      body: JSON.stringify(body),
      dispatcher: req.dispatcher,
    });
    out.status = res.statusCode;
    const ep = res.headers['x-kvroute-endpoint'] ?? res.headers['x-kvroute-sim-replica'];
    if (typeof ep === 'string') out.endpoint = ep;
    if (res.statusCode !== 200) {
      out.error = await res.body.text();
      out.e2eMs = req.clock.now() - t0;
      return out;
    }
    if (!streamed) {
      readJsonAnswer(out, await res.body.text());
      out.e2eMs = req.clock.now() - t0;
      return out;
    }
    let buf = '';
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') continue;
        let obj: Record<string, any>;
        try {
          obj = JSON.parse(data);
        } catch {
          continue;
        }
        if (obj.error) out.error = JSON.stringify(obj.error);
        const choice = obj.choices?.[0];
        const piece: string | undefined = choice?.text ?? choice?.delta?.content;
        if (typeof piece === 'string' && piece.length > 0) {
          if (ttftMs === undefined) ttftMs = req.clock.now() - t0;
          text += piece;
        }
        readUsage(out, obj);
      }
    }
  } catch (err) {
    out.error = (err as Error).message;
  }
  out.ttftMs = ttftMs;
  out.text = text;
  out.e2eMs = req.clock.now() - t0;
  return out;
}
