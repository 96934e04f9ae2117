/**
 * The undici dispatch handler the gateway's P/D interceptor puts between the gateway's request
 * and the decode endpoint (gateway-orchestrator.ts):
 *
 * - it starts the gateway's request at once with its own controller, so a client abort during
 *   the prefill leg is seen (`signal`) before any decode request exists;
 * - once the decode request runs, abort/pause/resume go to the real controller;
 * - with the prefill's cached tokens set, a 200 response's usage is rewritten: SSE event by
 *   event, JSON as a whole (content-length dropped: the length changes);
 * - a decode request that fails before its response starts calls `onDecodeFailed` (the
 *   prefill's pinned blocks are released).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { rewriteJsonBody, SseUsageRewriter } from './usage-rewriter.js';

type Controller = Dispatcher.DispatchController;

/** See the file comment. */
export class PdResponseHandler implements Dispatcher.DispatchHandler {
  readonly #inner: Dispatcher.DispatchHandler;
  readonly #ac = new AbortController();
  #real: Controller | undefined;
  #paused = false;
  #cached: number | undefined;
  #sse: SseUsageRewriter | undefined;
  #json: Buffer[] | undefined;
  #started = false;
  #ended = false;
  /** Called when the decode request fails before a response started. */
  onDecodeFailed: (() => void) | undefined;
  readonly #ctl: Controller;

  constructor(inner: Dispatcher.DispatchHandler) {
    this.#inner = inner;
    const self = this;
    this.#ctl = {
      get aborted() {
        return self.#ac.signal.aborted;
      },
      get paused() {
        return self.#paused;
      },
      get reason() {
        return (self.#ac.signal.reason as Error | undefined) ?? null;
      },
      abort(reason: Error) {
        if (!self.#ac.signal.aborted) self.#ac.abort(reason);
        self.#real?.abort(reason);
      },
      pause() {
        self.#paused = true;
        self.#real?.pause();
      },
      resume() {
        self.#paused = false;
        self.#real?.resume();
      },
    };
    inner.onRequestStart?.(this.#ctl, {});
  }

  /** Aborted when the gateway's request is (the client went away). */
  get signal(): AbortSignal {
    return this.#ac.signal;
  }

  /** The prefill's cached tokens to write into the response usage (undefined: no rewrite). */
  setCachedTokens(n: number | undefined): void {
    this.#cached = n;
  }

  /** Ends the gateway's request with `err` without a decode request. */
  fail(err: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#inner.onResponseError?.(this.#ctl, err);
  }

  onRequestStart(controller: Controller): void {
    this.#real = controller;
    if (this.#ac.signal.aborted) controller.abort(this.#ac.signal.reason as Error);
    else if (this.#paused) controller.pause();
  }

  onResponseStart(_c: Controller, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.#started = true;
    let h = headers;
    if (this.#cached !== undefined && statusCode === 200) {
      const ct = String(headers['content-type'] ?? '');
      if (ct.includes('text/event-stream')) this.#sse = new SseUsageRewriter(this.#cached);
      else if (ct.includes('json')) {
        this.#json = [];
        h = { ...headers };
        delete h['content-length'];
      }
    }
    this.#inner.onResponseStart?.(this.#ctl, statusCode, h, statusMessage);
  }

  onResponseData(_c: Controller, chunk: Buffer): void {
    if (this.#json !== undefined) return void this.#json.push(chunk);
    if (this.#sse !== undefined) {
      const s = this.#sse.push(chunk);
      if (s !== '') this.#inner.onResponseData?.(this.#ctl, Buffer.from(s));
      return;
    }
    this.#inner.onResponseData?.(this.#ctl, chunk);
  }

  onResponseEnd(_c: Controller, trailers: IncomingHttpHeaders): void {
    if (this.#json !== undefined) this.#inner.onResponseData?.(this.#ctl, rewriteJsonBody(Buffer.concat(this.#json), this.#cached!));
    if (this.#sse !== undefined) {
      const rest = this.#sse.end();
      if (rest !== '') this.#inner.onResponseData?.(this.#ctl, Buffer.from(rest));
    }
    this.#ended = true;
    this.#inner.onResponseEnd?.(this.#ctl, trailers);
  }

  onResponseError(_c: Controller, err: Error): void {
    if (!this.#started) this.onDecodeFailed?.();
    if (this.#ended) return;
    this.#ended = true;
    this.#inner.onResponseError?.(this.#ctl, err);
  }
}
