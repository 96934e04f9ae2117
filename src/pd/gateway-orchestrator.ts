/**
 * P/D in the standalone gateway, without a sidecar (the AIBrix way) or with one (llm-d's way).
 *
 *   mode 'orchestrate': the gateway runs both legs itself:
 *       prefill leg -> prefill endpoint (prefill-leg.ts), then the decode request carries the
 *       returned kv_transfer_params and its usage gets the prefill's cached_tokens;
 *   mode 'header': the gateway sets `x-prefiller-host-port` and a decode-pod sidecar runs the
 *       legs (`kvroute sidecar`).
 * In both modes a client copy of `x-prefiller-host-port` is never forwarded (SSRF).
 *
 * The core is {@link PdGateway.beforeDispatch}: the one call a gateway needs between the
 * scheduling decision and sending the decode request. Until the gateway calls it directly, it is
 * wired in without touching the gateway: {@link PdGateway.scheduler} wraps the scheduler to
 * remember each request's decision by request id, and {@link PdGateway.interceptor} is an
 * undici interceptor on the gateway's upstream dispatcher that runs `beforeDispatch` for the
 * request id it sees in `x-request-id` and rewrites the decode response's usage.
 *
 * Lifecycle of the prefill assignment (scheduler.onComplete exactly once): 'orchestrate' closes it
 * when the prefill leg ends; 'header' closes it with the decode (the sidecar's leg is invisible).
 * Client gone: during the prefill leg it is cancelled; after it, the prefill endpoint is told to
 * free its pinned blocks. A failed prefill leg falls back to local prefill, counted
 * (`kvroute_pd_prefill_fallbacks_total`) and logged.
 */
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Clock } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { silentLogger } from '../core/logger.js';
import type { InferenceRequest } from '../core/request.js';
import type { RouterMetrics } from '../metrics/router-metrics.js';
import type { RequestOutcome, Scheduler, SchedulingResult } from '../scheduling/types.js';
import { runPrefillLeg } from './prefill-leg.js';
import { buildDecodeBody, PREFILLER_HEADER, prefillerHeader } from './prefill-request.js';
import { releasePrefill } from './release-prefill.js';
import { PdResponseHandler } from './pd-response-handler.js';

/** Options of a {@link PdGateway}. */
export interface PdGatewayOptions {
  scheduler: Scheduler;
  mode: 'orchestrate' | 'header';
  metrics: RouterMetrics;
  clock: Clock;
  logger?: Logger;
  /** Dispatcher of the prefill legs and releases (default undici's global one). */
  dispatcher?: Dispatcher;
  prefillMaxRetries?: number;
  prefillRetryBackoffMs?: number;
  timeoutMs?: number;
}

/** What the decode request should be, from {@link PdGateway.beforeDispatch}. */
export interface DecodePlan {
  /** The decode body (undefined: send the client's body unchanged). */
  body?: Record<string, unknown>;
  /** Headers to set on the decode request (`x-prefiller-host-port` in header mode). */
  headers: Record<string, string>;
  /** The prefill's cached tokens, to write into the decode response's usage. */
  cachedTokens?: number;
  /** Call when the decode request is not sent after all: frees the prefill's pinned blocks. */
  release(): Promise<void>;
  /** True when the client went away during the prefill leg: send nothing. */
  aborted: boolean;
}

interface Entry {
  request: InferenceRequest;
  result: SchedulingResult;
  prefillOpen: boolean;
}

/** The upstream request body as an object, when it is JSON text or bytes. */
function bodyObject(b: unknown): Record<string, unknown> | undefined {
  const text = typeof b === 'string' ? b : b instanceof Uint8Array ? Buffer.from(b).toString('utf8') : undefined;
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const NOTHING: DecodePlan = { headers: {}, release: async () => undefined, aborted: false };

/** See the file comment. */
export class PdGateway {
  readonly scheduler: Scheduler;
  readonly #o: PdGatewayOptions;
  readonly #log: Logger;
  readonly #entries = new Map<string, Entry>();

  constructor(o: PdGatewayOptions) {
    this.#o = o;
    this.#log = o.logger ?? silentLogger;
    this.scheduler = this.#wrap(o.scheduler);
  }

  /** Requests whose decision is remembered now (in flight). */
  get inflight(): number {
    return this.#entries.size;
  }

  /**
   * Runs what must happen before the decode request is sent (see the file comment). Never
   * throws; a failed prefill leg yields a plan without kv_transfer_params (local prefill).
   */
  async beforeDispatch(request: InferenceRequest, result: SchedulingResult, path: string, signal: AbortSignal): Promise<DecodePlan> {
    const pick = result.prefill;
    if (pick === undefined) return NOTHING;
    if (this.#o.mode === 'header') return { ...NOTHING, headers: { [PREFILLER_HEADER]: prefillerHeader(result)! } };
    const { metrics: m, scheduler } = this.#o;
    const leg = await runPrefillLeg({
      url: pick.endpoint.url, path, body: request.body, signal, clock: this.#o.clock, dispatcher: this.#o.dispatcher,
      maxRetries: this.#o.prefillMaxRetries, backoffMs: this.#o.prefillRetryBackoffMs, timeoutMs: this.#o.timeoutMs,
    });
    m.pdPrefillDuration.observe(leg.durationMs / 1000);
    const ok = leg.kind === 'ok';
    if (ok) scheduler.onFirstToken(request, pick.endpoint);
    this.#closePrefill(request, pick.endpoint, { ok, status: ok ? 200 : leg.kind === 'error' ? leg.status : 0, ...(ok ? { promptTokens: leg.promptTokens, cachedTokens: leg.cachedTokens } : {}) });
    const result2 = leg.kind === 'error' ? 'fallback' : leg.kind;
    m.pdPrefillRequests.inc({ endpoint: pick.endpoint.id, result: result2 });
    if (leg.kind === 'aborted') return { ...NOTHING, aborted: true };
    if (leg.kind !== 'ok') {
      const reason = leg.kind === 'error' ? 'status' : leg.reason;
      m.pdPrefillFallbacks.inc({ reason });
      this.#log.warn({ reqId: request.id, prefill: pick.endpoint.id, reason }, `prefill leg failed, prefilling on the decode endpoint: ${leg.kind === 'error' ? `status ${leg.status}` : leg.message}`);
      return NOTHING;
    }
    const params = leg.params;
    const release = async (): Promise<void> => {
      const r = await releasePrefill(params, this.#o.dispatcher);
      m.pdPrefillReleases.inc({ result: r });
      if (r !== 'ok') this.#log.warn({ reqId: request.id, result: r }, 'decode never sent; the prefill endpoint did not confirm freeing its pinned KV blocks');
    };
    if (signal.aborted) {
      await release();
      return { ...NOTHING, aborted: true };
    }
    return { body: buildDecodeBody(request.body, params), headers: {}, cachedTokens: leg.cachedTokens, release, aborted: false };
  }

  /**
   * An undici interceptor for the gateway's upstream dispatcher (`agent.compose(pd.interceptor())`):
   * strips client copies of `x-prefiller-host-port`, runs {@link beforeDispatch} for the request
   * in `x-request-id`, sends the decode request it plans and rewrites its usage.
   */
  interceptor(): Dispatcher.DispatcherComposeInterceptor {
    return (dispatch) => (opts, handler) => {
      const headers = { ...((opts.headers ?? {}) as Record<string, string>) };
      delete headers[PREFILLER_HEADER];
      const id = headers['x-request-id'];
      const e = id !== undefined ? this.#entries.get(id) : undefined;
      if (e === undefined || e.result.prefill === undefined || opts.method !== 'POST') return dispatch({ ...opts, headers }, handler);
      const h = new PdResponseHandler(handler as Dispatcher.DispatchHandler);
      void this.beforeDispatch(e.request, e.result, opts.path, h.signal).then(
        (plan) => {
          if (plan.aborted || h.signal.aborted) {
            void plan.release();
            return h.fail(h.signal.reason ?? new Error('client closed'));
          }
          h.setCachedTokens(plan.cachedTokens);
          h.onDecodeFailed = () => void plan.release();
          // Keep what the gateway changed in the upstream body (e.g. streaming upstream); add the params.
          const sent = bodyObject(opts.body);
          const body = plan.body === undefined ? opts.body : JSON.stringify(sent !== undefined ? { ...sent, kv_transfer_params: plan.body.kv_transfer_params } : plan.body);
          dispatch({ ...opts, headers: { ...headers, ...plan.headers }, body }, h);
        },
        (err: unknown) => h.fail(err as Error),
      );
      return true;
    };
  }

  #closePrefill(request: InferenceRequest, ep: Endpoint, outcome: RequestOutcome): void {
    const e = this.#entries.get(request.id);
    if (e !== undefined) {
      if (!e.prefillOpen) return;
      e.prefillOpen = false;
    }
    this.#o.scheduler.onComplete(request, ep, outcome);
  }

  #wrap(base: Scheduler): Scheduler {
    const self = this;
    const schedule = async (request: InferenceRequest, endpoints: readonly Endpoint[]): Promise<SchedulingResult> => {
      const result = await base.schedule(request, endpoints);
      if (result.pd !== undefined) self.#o.metrics.pdDecisions.inc({ decision: result.prefill !== undefined ? 'disaggregated' : 'aggregated' });
      const prev = self.#entries.get(request.id);
      if (prev?.prefillOpen && prev.result.prefill !== undefined) base.onComplete(prev.request, prev.result.prefill.endpoint, { ok: false, status: 0 });
      self.#entries.set(request.id, { request, result, prefillOpen: result.prefill !== undefined });
      return result;
    };
    const onComplete = (request: InferenceRequest, endpoint: Endpoint, outcome: RequestOutcome): void => {
      const e = self.#entries.get(request.id);
      if (e !== undefined && e.result.prefill?.endpoint.id === endpoint.id && e.prefillOpen) return self.#closePrefill(request, endpoint, outcome);
      base.onComplete(request, endpoint, outcome);
      if (e !== undefined && e.result.prefill?.endpoint.id !== endpoint.id) {
        // The decode assignment ended: the request is over; a prefill still open ends with it.
        if (e.prefillOpen) self.#closePrefill(request, e.result.prefill!.endpoint, outcome);
        self.#entries.delete(request.id);
      }
    };
    return new Proxy(base, {
      get(target, key) {
        if (key === 'schedule') return schedule;
        if (key === 'onComplete') return onComplete;
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }
}
