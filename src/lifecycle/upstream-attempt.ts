/**
 * One upstream attempt of a request (src/lifecycle/request-lifecycle.ts owns the request; this
 * file only the per-attempt part: its signal, its time-to-first-byte timer, what it reports).
 */
import { LazyAbort } from './lazy-abort.js';
import type { TimerHandle } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { KvrError } from '../core/errors.js';
import type { LifecycleShared, RequestLifecycle } from './request-lifecycle.js';
import type { UpstreamFailure, Usage } from './types.js';
import { classifyUpstreamError } from './upstream-errors.js';

/** Abort reason of an attempt replaced by a retry or ended by a failure (made once: errors capture stacks). */
const ATTEMPT_CLOSED = new KvrError('KVR_ERR_UPSTREAM', 'upstream attempt closed by the request lifecycle');

/**
 * One upstream attempt of a request (the first send, or a retry on another replica). Its
 * `signal` aborts when the client goes away, when the time-to-first-byte or request timer
 * fires, or when the attempt is replaced or the request ends.
 */
export class UpstreamAttempt {
  readonly endpoint: Endpoint;
  /** 0 for the first attempt, then 1, 2, ... */
  readonly index: number;
  readonly firstTokenObservable: boolean;
  readonly #lc: RequestLifecycle;
  readonly #s: LifecycleShared;
  /** Made on the first read of {@link signal} (a transport with {@link onAbort} needs none). */
  readonly #abortState = new LazyAbort();
  readonly #dispatchedAt: number;
  #ttfbTimer: TimerHandle | undefined;
  #closed = false;
  #firstToken = false;
  #ttftMs: number | undefined;
  #timedOut: 'ttfb-timeout' | 'timeout' | undefined;
  #outlierReported = false;

  constructor(lc: RequestLifecycle, s: LifecycleShared, endpoint: Endpoint, index: number, firstTokenObservable: boolean) {
    this.#lc = lc;
    this.#s = s;
    this.endpoint = endpoint;
    this.index = index;
    this.firstTokenObservable = firstTokenObservable;
    this.#dispatchedAt = s.o.clock.now();
    // The lifecycle aborts its current attempt itself on client abort (no listener per attempt).
    if (lc.aborted) this.#abort(lc.abortReason);
    const t = s.o.ttfbTimeoutMs ?? 0;
    if (t > 0 && firstTokenObservable) this.#ttfbTimer = s.o.clock.setTimeout(() => this.timeOut('ttfb-timeout', `no first token within ${t} ms`), t);
  }

  /** Aborts on client abort, timeouts, retry or end: pass it to the upstream call (or use {@link onAbort}). */
  get signal(): AbortSignal {
    return this.#abortState.signal;
  }
  /** True once the attempt aborted (same as `signal.aborted`, without making a signal). */
  get aborted(): boolean {
    return this.#abortState.aborted;
  }
  /** Why it aborted (same as `signal.reason`). */
  get abortReason(): unknown {
    return this.#abortState.reason;
  }

  /**
   * The transport's abort hook, the cheap alternative to a listener on {@link signal}: `fn` is
   * called once, synchronously, when the attempt aborts (at once if it already has). One hook per
   * attempt; a second call replaces the first.
   */
  onAbort(fn: (reason: unknown) => void): void {
    this.#abortState.onAbort(fn);
  }
  get closed(): boolean {
    return this.#closed;
  }
  /** Which of the lifecycle's timers aborted this attempt, if any. */
  get timedOut(): 'ttfb-timeout' | 'timeout' | undefined {
    return this.#timedOut;
  }
  /** Arrival -> this attempt's first token (ms). */
  get ttftMs(): number | undefined {
    return this.#ttftMs;
  }
  /** Time from dispatch of this attempt (ms). */
  get elapsedMs(): number {
    return this.#s.o.clock.now() - this.#dispatchedAt;
  }

  /** Classifies an error the transport got from this attempt (timers and commitment taken into account). */
  classify(err: unknown): UpstreamFailure {
    return classifyUpstreamError(err, { timedOut: this.#timedOut, committed: this.#lc.committed });
  }

  /** The first token came back (prefill done). Idempotent. */
  firstToken(): void {
    if (this.#closed || this.#firstToken) return;
    this.#firstToken = true;
    this.#ttftMs = this.#s.o.clock.now() - this.#lc.arrivedAt;
    this.#ttfbTimer?.cancel();
    this.#lc._firstToken(this.endpoint);
  }

  /** Bytes of the response are going to the client: no retry from now on. */
  chunk(): void {
    if (!this.#closed) this.#lc._commit();
  }

  /** Same as {@link chunk}, without a chunk (e.g. response headers sent to the client). */
  commit(): void {
    this.chunk();
  }

  /** Usage reported by the engine. */
  usage(u: Usage | undefined): void {
    this.#lc.setUsage(u);
  }

  /**
   * The endpoint answered with `status`, before anything reached the client. Returns the next
   * attempt when the answer should be discarded and the request retried elsewhere; null to go
   * on with this answer (then call {@link end} once it is done).
   */
  responded(status: number): UpstreamAttempt | null {
    if (this.#closed || status < 500) return null;
    this.#s.o.metrics.upstreamErrors.inc({ endpoint: this.endpoint.id, kind: 'status' });
    this.#reportFailure();
    return this.#lc._retry(this, { kind: 'status', status, message: `endpoint answered ${status}` }) ?? null;
  }

  /**
   * The attempt failed. Returns the next attempt when the request is retried elsewhere;
   * undefined when the request ended with the failure (send `lifecycle.error`). A failure after
   * the client went away is not an upstream error and returns undefined.
   */
  fail(f: UpstreamFailure): UpstreamAttempt | undefined {
    if (this.#closed || this.#lc.ended) return undefined;
    this.#s.o.metrics.upstreamErrors.inc({ endpoint: this.endpoint.id, kind: f.kind });
    this.#reportFailure();
    const next = this.#lc._retry(this, f);
    if (next !== undefined) return next;
    this.#lc._failed(this, f);
    return undefined;
  }

  /** The endpoint's answer (status `status`) completed. Ends the request. */
  end(o: { status: number; usage?: Usage }): void {
    if (this.#closed || this.#lc.ended) return;
    if (o.usage !== undefined) this.#lc.setUsage(o.usage);
    if (o.status >= 500) this.#reportFailure();
    else if (!this.#outlierReported) this.#s.o.outliers?.success(this.endpoint.id);
    this.#lc._ended(o.status);
  }

  /** @internal Fired by the lifecycle's timers. */
  timeOut(kind: 'ttfb-timeout' | 'timeout', message: string): void {
    if (this.#closed) return;
    this.#timedOut = kind;
    this.#abort(new KvrError('KVR_ERR_UPSTREAM_TIMEOUT', message));
  }

  /** @internal This leg finished its part (multi-leg requests). */
  _legDone(): void {
    if (this.#closed) return;
    if (!this.#outlierReported) this.#s.o.outliers?.success(this.endpoint.id);
    this._close(false);
  }

  /** @internal Aborts the attempt's signal with `reason` (the client went away). */
  _cancel(reason: unknown): void {
    this.#abort(reason);
  }

  /** @internal Closes the attempt; `cancel` aborts its signal (retry, failure, abort: the exchange may still be open). */
  _close(cancel: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ttfbTimer?.cancel();
    if (cancel) this.#abort(ATTEMPT_CLOSED);
  }

  #abort(reason: unknown): void {
    this.#abortState.abort(reason);
  }

  #reportFailure(): void {
    if (this.#outlierReported) return;
    this.#outlierReported = true;
    this.#s.o.outliers?.failure(this.endpoint.id);
  }
}
