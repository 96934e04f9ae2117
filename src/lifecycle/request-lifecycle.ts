/**
 * One request's life, the same for every front end (OpenAI proxy, Envoy ext_proc, P/D legs, the
 * virtual bench). The transport only translates; everything the router accounts happens here,
 * exactly once whatever happens:
 *
 *   begin ─ run('body'|'parse'|...) ─ decide ─ dispatch ─ firstToken ─ chunk* ─ end
 *                                                 │                          └ fail / abort
 *                                                 └ responded(5xx) / fail ─> next attempt (retry)
 *
 * Usage (a proxying front end; ext_proc does the same without sending, the virtual bench calls
 * `firstToken` / `end` from engine callbacks):
 *
 *   const lc = lifecycles.begin({ id, arrivedAt, log });
 *   res.on('close', () => { if (!res.writableFinished) lc.abort('client closed'); });
 *   try {
 *     const raw = await lc.run('body', readBody(req));              // abort ends it here too
 *     const decision = await lc.decide(ireq, candidates);            // scheduler.schedule + prediction
 *     let att = lc.dispatch();                                       // load/gauge already on att.endpoint
 *     for (;;) {
 *       try { up = await send(att.endpoint, { signal: att.signal }); }
 *       catch (err) { const next = att.fail(att.classify(err)); if (next) { att = next; continue; } throw lc.error; }
 *       const next = att.responded(up.status);                       // 5xx before any byte: maybe retry
 *       if (next) { discard(up); att = next; continue; }
 *       break;
 *     }
 *     for await (const c of up.body) { if (isToken(c)) att.firstToken(); att.chunk(); write(c); }
 *     att.end({ status: up.status, usage });
 *   } catch (err) { if (!lc.ended || lc.outcome !== 'aborted') sendError(lc.reject(err)); }
 *
 * A decide-only front end (Envoy ext_proc) does not proxy: it calls `decide` and `dispatch`,
 * reports Envoy's response phases (`responded(status)` / `firstToken` / `chunk` / `end`), and
 * builds its lifecycles with `maxRetries: 0` when Envoy does the retrying. P/D runs a prefill leg
 * then a decode leg on one lifecycle with `nextLeg(decodeEndpoint)`.
 *
 * What the lifecycle does, and when:
 * - `decide`: filters out ejected replicas (outlier detector), runs `scheduler.schedule` raced
 *   against the abort signal (a late pick after an abort is completed at once), computes the cache
 *   prediction, scheduling/decision/score metrics, and raises the in-flight gauge.
 * - `dispatch`: router overhead, arms the time-to-first-byte timer (per attempt) and the upstream
 *   timer (per request); `att.signal` aborts on either timer or on client abort.
 * - `firstToken`: `scheduler.onFirstToken` (prefill done), once per attempt.
 * - `responded` / `fail`: outlier bookkeeping, retry on the next ranked replica when nothing
 *   reached the client, the failure is retriable, retries are left and the budget allows; the
 *   scheduler is told (`reassign`) so load follows.
 * - end (ok / upstream status / failure / abort / reject): `scheduler.onComplete`, gauge, usage
 *   and token counters, prediction error, TTFT and e2e histograms, requests counter (499 for a
 *   client abort, plus `kvroute_client_aborts_total{stage}`), the one log line, `onDecision`.
 */
import { LazyAbort } from './lazy-abort.js';
import { SignalSourced } from './signal-sourced.js';
import type { Logger } from 'pino';
import type { TimerHandle } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { KvrError, toKvrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import type { InferenceRequest } from '../core/request.js';
import { predictCache, promptTokensOf, scorerTypesOf } from '../observability/cache-prediction.js';
import { recordEnd, recordDecision } from './lifecycle-recorder.js';
import type { OutlierDetector } from './outlier-detector.js';
import {
  CLIENT_CLOSED_STATUS, type Decision, type DispatchOptions, type LifecycleOutcome, type LifecycleStage,
  type LifecycleSummary, type UpstreamFailure, type Usage,
} from './types.js';
import { failureError } from './upstream-errors.js';
import { UpstreamAttempt } from './upstream-attempt.js';
import { retriableFailure, retryTarget } from './retry-target.js';
import { DEFAULT_RETRY_STATUSES, type LifecycleInit, type LifecycleOptions, type LifecycleShared } from './lifecycle-options.js';

export { UpstreamAttempt } from './upstream-attempt.js';

export { DEFAULT_RETRY_STATUSES, type LifecycleInit, type LifecycleOptions, type LifecycleShared } from './lifecycle-options.js';

/** The factory of lifecycles of one router; holds the shared services. */
export class RequestLifecycles {
  readonly #shared: LifecycleShared;

  constructor(o: LifecycleOptions) {
    if (o.maxRetries !== undefined && !(Number.isInteger(o.maxRetries) && o.maxRetries >= 0)) throw new KvrError('KVR_ERR_CONFIG', `maxRetries must be an integer >= 0, got ${o.maxRetries}`);
    for (const [k, v] of [['upstreamTimeoutMs', o.upstreamTimeoutMs], ['ttfbTimeoutMs', o.ttfbTimeoutMs]] as const) {
      if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new KvrError('KVR_ERR_CONFIG', `${k} must be a number of ms >= 0 (0 = no timeout), got ${v}`);
    }
    this.#shared = { o, scorerTypes: scorerTypesOf(o.scheduler), retryStatuses: new Set(o.retryStatuses ?? DEFAULT_RETRY_STATUSES), scoreChildren: new Map(), active: 0 };
  }

  /** Lifecycles begun and not ended. */
  get active(): number {
    return this.#shared.active;
  }

  get outliers(): OutlierDetector | undefined {
    return this.#shared.o.outliers;
  }

  /** Starts one request's lifecycle. */
  begin(init: LifecycleInit): RequestLifecycle {
    return new RequestLifecycle(this.#shared, init);
  }
}

const noop = (): void => undefined;

/** One request; see the file comment. */
export class RequestLifecycle {
  readonly id: string;
  readonly arrivedAt: number;
  #log: Logger | (() => Logger) | undefined;
  readonly #s: LifecycleShared;
  /** Made on the first read of {@link signal}: most requests end without anyone reading it. */
  readonly #abortState = new LazyAbort();
  #stage: LifecycleStage = 'received';
  #outcome: LifecycleOutcome | undefined;
  #error: KvrError | undefined;
  #request: InferenceRequest | undefined;
  #decision: Decision | undefined;
  /** The endpoint the scheduler has the request assigned to (load + gauge held there). */
  #assigned: Endpoint | undefined;
  #attempt: UpstreamAttempt | undefined;
  readonly #tried = new Set<string>();
  #retries = 0;
  #committed = false;
  #usage: Usage | undefined;
  #overheadMs: number | undefined;
  #upstreamTimer: TimerHandle | undefined;
  /** Rejecters of the work raced against an abort (see #race). */
  #waiters: Array<(err: unknown) => void> | undefined;
  #summary: LifecycleSummary | undefined;
  /** {@link done}, made when first read (few callers wait for it). */
  #done: Promise<LifecycleSummary> | undefined;
  #resolveDone: ((s: LifecycleSummary) => void) | undefined;

  constructor(shared: LifecycleShared, init: LifecycleInit) {
    this.#s = shared;
    this.id = init.id;
    this.arrivedAt = init.arrivedAt ?? shared.o.clock.now();
    this.#log = init.log;
    shared.active++;
    if (init.signal !== undefined) {
      if (init.signal.aborted) queueMicrotask(() => this.abort('aborted before it began'));
      else init.signal.addEventListener('abort', () => this.abort('outside signal aborted'), { once: true });
    }
  }

  /** Resolves once with the summary when the lifecycle ends. */
  get done(): Promise<LifecycleSummary> {
    if (this.#done === undefined) {
      const sum = this.#summary;
      this.#done = sum !== undefined ? Promise.resolve(sum) : new Promise((r) => (this.#resolveDone = r));
    }
    return this.#done;
  }

  /** The request's logger (made on first use; see {@link LifecycleInit.log}). */
  get log(): Logger {
    const l = this.#log;
    if (l !== undefined && typeof l !== 'function') return l;
    const made = l !== undefined ? l() : (this.#s.o.logger ?? silentLogger).child({ reqId: this.id });
    this.#log = made;
    return made;
  }

  /** `log.isLevelEnabled(level)`, without making a request logger that was given as a function (or defaulted). */
  logLevelEnabled(level: string): boolean {
    const l = this.#log;
    if (l !== undefined && typeof l !== 'function') return l.isLevelEnabled(level);
    const base = this.#s.o.logger;
    return base !== undefined ? base.isLevelEnabled(level) : this.log.isLevelEnabled(level);
  }

  /** Aborted when the client went away; reaches scheduling (`request.signal`), lookups and waits. */
  get signal(): AbortSignal {
    return this.#abortState.signal;
  }
  /** True once the client went away (same as `signal.aborted`, without making a signal). */
  get aborted(): boolean {
    return this.#abortState.aborted;
  }
  /** The abort's KVR_ERR_CLIENT_CLOSED error (same as `signal.reason`). */
  get abortReason(): unknown {
    return this.#abortState.reason;
  }
  get stage(): LifecycleStage {
    return this.#stage;
  }
  get ended(): boolean {
    return this.#outcome !== undefined;
  }
  /** How it ended (undefined while alive). */
  get outcome(): LifecycleOutcome | undefined {
    return this.#outcome;
  }
  /** The router error the client should get (rejected / upstream-failed). */
  get error(): KvrError | undefined {
    return this.#error;
  }
  get request(): InferenceRequest | undefined {
    return this.#request;
  }
  get decision(): Decision | undefined {
    return this.#decision;
  }
  /** The current (or last) upstream attempt. */
  get attempt(): UpstreamAttempt | undefined {
    return this.#attempt;
  }
  /** True once bytes reached the client: nothing is retried after that. */
  get committed(): boolean {
    return this.#committed;
  }
  get summary(): LifecycleSummary | undefined {
    return this.#summary;
  }

  /**
   * Runs pre-upstream work (`body`, `parse`, `tokenize`, ...) as stage `stage`: rejects with
   * KVR_ERR_CLIENT_CLOSED as soon as the client goes away (the work's own result is dropped).
   */
  run<T>(stage: LifecycleStage, work: Promise<T> | ((signal: AbortSignal) => Promise<T>)): Promise<T> {
    this.#checkAlive();
    this.#stage = stage;
    const p = typeof work === 'function' ? work(this.signal) : work;
    return this.#race(p);
  }

  /**
   * Schedules the request on `candidates` (ejected replicas left out unless all are): the
   * scheduler opens the assignment (load on the endpoint) and the in-flight gauge rises.
   */
  async decide(request: InferenceRequest, candidates: readonly Endpoint[]): Promise<Decision> {
    this.#checkAlive();
    if (this.#decision !== undefined) throw new KvrError('KVR_ERR_INTERNAL', `request ${this.id} was already decided`);
    const { scheduler, outliers } = this.#s.o;
    this.#request = request;
    // `request.signal` reads this lifecycle's signal, made only if a scorer or lookup reads it.
    if (request instanceof SignalSourced) request.signalSource = this;
    else Object.defineProperty(request, 'signal', { get: () => this.signal, enumerable: true, configurable: true });
    this.#stage = 'schedule';
    const pending = scheduler.schedule(request, outliers !== undefined ? outliers.filter(candidates) : candidates);
    let result;
    try {
      result = await this.#race(pending);
    } catch (err) {
      // A pick that lands after the abort is completed at once: nothing stays assigned.
      if (this.#abortState.aborted) pending.then((r) => scheduler.onComplete(request, r.endpoint, { ok: false, status: CLIENT_CLOSED_STATUS }), noop);
      throw err;
    }
    const prediction = predictCache(result, this.#s.scorerTypes, promptTokensOf(request), request);
    this.#decision = { result, prediction };
    this.#assign(result.endpoint);
    this.#stage = 'decided';
    recordDecision(this.#s, this.#decision);
    return this.#decision;
  }

  /** Opens an upstream attempt on the assigned endpoint (or `o.endpoint`); see {@link UpstreamAttempt}. */
  dispatch(o: DispatchOptions = {}): UpstreamAttempt {
    this.#checkAlive();
    if (this.#decision === undefined || this.#request === undefined) throw new KvrError('KVR_ERR_INTERNAL', `request ${this.id} dispatched before it was decided`);
    if (this.#attempt !== undefined && !this.#attempt.closed) throw new KvrError('KVR_ERR_INTERNAL', `request ${this.id} has an attempt open already`);
    const { clock, metrics, upstreamTimeoutMs, retryBudget } = this.#s.o;
    if (o.endpoint !== undefined && o.endpoint.id !== this.#assigned?.id) this.#move(o.endpoint);
    const ep = this.#assigned!;
    if (this.#overheadMs === undefined) {
      this.#overheadMs = Math.max(0, clock.now() - this.arrivedAt);
      metrics.fast.histogram(metrics.routerOverhead).observe(this.#overheadMs / 1000);
      retryBudget?.requestStarted();
      const t = upstreamTimeoutMs ?? 600_000;
      if (t > 0) this.#upstreamTimer = clock.setTimeout(() => this.#attempt?.timeOut('timeout', `no complete answer within ${t} ms`), t);
    }
    this.#tried.add(ep.id);
    this.#stage = 'dispatched';
    this.#attempt = new UpstreamAttempt(this, this.#s, ep, this.#tried.size - 1, o.firstTokenObservable ?? true);
    return this.#attempt;
  }

  /**
   * Multi-leg requests (P/D disaggregation: a prefill leg, then a decode leg): the current
   * attempt did its part (counted as a success for outlier detection) and the request continues
   * on `endpoint` (the scheduler is told through `reassign`, so load moves there). Not a retry:
   * no budget, no retry count. Returns the new leg's attempt.
   */
  nextLeg(endpoint: Endpoint, o: Omit<DispatchOptions, 'endpoint'> = {}): UpstreamAttempt {
    this.#checkAlive();
    const cur = this.#attempt;
    if (cur === undefined) throw new KvrError('KVR_ERR_INTERNAL', `request ${this.id} has no leg to continue from; dispatch first`);
    cur._legDone();
    return this.dispatch({ ...o, endpoint });
  }

  /** Usage reported by the engine (may come before `end`). */
  setUsage(u: Usage | undefined): void {
    if (u !== undefined) this.#usage = u;
  }

  /** The client went away: ends the request as 499 (no-op once ended). */
  abort(reason = 'client closed the connection'): void {
    if (this.ended) return;
    const err = new KvrError('KVR_ERR_CLIENT_CLOSED', `${reason} (stage ${this.#stage})`);
    this.#abortState.abort(err);
    const waiting = this.#waiters;
    this.#waiters = undefined;
    if (waiting !== undefined) for (const reject of waiting) reject(err);
    this.#attempt?._cancel(err);
    this.#finish('aborted', CLIENT_CLOSED_STATUS, err);
  }

  /**
   * Ends the request with a router error (bad request, unknown model, no endpoint, internal)
   * and returns the error to send. Once ended, returns the error it ended with.
   */
  reject(err: unknown): KvrError {
    if (this.ended) return this.#error ?? toKvrError(err);
    const e = toKvrError(err);
    this.#finish(this.#attempt !== undefined ? 'upstream-failed' : 'rejected', e.status, e);
    return e;
  }

  // ---- used by UpstreamAttempt -------------------------------------------------------------

  /** @internal */ _commit(): void {
    this.#committed = true;
  }

  /** @internal The next attempt after `from` failed, or undefined when no retry is allowed. */
  _retry(from: UpstreamAttempt, f: UpstreamFailure): UpstreamAttempt | undefined {
    const { maxRetries, retryBudget, outliers, metrics } = this.#s.o;
    if (this.#committed || this.ended || this.#retries >= (maxRetries ?? 2)) return undefined;
    if (!retriableFailure(f, this.#s.retryStatuses)) return undefined;
    const next = retryTarget(this.#decision!.result.ranked, this.#tried, (id) => outliers?.isEjected(id) ?? false);
    if (next === undefined) return undefined;
    if (retryBudget !== undefined && !retryBudget.tryAcquire()) {
      metrics.retryBudgetExhausted.inc();
      return undefined;
    }
    this.#retries++;
    metrics.retries.inc({ endpoint: from.endpoint.id });
    this.log.warn({ endpoint: from.endpoint.id, next: next.id, kind: f.kind, status: f.status, err: f.message }, 'upstream attempt failed before any byte reached the client; retrying on the next candidate');
    from._close(true);
    this.#move(next);
    return this.dispatch({ firstTokenObservable: from.firstTokenObservable });
  }

  /** @internal Ends after a final upstream failure. */
  _failed(from: UpstreamAttempt, f: UpstreamFailure): void {
    const e = failureError(f, from.endpoint.id);
    if (!this.#committed) this.log.warn({ endpoint: from.endpoint.id, kind: f.kind, status: f.status, err: f.message }, 'upstream request failed');
    else this.log.warn({ endpoint: from.endpoint.id, kind: f.kind, err: f.message }, 'endpoint failed mid-response');
    this.#finish('upstream-failed', e.status, e);
  }

  /** @internal Ends after the endpoint's answer completed. */
  _ended(status: number): void {
    this.#finish(status >= 200 && status < 300 ? 'ok' : 'upstream-status', status, undefined);
  }

  /** @internal */ _firstToken(ep: Endpoint): void {
    this.#stage = 'streaming';
    this.#s.o.scheduler.onFirstToken(this.#request!, ep);
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * Resolves/rejects like `p`, or rejects with the abort reason once the lifecycle aborts. The
   * lifecycle keeps the rejecters itself (no listener added to and removed from the signal).
   */
  #race<T>(p: Promise<T>): Promise<T> {
    if (this.#abortState.aborted) {
      p.catch(noop);
      return Promise.reject(this.#abortState.reason);
    }
    return new Promise<T>((resolve, reject) => {
      const waiters = (this.#waiters ??= []);
      waiters.push(reject);
      const unwait = (): void => {
        const w = this.#waiters;
        if (w === undefined) return;
        const i = w.indexOf(reject);
        if (i >= 0) w.splice(i, 1);
      };
      p.then(
        (v) => {
          unwait();
          resolve(v);
        },
        (e) => {
          unwait();
          reject(e);
        },
      );
    });
  }

  #checkAlive(): void {
    if (this.#abortState.aborted) throw this.#abortState.reason;
    if (this.ended) throw new KvrError('KVR_ERR_INTERNAL', `request ${this.id} already ended (${this.#outcome})`);
  }

  #assign(ep: Endpoint): void {
    this.#assigned = ep;
    const m = this.#s.o.metrics;
    m.fast.gauge(m.inflight, ep.id).inc();
    this.#s.o.onAssigned?.(ep);
  }

  #move(to: Endpoint): void {
    const from = this.#assigned!;
    const m = this.#s.o.metrics;
    m.fast.gauge(m.inflight, from.id).dec();
    this.#s.o.scheduler.reassign(this.#request!, from, to);
    this.#assign(to);
  }

  #finish(outcome: LifecycleOutcome, status: number, error: KvrError | undefined): void {
    if (this.#outcome !== undefined) return;
    this.#outcome = outcome;
    this.#error = error;
    const stage = this.#stage;
    this.#stage = 'ended';
    this.#s.active--;
    this.#upstreamTimer?.cancel();
    const att = this.#attempt;
    att?._close(outcome !== 'ok' && outcome !== 'upstream-status');
    const { scheduler, metrics, retryBudget } = this.#s.o;
    const ep = this.#assigned;
    const usage = this.#usage;
    if (ep !== undefined) {
      this.#assigned = undefined;
      metrics.fast.gauge(metrics.inflight, ep.id).dec();
      scheduler.onComplete(this.#request!, ep, {
        ok: outcome === 'ok',
        status,
        promptTokens: usage?.promptTokens,
        cachedTokens: usage?.cachedTokens,
        completionTokens: usage?.completionTokens,
      });
    }
    if (this.#overheadMs !== undefined) retryBudget?.requestEnded();
    const summary: LifecycleSummary = {
      requestId: this.id,
      model: this.#request?.model,
      outcome,
      status,
      error,
      stage,
      endpoint: att?.endpoint ?? ep ?? this.#decision?.result.endpoint,
      usage,
      retries: this.#retries,
      overheadMs: this.#overheadMs,
      ttftMs: att?.ttftMs,
      durationMs: this.#s.o.clock.now() - this.arrivedAt,
    };
    this.#summary = summary;
    try {
      recordEnd(this.#s, summary, this.#decision, this.arrivedAt, this);
    } finally {
      this.#resolveDone?.(summary);
    }
  }
}
