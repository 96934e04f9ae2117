/**
 * One upstream attempt of the OpenAI proxy on the wire: an undici dispatch handler
 * (`dispatcher.dispatch(opts, handler)`), so the answer's chunks arrive as callbacks and go
 * straight to the client's response. Against `undici.request()` this saves, per request, the
 * promise-returning API layer, a body stream (`BodyReadable`) with its async iterator, and the
 * AbortSignal listener: the attempt's abort hook ({@link UpstreamAttempt.onAbort}) aborts the
 * exchange through its controller instead.
 *
 * Algorithm, per callback (proxy.ts decides the plan; the lifecycle owns accounting):
 * - response start: a status the lifecycle retries (5xx before any byte) settles with the next
 *   attempt (the lifecycle aborts this one); otherwise the headers are prepared (hop-by-hop ones
 *   dropped, the router's added), nothing is written yet;
 * - data: SSE goes through the {@link SseShaper} (first token, usage, stripped usage chunk,
 *   errors), events before the first token are held back (a failure there is still retried),
 *   an assembled non-streaming answer is only collected; JSON passes through the
 *   {@link UsageSniffer}. A write the client cannot take pauses the upstream until `drain`;
 * - end: the held/assembled rest is sent, usage reported, the request ends (`att.end`);
 * - error: classified by the attempt (timers, commitment), retried when the lifecycle says so;
 *   an error caused by the attempt's own abort is handled a microtask later, once the lifecycle
 *   finished what aborted it (a client abort ends as 499, a replaced attempt is ignored).
 *
 * The exchange settles its promise exactly once: with the next attempt (retry) or undefined
 * (the request ended, or failed before any byte: the caller sends `lc.error`).
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { getGlobalDispatcher, type Dispatcher } from 'undici';
import type { Endpoint } from '../../core/endpoint.js';
import type { RequestLifecycle, UpstreamAttempt } from '../../lifecycle/request-lifecycle.js';
import { isConnectError } from '../../datalayer/capped-get.js';
import { sessionTokenFor } from '../../scheduling/scorers/session-affinity-scorer.js';
import { ResponseAssembler } from './response-assembler.js';
import { SseShaper, UsageSniffer, type Usage } from './usage-sniffer.js';

type Controller = Dispatcher.DispatchController;

/** Response headers never passed back. */
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

/** Headers an assembled (JSON) answer replaces: the upstream sent them for its stream. */
const DROP_ASSEMBLED = new Set([...DROP_RESPONSE, 'content-type', 'content-length', 'cache-control']);

/** `x-session-token` per endpoint id (it only depends on the id). */
const sessionTokens = new Map<string, string>();
function sessionToken(id: string): string {
  let t = sessionTokens.get(id);
  if (t === undefined) {
    t = sessionTokenFor(id);
    if (sessionTokens.size > 4096) sessionTokens.clear();
    sessionTokens.set(id, t);
  }
  return t;
}

/** What one exchange needs; built once per request by proxy.ts. */
export interface ExchangeRequest {
  dispatcher: Dispatcher | undefined;
  onEndpointDown: ((ep: Endpoint) => void) | undefined;
  upstreamTimeoutMs: number;
  lc: RequestLifecycle;
  path: string;
  headers: Record<string, string>;
  body: Buffer | string;
  /** See UpstreamPlan.mode in proxy.ts. */
  mode: 'stream' | 'strip' | 'assemble' | 'json';
  res: ServerResponse;
  extraHeaders: Record<string, string>;
  sseTrailer: ((info: { endpoint: Endpoint; usage: Usage | undefined; ttftMs: number | undefined }) => string | undefined) | undefined;
}

/** origin + base path of an endpoint URL, parsed once per URL. */
const targets = new Map<string, { origin: string; base: string }>();
function targetOf(url: string): { origin: string; base: string } {
  let t = targets.get(url);
  if (t === undefined) {
    const u = new URL(url);
    t = { origin: u.origin, base: u.pathname === '/' ? '' : u.pathname.replace(/\/+$/, '') };
    if (targets.size > 4096) targets.clear();
    targets.set(url, t);
  }
  return t;
}

/** Runs one attempt; resolves with the next attempt (retry) or undefined (done). */
export function runExchange(r: ExchangeRequest, att: UpstreamAttempt): Promise<UpstreamAttempt | undefined> {
  return new UpstreamExchange(r, att).start();
}

/** See the file comment. */
class UpstreamExchange implements Dispatcher.DispatchHandler {
  readonly #r: ExchangeRequest;
  readonly #att: UpstreamAttempt;
  #ctl: Controller | undefined;
  #settled = false;
  #resolve!: (next: UpstreamAttempt | undefined) => void;
  #started = false;
  #status = 0;
  #sse = false;
  #assembler: ResponseAssembler | undefined;
  #shaper: SseShaper | undefined;
  #sniffer: UsageSniffer | undefined;
  #outHeaders: Record<string, string | string[]> | undefined;
  /** Stream output before the first token, held back so a failure there can still be retried. */
  #held: Array<Buffer | string> | undefined;
  #waitingDrain = false;
  #onDrain: (() => void) | undefined;

  constructor(r: ExchangeRequest, att: UpstreamAttempt) {
    this.#r = r;
    this.#att = att;
  }

  start(): Promise<UpstreamAttempt | undefined> {
    const done = new Promise<UpstreamAttempt | undefined>((resolve) => (this.#resolve = resolve));
    const r = this.#r;
    const t = targetOf(this.#att.endpoint.url);
    this.#att.onAbort((reason) => this.#ctl?.abort(reason as Error));
    try {
      (r.dispatcher ?? getGlobalDispatcher()).dispatch(
        { origin: t.origin, path: t.base + r.path, method: 'POST', headers: r.headers, body: r.body, headersTimeout: r.upstreamTimeoutMs, bodyTimeout: r.upstreamTimeoutMs },
        this,
      );
    } catch (err) {
      this.onResponseError(undefined, err as Error);
    }
    return done;
  }

  onRequestStart(ctl: Controller): void {
    this.#ctl = ctl;
    const att = this.#att;
    if (att.aborted) ctl.abort(att.abortReason as Error);
  }

  onResponseStart(_c: Controller, statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.#settled || statusCode < 200) return;
    this.#started = true;
    this.#status = statusCode;
    const att = this.#att;
    try {
      const retry = att.responded(statusCode);
      if (retry !== null) return this.#settle(retry); // the lifecycle aborted this attempt already
      const r = this.#r;
      const contentType = String(headers['content-type'] ?? '');
      const sse = contentType.includes('text/event-stream');
      this.#sse = sse;
      if (sse) {
        this.#assembler = r.mode === 'assemble' ? new ResponseAssembler(r.lc.request!.api) : undefined;
        this.#shaper = new SseShaper({ stripUsage: r.mode === 'strip', assembler: this.#assembler });
      } else this.#sniffer = new UsageSniffer(contentType);
      const out: Record<string, string | string[]> = {};
      const drop = this.#assembler !== undefined ? DROP_ASSEMBLED : DROP_RESPONSE;
      const strip = r.mode === 'strip';
      for (const k in headers) {
        const v = headers[k];
        if (v !== undefined && !drop.has(k) && !(strip && k === 'content-length')) out[k] = v;
      }
      for (const k in r.extraHeaders) out[k] = r.extraHeaders[k];
      out['x-kvroute-endpoint'] = att.endpoint.id;
      out['x-session-token'] = sessionToken(att.endpoint.id);
      this.#outHeaders = out;
    } catch (err) {
      this.#fail(err);
    }
  }

  onResponseData(ctl: Controller, chunk: Buffer): void {
    if (this.#settled) return;
    try {
      const shaper = this.#shaper;
      if (shaper === undefined) {
        this.#sniffer!.push(chunk);
        this.#send(chunk);
        return;
      }
      const out = shaper.push(chunk);
      const assembler = this.#assembler;
      if (!shaper.firstToken && assembler === undefined) {
        if (out !== undefined && out.length > 0) (this.#held ??= []).push(out);
        return;
      }
      const att = this.#att;
      if (shaper.firstToken) att.firstToken();
      if (assembler !== undefined && shaper.error !== undefined) {
        // vLLM answers a failed non-streaming request with the error status and body.
        const next = att.responded(shaper.error.status);
        if (next !== null) return this.#settle(next);
        this.#complete();
        ctl.abort(new Error('the rest of the upstream answer is not needed'));
        return;
      }
      const held = this.#held;
      if (held !== undefined) {
        // Written one by one: writes of one tick leave in one syscall (the socket is corked).
        this.#held = undefined;
        for (const h of held) this.#send(h);
      }
      if (out !== undefined && out.length > 0) this.#send(out);
    } catch (err) {
      this.#fail(err);
    }
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    try {
      const shaper = this.#shaper;
      if (shaper !== undefined) {
        const rest = shaper.end();
        const held = this.#held;
        this.#held = undefined;
        if (held !== undefined) for (const h of held) this.#send(h);
        if (rest !== undefined) this.#send(rest);
      }
      this.#complete();
    } catch (err) {
      this.#fail(err);
    }
  }

  onResponseError(_c: Controller | undefined, err: Error): void {
    if (this.#settled) return;
    // Caused by the attempt's own abort: let the lifecycle finish what aborted it first.
    if (this.#att.aborted) queueMicrotask(() => this.#fail(err));
    else this.#fail(err);
  }

  #send(data: Buffer | string): void {
    const res = this.#r.res;
    const att = this.#att;
    if (!res.headersSent) {
      res.writeHead(this.#status, this.#outHeaders);
      att.commit();
    }
    att.chunk();
    if (!res.write(data) && !this.#waitingDrain) {
      this.#waitingDrain = true;
      this.#ctl?.pause();
      res.once('drain', (this.#onDrain ??= () => {
        this.#waitingDrain = false;
        if (!this.#settled) this.#ctl?.resume();
      }));
    }
  }

  /** The upstream answer is complete: usage, the last bytes, the request's end. */
  #complete(): void {
    const r = this.#r;
    const res = r.res;
    const att = this.#att;
    const shaper = this.#shaper;
    const usage = shaper !== undefined ? shaper.usage : this.#sniffer!.usage();
    att.usage(usage);
    const assembler = this.#assembler;
    if (assembler !== undefined) {
      const e = shaper!.error;
      const status = e !== undefined ? e.status : this.#status;
      const body = e !== undefined ? JSON.stringify(e.body) : assembler.bodyJson();
      const out = this.#outHeaders!;
      out['content-type'] = 'application/json';
      out['content-length'] = String(Buffer.byteLength(body));
      res.writeHead(status, out);
      att.commit();
      res.end(body);
      att.end({ status, usage });
      return this.#settle(undefined);
    }
    if (!res.headersSent) {
      res.writeHead(this.#status, this.#outHeaders);
      att.commit();
    }
    const trailer = this.#sse && r.sseTrailer !== undefined ? r.sseTrailer({ endpoint: att.endpoint, usage, ttftMs: att.ttftMs }) : undefined;
    if (trailer) res.end(trailer);
    else res.end();
    att.end({ status: this.#status, usage });
    this.#settle(undefined);
  }

  #fail(err: unknown): void {
    if (this.#settled) return;
    const r = this.#r;
    const att = this.#att;
    if (!this.#started && isConnectError(err)) r.onEndpointDown?.(att.endpoint);
    const next = att.fail(att.classify(err));
    if (next === undefined) {
      const lc = r.lc;
      const res = r.res;
      if (lc.outcome !== 'aborted' && res.headersSent) {
        if (this.#sse && !res.writableEnded && !res.destroyed && lc.error !== undefined) res.end(`data: ${JSON.stringify(lc.error.toOpenAI())}\n\n`);
        else res.destroy();
      }
    }
    this.#settle(next);
    // The lifecycle aborted this attempt unless it ended well; an error of ours must stop the exchange too.
    this.#ctl?.abort(err instanceof Error ? err : new Error(String(err)));
  }

  #settle(next: UpstreamAttempt | undefined): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#waitingDrain && this.#onDrain !== undefined) this.#r.res.off('drain', this.#onDrain);
    this.#resolve(next);
  }
}
