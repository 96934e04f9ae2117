/**
 * Runs the prefill leg of a disaggregated request against one prefill endpoint, the way llm-d's
 * sidecar does, and classifies what happened so the caller can decode, fall back or answer:
 *
 *   POST <prefill>/<path> (prefill body, new x-request-id)
 *     502/503/504            -> retry after `backoffMs` x 2^attempt, up to `maxRetries` times
 *     2xx + kv_transfer_params -> ok {params, cachedTokens}
 *     2xx without them       -> fallback 'no_kv_params' (a prefill pod without the KV connector)
 *     other 4xx              -> error: the client gets the prefill's answer (the decode would fail alike)
 *     other 5xx / retries spent -> fallback 'status'
 *     connect error          -> fallback 'unreachable' (dead pod, wrong port)
 *     body/headers timeout   -> fallback 'timeout'
 *     `signal` aborted       -> aborted (the client went away; the engine request is cancelled)
 */
import { randomUUID } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import type { Clock } from '../core/clock.js';
import { buildPrefillBody } from './prefill-request.js';

/** Options of one prefill leg. */
export interface PrefillLegOptions {
  /** Base URL of the prefill endpoint (`http://host:port`). */
  url: string;
  path: string;
  /** The client's body (not modified). */
  body: Record<string, unknown>;
  /** Headers to forward (hop-by-hop ones already removed); x-request-id is replaced. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Retries on 502/503/504 (default 3). */
  maxRetries?: number;
  /** First retry backoff in ms, doubled each retry (default 100). */
  backoffMs?: number;
  /** Headers+body timeout of one attempt (ms, default 600 000). */
  timeoutMs?: number;
  clock: Clock;
  dispatcher?: Dispatcher;
}

/** What a prefill leg ended with. */
export type PrefillLegResult =
  | { kind: 'ok'; params: Record<string, unknown>; cachedTokens: number; promptTokens?: number; durationMs: number; requestId: string; attempts: number }
  | { kind: 'fallback'; reason: 'unreachable' | 'status' | 'no_kv_params' | 'timeout'; message: string; status?: number; durationMs: number; attempts: number }
  | { kind: 'error'; status: number; contentType: string; body: Buffer; durationMs: number; attempts: number }
  | { kind: 'aborted'; durationMs: number; attempts: number };

const RETRY = new Set([502, 503, 504]);

function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = clock.setTimeout(done, ms);
    function done(): void {
      t.cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Runs the leg; never throws (see the file comment for the classification). */
export async function runPrefillLeg(o: PrefillLegOptions): Promise<PrefillLegResult> {
  const t0 = o.clock.now();
  const maxRetries = o.maxRetries ?? 3;
  const backoff = o.backoffMs ?? 100;
  const requestId = randomUUID();
  const payload = JSON.stringify(buildPrefillBody(o.body, o.path));
  const headers = { ...(o.headers ?? {}), 'content-type': 'application/json', 'x-request-id': requestId };
  const ms = (): number => o.clock.now() - t0;
  let attempts = 0;
  for (;;) {
    if (o.signal?.aborted) return { kind: 'aborted', durationMs: ms(), attempts };
    attempts++;
    let res: Dispatcher.ResponseData;
    let buf: Buffer;
    try {
      res = await request(o.url + o.path, {
        method: 'POST',
        headers,
        body: payload,
        signal: o.signal,
        dispatcher: o.dispatcher,
        headersTimeout: o.timeoutMs ?? 600_000,
        bodyTimeout: o.timeoutMs ?? 600_000,
      });
      buf = Buffer.from(await res.body.arrayBuffer());
    } catch (err) {
      if (o.signal?.aborted) return { kind: 'aborted', durationMs: ms(), attempts };
      const e = err as { code?: string; message?: string };
      const timeout = e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
      return { kind: 'fallback', reason: timeout ? 'timeout' : 'unreachable', message: `prefill endpoint ${o.url}: ${e.code ?? ''} ${e.message ?? String(err)}`.trim(), durationMs: ms(), attempts };
    }
    const status = res.statusCode;
    if (RETRY.has(status) && attempts <= maxRetries) {
      await sleep(o.clock, backoff * 2 ** (attempts - 1), o.signal);
      continue;
    }
    if (status >= 500) return { kind: 'fallback', reason: 'status', status, message: `prefill endpoint ${o.url} answered ${status} after ${attempts} attempt(s)`, durationMs: ms(), attempts };
    if (status >= 300) return { kind: 'error', status, contentType: String(res.headers['content-type'] ?? 'application/json'), body: buf, durationMs: ms(), attempts };
    let parsed: Record<string, unknown> | undefined;
    try {
      const v = JSON.parse(buf.toString('utf8')) as unknown;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) parsed = v as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    const params = parsed?.kv_transfer_params;
    if (params === null || params === undefined || typeof params !== 'object' || Array.isArray(params)) {
      return { kind: 'fallback', reason: 'no_kv_params', status, message: `prefill endpoint ${o.url} answered without kv_transfer_params: is vLLM started with --kv-transfer-config (NixlConnector, kv_role kv_producer or kv_both)?`, durationMs: ms(), attempts };
    }
    const usage = parsed?.usage as { prompt_tokens?: unknown; prompt_tokens_details?: { cached_tokens?: unknown } | null } | undefined;
    const cached = usage?.prompt_tokens_details?.cached_tokens;
    const prompt = usage?.prompt_tokens;
    return {
      kind: 'ok',
      params: params as Record<string, unknown>,
      cachedTokens: typeof cached === 'number' ? cached : 0,
      ...(typeof prompt === 'number' ? { promptTokens: prompt } : {}),
      durationMs: ms(),
      requestId,
      attempts,
    };
  }
}
