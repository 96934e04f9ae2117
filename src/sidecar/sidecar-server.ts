/**
 * `kvroute sidecar`: llm-d's P/D routing sidecar (`cmd/pd-sidecar`, NixlConnector v2), run in
 * front of the decode pod's model server.
 *
 *   client/EPP --(x-prefiller-host-port: P)--> sidecar :8000 --> vLLM :8200 (decode)
 *                                                 └-- prefill leg --> P
 *
 * For an inference path (prefill-request.ts PD_PATHS) with `x-prefiller-host-port` (removed
 * before forwarding; a CSV list -> the first entry, or a random one with `prefillerSampling`):
 * 1. SSRF protection (when on): the target must be a known prefill endpoint, else 403.
 * 2. Prefill leg (prefill-leg.ts): retries on 502/503/504 only; a dead pod, a 5xx after the
 *    retries or an answer without kv_transfer_params falls back to local prefill (counted in
 *    `kvroute_pd_prefill_fallbacks_total{reason}`, logged as a warning); a 4xx goes back to the
 *    client.
 * 3. Decode leg: the client's body with the returned kv_transfer_params to the local model
 *    server; the response is streamed back with the prefill's cached_tokens copied into its
 *    usage (usage-rewriter.ts), streaming or not.
 * 4. Client gone: during the prefill leg the leg is cancelled; between the legs the prefill
 *    endpoint is told to free its pinned blocks (release-prefill.ts); during decode the decode
 *    request is cancelled (the model server then tells the prefill endpoint to free).
 * Anything else (no header, other paths: /v1/models, /health, /metrics) is proxied unchanged.
 * The sidecar's own metrics are at `/sidecar/metrics`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Agent, request, type Dispatcher } from 'undici';
import { systemClock, type Clock } from '../core/clock.js';
import { KvrError, toKvrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { mathRng, type Rng } from '../core/rng.js';
import { RouterMetrics } from '../metrics/router-metrics.js';
import { runPrefillLeg } from '../pd/prefill-leg.js';
import { buildDecodeBody, parseHostPort, PD_PATHS, PREFILLER_HEADER } from '../pd/prefill-request.js';
import { releasePrefill } from '../pd/release-prefill.js';
import { rewriteJsonBody, SseUsageRewriter } from '../pd/usage-rewriter.js';
import { readBody } from '../sim/http-io.js';

/** Options of a {@link Sidecar}. */
export interface SidecarOptions {
  host?: string;
  /** Listen port (llm-d: 8000; 0 = ephemeral). */
  port: number;
  /** The local model server, `host:port` (llm-d: --model-server-port 8200 on localhost). */
  modelServer: string;
  /** Retries of the prefill leg on 502/503/504 (default 3). */
  prefillMaxRetries?: number;
  /** First retry backoff (ms, default 100), doubled per retry. */
  prefillRetryBackoffMs?: number;
  /** Refuse prefill targets that are not known prefill endpoints (403). */
  ssrfProtection?: boolean;
  /** Known prefill endpoints (`host:port`), or a function returning them now (discovery). */
  allowedPrefillers?: readonly string[] | (() => readonly string[]);
  /** Pick a random entry of a CSV `x-prefiller-host-port` instead of the first. */
  prefillerSampling?: boolean;
  /** Timeout of each leg's headers and body (ms, default 600 000). */
  timeoutMs?: number;
  maxBodyBytes?: number;
  clock?: Clock;
  rng?: Rng;
  logger?: Logger;
  metrics?: RouterMetrics;
}

const HOP = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'content-length', 'expect', PREFILLER_HEADER]);
const HOP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'content-length']);

function forwardHeaders(req: IncomingMessage): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) h[k] = Array.isArray(v) ? v.join(', ') : v;
  return h;
}

/** The sidecar server; see the file comment. */
export class Sidecar {
  readonly metrics: RouterMetrics;
  readonly #o: SidecarOptions;
  readonly #server: Server;
  readonly #dispatcher: Dispatcher;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #model: string;
  #port: number;

  constructor(o: SidecarOptions) {
    const ms = parseHostPort(o.modelServer);
    if (ms === undefined) throw new KvrError('KVR_ERR_USAGE', `model server "${o.modelServer}" is not host:port (e.g. 127.0.0.1:8200)`);
    if (o.ssrfProtection && o.allowedPrefillers === undefined) {
      throw new KvrError('KVR_ERR_USAGE', 'SSRF protection needs the known prefill endpoints (--prefill-allow host:port,... or --prefill-endpoints discovery)');
    }
    this.#o = o;
    this.#model = `http://${o.modelServer.trim()}`;
    this.#port = o.port;
    this.#clock = o.clock ?? systemClock;
    this.#log = o.logger ?? silentLogger;
    this.metrics = o.metrics ?? new RouterMetrics({ clock: this.#clock });
    this.#dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 256 });
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => this.#sendError(res, err));
    });
  }

  /** Base URL once started. */
  get url(): string {
    return `http://${this.#o.host ?? '127.0.0.1'}:${this.#port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#port, this.#o.host ?? '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
    await this.#dispatcher.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/sidecar/metrics' && req.method === 'GET') {
      const text = await this.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
      return void res.end(text);
    }
    const target = req.headers[PREFILLER_HEADER];
    if (req.method !== 'POST' || !PD_PATHS.has(path) || target === undefined) return this.#passThrough(req, res);
    const raw = await readBody(req, this.#o.maxBodyBytes ?? 8 * 1024 * 1024);
    let body: Record<string, unknown>;
    try {
      const v = JSON.parse(raw.toString('utf8')) as unknown;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      body = v as Record<string, unknown>;
    } catch (e) {
      throw new KvrError('KVR_ERR_BAD_JSON', `malformed JSON body: ${(e as Error).message}`);
    }
    const prefill = this.#chooseTarget(Array.isArray(target) ? target.join(',') : target);
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    const headers = forwardHeaders(req);
    const leg = await runPrefillLeg({
      url: `http://${prefill}`, path, body, headers, signal: ac.signal, clock: this.#clock, dispatcher: this.#dispatcher,
      maxRetries: this.#o.prefillMaxRetries, backoffMs: this.#o.prefillRetryBackoffMs, timeoutMs: this.#o.timeoutMs,
    });
    const m = this.metrics;
    m.pdPrefillDuration.observe(leg.durationMs / 1000);
    if (leg.kind === 'aborted') return void m.pdPrefillRequests.inc({ endpoint: prefill, result: 'aborted' });
    if (leg.kind === 'error') {
      m.pdPrefillRequests.inc({ endpoint: prefill, result: 'error' });
      res.writeHead(leg.status, { 'content-type': leg.contentType, 'content-length': leg.body.length });
      return void res.end(leg.body);
    }
    let decodeBody = body;
    let cached: number | undefined;
    if (leg.kind === 'fallback') {
      m.pdPrefillRequests.inc({ endpoint: prefill, result: 'fallback' });
      m.pdPrefillFallbacks.inc({ reason: leg.reason });
      this.#log.warn({ prefill, reason: leg.reason, attempts: leg.attempts }, `prefill leg failed, prefilling on the decode endpoint: ${leg.message}`);
      decodeBody = { ...body };
      delete decodeBody.kv_transfer_params;
    } else {
      m.pdPrefillRequests.inc({ endpoint: prefill, result: 'ok' });
      decodeBody = buildDecodeBody(body, leg.params);
      cached = leg.cachedTokens;
      if (ac.signal.aborted) return this.#release(leg.params);
    }
    headers['x-request-id'] = leg.kind === 'ok' ? leg.requestId : (headers['x-request-id'] ?? '');
    if (headers['x-request-id'] === '') delete headers['x-request-id'];
    await this.#decode(path, headers, decodeBody, res, ac.signal, cached, leg.kind === 'ok' ? leg.params : undefined);
  }

  /** Picks the prefill target from the header value; enforces SSRF protection. */
  #chooseTarget(value: string): string {
    const list = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (list.length === 0) throw new KvrError('KVR_ERR_BAD_REQUEST', `${PREFILLER_HEADER} is empty; expected host:port`);
    const pick = this.#o.prefillerSampling ? list[Math.floor((this.#o.rng ?? mathRng).next() * list.length)] : list[0];
    const hp = parseHostPort(pick);
    if (hp === undefined) throw new KvrError('KVR_ERR_BAD_REQUEST', `${PREFILLER_HEADER} "${pick}" is not host:port`);
    const norm = hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
    if (this.#o.ssrfProtection) {
      const a = this.#o.allowedPrefillers;
      const allowed = (typeof a === 'function' ? a() : a ?? []).map((s) => s.trim());
      if (!allowed.includes(norm)) {
        this.metrics.pdSsrfRejections.inc();
        throw new KvrError('KVR_ERR_FORBIDDEN', `prefill target ${norm} is not a known prefill endpoint (SSRF protection); known: ${allowed.join(', ') || '(none)'}`);
      }
    }
    return norm;
  }

  async #release(params: Record<string, unknown>): Promise<void> {
    const r = await releasePrefill(params, this.#dispatcher);
    this.metrics.pdPrefillReleases.inc({ result: r });
    if (r !== 'ok') this.#log.warn({ result: r, remote: `${String(params.remote_host)}:${String(params.remote_port)}` }, 'client left between the legs; the prefill endpoint did not confirm freeing its pinned KV blocks');
  }

  async #decode(path: string, headers: Record<string, string>, body: Record<string, unknown>, res: ServerResponse, signal: AbortSignal, cached: number | undefined, params: Record<string, unknown> | undefined): Promise<void> {
    let up: Dispatcher.ResponseData;
    try {
      up = await request(this.#model + path, {
        method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body), signal, dispatcher: this.#dispatcher,
        headersTimeout: this.#o.timeoutMs ?? 600_000, bodyTimeout: this.#o.timeoutMs ?? 600_000,
      });
    } catch (err) {
      if (params !== undefined) void this.#release(params);
      if (signal.aborted) return;
      throw new KvrError('KVR_ERR_UPSTREAM', `decode model server ${this.#model} failed: ${(err as Error).message}`, { cause: err });
    }
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_RESPONSE.has(k)) out[k] = v;
    const ct = String(up.headers['content-type'] ?? '');
    try {
      if (cached === undefined || up.statusCode !== 200) {
        res.writeHead(up.statusCode, out);
        for await (const c of up.body) res.write(c);
      } else if (ct.includes('text/event-stream')) {
        res.writeHead(up.statusCode, out);
        const rw = new SseUsageRewriter(cached);
        for await (const c of up.body) {
          const s = rw.push(c as Buffer);
          if (s !== '') res.write(s);
        }
        const rest = rw.end();
        if (rest !== '') res.write(rest);
      } else {
        const buf = rewriteJsonBody(Buffer.from(await up.body.arrayBuffer()), cached);
        res.writeHead(up.statusCode, { ...out, 'content-length': String(buf.length) });
        return void res.end(buf);
      }
      res.end();
    } catch (err) {
      if (signal.aborted) return;
      this.#log.warn({ err: (err as Error).message }, 'decode stream broke');
      res.destroy();
    }
  }

  async #passThrough(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? '/';
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const up = await request(this.#model + path, {
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: forwardHeaders(req),
      body: hasBody ? await readBody(req, this.#o.maxBodyBytes ?? 8 * 1024 * 1024) : undefined,
      signal: ac.signal,
      dispatcher: this.#dispatcher,
      headersTimeout: this.#o.timeoutMs ?? 600_000,
      bodyTimeout: this.#o.timeoutMs ?? 600_000,
    }).catch((err: unknown) => {
      throw new KvrError('KVR_ERR_UPSTREAM', `model server ${this.#model} failed: ${(err as Error).message}`, { cause: err });
    });
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_RESPONSE.has(k)) out[k] = v;
    res.writeHead(up.statusCode, out);
    try {
      for await (const c of up.body) res.write(c);
      res.end();
    } catch {
      res.destroy();
    }
  }

  #sendError(res: ServerResponse, err: unknown): void {
    const e = toKvrError(err);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const s = JSON.stringify(e.toOpenAI());
    res.writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
    res.end(s);
  }
}
