/**
 * The endpoint picker's decisions, made through the shared request lifecycle
 * (src/lifecycle), so the scheduler's hooks, load, metrics, decision explanations and the
 * dashboard behave exactly as for the OpenAI gateway.
 *
 * Algorithm:
 * - Inference routes (`POST /v1/completions`, `/v1/chat/completions`): begin a lifecycle (aborted
 *   with the ext_proc stream), parse the body, check the model (404), restrict the candidates
 *   to the subset hint (503 when none qualifies), `decide`, `dispatch`. The destination list is
 *   the ranked endpoints, primary first, up to `maxDestinations` (Envoy's fallbacks).
 * - P/D (a config with a prefill decider): the prefill pick goes to the decode pod's sidecar in
 *   `x-prefiller-host-port` (llm-d's header mode); the prefill assignment closes with the decode.
 * - Load shedding (optional): every candidate saturated -> 429 `rejected-saturated`.
 * - Anything else (bodyless requests, other paths): a uniformly random healthy endpoint inside
 *   the hint, no lifecycle (not an inference request; llm-d does the same for bodyless ones).
 * - Response: the endpoint that served (`-served` metadata) differing from the primary means
 *   Envoy retried: the primary's failure is reported and the lifecycle follows to the fallback.
 *   Envoy does the retrying, so the lifecycle never retries here: the response is committed as
 *   soon as it starts. SSE: the first body chunk is the first token. Usage comes from the body.
 *   The stream closing early aborts the lifecycle (499, counted apart).
 */
import type { Logger } from 'pino';
import { KvrError } from '../../core/errors.js';
import type { Endpoint } from '../../core/endpoint.js';
import type { ApiKind } from '../../core/request.js';
import { randInt, type Rng } from '../../core/rng.js';
import type { EndpointPool } from '../../datalayer/endpoint-pool.js';
import type { RequestLifecycle, RequestLifecycles, UpstreamAttempt } from '../../lifecycle/index.js';
import { EXPLAIN_HEADER, buildExplanation, encodeExplanation, explainRequested } from '../../observability/decision-explanation.js';
import { buildInferenceRequest } from '../openai/parse-request.js';
import { UsageSniffer } from '../openai/usage-sniffer.js';
import type { EndpointPickerBackend, Pick, PickedExchange, PickRequest, ResponseStart } from './picker-backend.js';
import { sessionTokenFor } from '../../scheduling/scorers/session-affinity-scorer.js';
import type { PdGateway } from '../../pd/gateway-orchestrator.js';

const ROUTES: Record<string, ApiKind> = { '/v1/completions': 'completions', '/v1/chat/completions': 'chat' };

export interface LifecycleBackendOptions {
  pool: EndpointPool;
  lifecycles: RequestLifecycles;
  rng: Rng;
  logger: Logger;
  /** Endpoints in the destination list, primary included (default 3: primary + 2 fallbacks). */
  maxDestinations?: number;
  /** Called when Envoy had to fall back from an endpoint (it failed to connect or answered 5xx). */
  onEndpointFailed?: (ep: Endpoint) => void;
  /**
   * Load shedding (llm-d's saturation detector): when EVERY candidate has at least `queueDepth`
   * requests waiting or KV usage at least `kvUsage`, the request is refused with 429
   * (`rejected-saturated`). Undefined = never shed.
   */
  saturation?: { queueDepth?: number; kvUsage?: number };
  /**
   * P/D in llm-d's header mode: when the scheduler picks a prefill endpoint, the request to the
   * decode pod carries `x-prefiller-host-port` and its sidecar runs the prefill leg.
   */
  pd?: PdGateway;
}

/** True when every candidate is past a saturation threshold. */
function saturated(eps: readonly Endpoint[], s: LifecycleBackendOptions['saturation']): boolean {
  if (s === undefined || (s.queueDepth === undefined && s.kvUsage === undefined)) return false;
  return eps.every((e) => (s.queueDepth !== undefined && e.metrics.waiting >= s.queueDepth) || (s.kvUsage !== undefined && e.metrics.kvUsage >= s.kvUsage));
}

function inSubset(eps: readonly Endpoint[], subset: ReadonlySet<string> | undefined): Endpoint[] {
  return subset === undefined ? [...eps] : eps.filter((e) => subset.has(e.address));
}

function noEndpoint(subset: ReadonlySet<string> | undefined, what: string): KvrError {
  return new KvrError(
    'KVR_ERR_NO_ENDPOINT',
    subset !== undefined
      ? `no healthy endpoint ${what} is inside the gateway's subset hint (${[...subset].join(',') || 'empty'}); check the InferencePool / subset`
      : `no healthy endpoint ${what} right now; check the model servers and their /metrics`,
  );
}

/** The {@link EndpointPickerBackend} over the shared request lifecycle. */
export class LifecycleBackend implements EndpointPickerBackend {
  readonly #o: LifecycleBackendOptions;

  constructor(o: LifecycleBackendOptions) {
    this.#o = o;
  }

  async pick(req: PickRequest): Promise<Pick> {
    const api = ROUTES[req.path];
    if (api === undefined || req.method !== 'POST') return this.#passThrough(req);
    const { pool, lifecycles, logger } = this.#o;
    const lc = lifecycles.begin({ id: req.requestId, signal: req.signal, log: logger.child({ reqId: req.requestId }) });
    try {
      if (req.body === undefined) throw new KvrError('KVR_ERR_BAD_REQUEST', `${req.path} needs a JSON body; send the request with its body`);
      const body = req.body;
      const ireq = await lc.run('parse', async () =>
        buildInferenceRequest(api, body, req.headers, { id: req.requestId, clientIp: req.headers['x-forwarded-for']?.split(',')[0]?.trim() ?? 'unknown', arrivedAt: lc.arrivedAt, defaultMaxTokens: api === 'chat' ? 64 : 16 }),
      );
      if (!pool.servesModel(ireq.model)) {
        throw new KvrError('KVR_ERR_UNKNOWN_MODEL', `model "${ireq.model}" is not served here; available: ${pool.models().join(', ') || '(none reported)'}`, { param: 'model' });
      }
      const candidates = inSubset(pool.candidatesFor(ireq.model), req.subset);
      if (candidates.length === 0) throw noEndpoint(req.subset, `serving "${ireq.model}"`);
      if (saturated(candidates, this.#o.saturation)) {
        throw new KvrError('KVR_ERR_OVERLOADED', `every endpoint serving "${ireq.model}" is saturated (queue or KV cache past the shedding thresholds); retry later`);
      }
      const decision = await lc.decide(ireq, candidates);
      const att = lc.dispatch({ firstTokenObservable: ireq.stream });
      const ranked = decision.result.ranked.filter((e) => e.id !== att.endpoint.id);
      const destinations = [att.endpoint, ...ranked].slice(0, Math.max(1, this.#o.maxDestinations ?? 3));
      const plan = this.#o.pd !== undefined ? await lc.run('schedule', this.#o.pd.beforeDispatch(ireq, decision.result, req.path, lc.signal)) : undefined;
      const explainN = explainRequested(req.headers[EXPLAIN_HEADER]);
      const explain = explainN > 0 ? encodeExplanation(buildExplanation(decision.result, decision.prediction, explainN)) : undefined;
      return {
        destinations: destinations.map((e) => e.address),
        ...(plan !== undefined && Object.keys(plan.headers).length > 0 ? { headers: plan.headers } : {}),
        exchange: new LifecycleExchange(this.#o, lc, att, destinations, explain),
      };
    } catch (err) {
      if (lc.outcome === 'aborted') throw err;
      throw lc.reject(err);
    }
  }

  /** Bodyless / non-inference requests: any healthy endpoint inside the hint, no lifecycle. */
  #passThrough(req: PickRequest): Pick {
    const healthy = inSubset(this.#o.pool.all().filter((e) => e.healthy), req.subset);
    if (healthy.length === 0) throw noEndpoint(req.subset, 'at all');
    const ep = healthy[randInt(this.#o.rng, healthy.length)];
    return {
      destinations: [ep.address],
      exchange: { responseStarted: () => ({ 'x-kvroute-endpoint': ep.id }), responseChunk() {}, end() {}, abort() {} },
    };
  }
}

/** One decided request's response, reported to its lifecycle. */
class LifecycleExchange implements PickedExchange {
  readonly #o: LifecycleBackendOptions;
  readonly #lc: RequestLifecycle;
  #att: UpstreamAttempt;
  readonly #destinations: readonly Endpoint[];
  readonly #explain: string | undefined;
  #status = 0;
  #sse = false;
  #sniffer: UsageSniffer | undefined;

  constructor(o: LifecycleBackendOptions, lc: RequestLifecycle, att: UpstreamAttempt, destinations: readonly Endpoint[], explain: string | undefined) {
    this.#o = o;
    this.#lc = lc;
    this.#att = att;
    this.#destinations = destinations;
    this.#explain = explain;
  }

  responseStarted(start: ResponseStart): Record<string, string> {
    this.#status = start.status;
    this.#sse = start.contentType.includes('text/event-stream');
    this.#sniffer = new UsageSniffer(start.contentType);
    this.#followServed(start.servedAddress);
    this.#att.commit(); // Envoy already chose this answer: no retry from here
    const ep = this.#att.endpoint;
    const out: Record<string, string> = { 'x-kvroute-endpoint': ep.id, 'x-session-token': sessionTokenFor(ep.id) };
    if (this.#explain !== undefined) out[EXPLAIN_HEADER] = this.#explain;
    return out;
  }

  /** Envoy fell back (the served endpoint is not the primary): report each skipped endpoint and follow. */
  #followServed(served: string | undefined): void {
    if (served === undefined || served === this.#att.endpoint.address) return;
    const at = this.#destinations.findIndex((e) => e.address === served);
    if (at <= 0) {
      this.#lc.log.warn({ served, primary: this.#att.endpoint.address }, 'the gateway reports a served endpoint outside the destination list; accounting stays on the primary');
      return;
    }
    for (let i = 0; i < at && this.#att.endpoint.address !== served; i++) {
      const failed = this.#att.endpoint;
      this.#o.onEndpointFailed?.(failed);
      const next = this.#att.fail({ kind: 'connect', message: `the gateway fell back from ${failed.address} to ${served}` });
      if (next === undefined) break; // the lifecycle allows no more retries: it ended as failed
      this.#att = next;
    }
    if (this.#att.endpoint.address !== served && !this.#lc.ended) {
      this.#lc.log.warn({ served, accounted: this.#att.endpoint.address }, 'the lifecycle follows a different fallback than the gateway took');
    }
  }

  responseChunk(chunk: Buffer): void {
    if (this.#sse) this.#att.firstToken();
    this.#att.chunk();
    this.#sniffer?.push(chunk);
  }

  end(): void {
    const usage = this.#status >= 200 && this.#status < 300 ? this.#sniffer?.usage() : undefined;
    if (this.#status === 0) {
      this.#att.fail({ kind: 'request', message: 'the gateway ended the response without a status' });
      return;
    }
    this.#att.end({ status: this.#status, ...(usage !== undefined ? { usage } : {}) });
  }

  abort(reason: string): void {
    this.#lc.abort(reason);
  }
}
