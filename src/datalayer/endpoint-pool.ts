/**
 * The set of endpoints the router may send to (a static list for now; DNS and Kubernetes
 * discovery plug in here later). Health and metrics are written by the {@link EndpointScraper}
 * and by the gateway when an endpoint refuses connections.
 */
import { EMPTY_METRICS, type Endpoint, type EndpointRole, type EngineKind } from '../core/endpoint.js';
import { KvrError } from '../core/errors.js';

export interface EndpointSpec {
  /** Base URL (`http://host:port`) or `host:port`. */
  url: string;
  id?: string;
  role?: EndpointRole;
  engine?: EngineKind;
  labels?: Record<string, string>;
  /** KV-event addresses (`events=` / `replay=` options). */
  kvEvents?: { endpoint: string; replayEndpoint?: string };
}

const ROLES: readonly EndpointRole[] = ['both', 'prefill', 'decode'];
const ENGINES: readonly EngineKind[] = ['vllm', 'sglang', 'llamacpp', 'openai'];

/** Normalises `host:port` or a URL to `{url, address}`; throws KVR_ERR_USAGE with a hint. */
export function normaliseEndpointUrl(raw: string): { url: string; address: string } {
  const s = raw.trim();
  const withScheme = /^[a-z]+:\/\//i.test(s) ? s : `http://${s}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new KvrError('KVR_ERR_USAGE', `endpoint "${raw}" is not a URL or host:port; write e.g. http://10.0.0.5:8000 or 10.0.0.5:8000`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new KvrError('KVR_ERR_USAGE', `endpoint "${raw}": only http:// and https:// are supported`);
  }
  if (!u.port && !/^[a-z]+:\/\//i.test(s)) {
    throw new KvrError('KVR_ERR_USAGE', `endpoint "${raw}" has no port; write host:port, e.g. 10.0.0.5:8000`);
  }
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return { url: `${u.protocol}//${u.hostname}:${port}`, address: `${u.hostname}:${port}` };
}

/** Checks a ZeroMQ address given as `events=` / `replay=`; throws KVR_ERR_USAGE with a hint. */
function zmqAddress(item: string, key: string, v: string): string {
  if (/^tcp:\/\/[^\s/]+:\d{1,5}$/.test(v) || /^ipc:\/\/\S+$/.test(v)) return v;
  throw new KvrError('KVR_ERR_USAGE', `endpoint "${item}": ${key}= must be a ZeroMQ address like tcp://10.0.0.5:${key === 'events' ? 5557 : 5558}`);
}

/**
 * Parses a comma-separated endpoint list as given on the command line or in
 * `KVROUTE_ENDPOINTS`: `url[;role=decode][;engine=sglang][;id=name][;events=tcp://host:5557][;replay=tcp://host:5558]`,
 * e.g. `127.0.0.1:8100,127.0.0.1:8101;role=prefill`. `events=` is the engine's KV-event PUB
 * address, `replay=` its replay socket (either may be given alone: `replay=` alone suits
 * ingestion in bind mode, where the pods connect to the router).
 */
export function parseEndpointList(list: string): EndpointSpec[] {
  const out: EndpointSpec[] = [];
  for (const item of list.split(',').map((x) => x.trim()).filter(Boolean)) {
    const [url, ...opts] = item.split(';');
    const spec: EndpointSpec = { url: url.trim() };
    for (const o of opts) {
      const eq = o.indexOf('=');
      const k = (eq < 0 ? o : o.slice(0, eq)).trim();
      const v = eq < 0 ? '' : o.slice(eq + 1).trim();
      if (k === 'role') {
        if (!ROLES.includes(v as EndpointRole)) throw new KvrError('KVR_ERR_USAGE', `endpoint "${item}": role must be one of ${ROLES.join(', ')}`);
        spec.role = v as EndpointRole;
      } else if (k === 'engine') {
        if (!ENGINES.includes(v as EngineKind)) throw new KvrError('KVR_ERR_USAGE', `endpoint "${item}": engine must be one of ${ENGINES.join(', ')}`);
        spec.engine = v as EngineKind;
      } else if (k === 'id' && v) spec.id = v;
      else if (k === 'events') spec.kvEvents = { ...spec.kvEvents, endpoint: zmqAddress(item, k, v) };
      else if (k === 'replay') spec.kvEvents = { endpoint: spec.kvEvents?.endpoint ?? '', replayEndpoint: zmqAddress(item, k, v) };
      else throw new KvrError('KVR_ERR_USAGE', `endpoint "${item}": unknown option "${o}"; allowed: role=, engine=, id=, events=, replay=`);
    }
    out.push(spec);
  }
  return out;
}

/** Default panic threshold (Envoy's `healthy_panic_threshold` default). */
export const DEFAULT_PANIC_THRESHOLD_PERCENT = 50;

export class EndpointPool {
  readonly #endpoints: Endpoint[] = [];
  readonly #byId = new Map<string, Endpoint>();
  /**
   * Panic routing, like Envoy's healthy panic threshold: when fewer than this percentage of the
   * endpoints serving a model are healthy, endpoints that are only *silent* (they answered before
   * and still accept connections, but their probes time out: `health.silent`) are candidates
   * again. On an overloaded host or network the probes are what fails first; routing only to the
   * few endpoints still answering them (or to none: a 503 for every request) loses requests the
   * silent ones would have served, and a request sent to one that is truly hung is bounded by the
   * time-to-first-byte timeout and retried elsewhere. Endpoints refusing connections, not probed
   * yet or misconfigured are never candidates. 0 turns it off.
   */
  panicThresholdPercent = DEFAULT_PANIC_THRESHOLD_PERCENT;
  /** Called when a candidate list is built in panic mode (metrics), and on entering / leaving it (logs). */
  onPanic: ((event: 'routed' | 'entered' | 'left', healthy: number, serving: number, model: string) => void) | undefined;
  readonly #panicModels = new Set<string>();

  #defaultEngine: EngineKind | undefined;

  constructor(specs: readonly EndpointSpec[], defaults: { engine?: EngineKind; allowEmpty?: boolean } = {}) {
    this.#defaultEngine = defaults.engine;
    if (specs.length === 0 && defaults.allowEmpty !== true) {
      throw new KvrError('KVR_ERR_USAGE', 'no endpoints given; pass --endpoints host:port,host:port (or set KVROUTE_ENDPOINTS)');
    }
    for (const spec of specs) {
      const { url, address } = normaliseEndpointUrl(spec.url);
      const id = spec.id ?? address;
      if (this.#byId.has(id)) throw new KvrError('KVR_ERR_USAGE', `endpoint "${id}" is listed twice`);
      const ep: Endpoint = {
        id,
        address,
        url,
        role: spec.role ?? 'both',
        engine: spec.engine ?? defaults.engine ?? 'vllm',
        index: this.#endpoints.length,
        labels: { ...(spec.labels ?? {}) },
        metrics: EMPTY_METRICS,
        models: [],
        healthy: false,
        health: { live: false, loadFresh: false, reason: 'not probed yet', engineSource: (spec.engine ?? defaults.engine) !== undefined ? 'override' : 'default', restarts: 0 },
        ...(spec.kvEvents ? { kvEvents: { ...spec.kvEvents } } : {}),
      };
      this.#endpoints.push(ep);
      this.#byId.set(id, ep);
    }
  }

  /** Every endpoint, healthy or not, in index order. */
  all(): readonly Endpoint[] {
    return this.#endpoints;
  }

  get(id: string): Endpoint | undefined {
    return this.#byId.get(id);
  }

  /**
   * Healthy endpoints that serve `model` (an endpoint whose models are unknown serves any); in
   * panic mode (see {@link EndpointPool.panicThresholdPercent}) the silent ones too.
   */
  candidatesFor(model: string): Endpoint[] {
    const out: Endpoint[] = [];
    let serving = 0;
    let silent = 0;
    for (const ep of this.#endpoints) {
      if (ep.models.length !== 0 && !ep.models.includes(model)) continue;
      serving++;
      if (ep.healthy) out.push(ep);
      else if (ep.health?.silent === true) silent++;
    }
    const panic = this.panicThresholdPercent > 0 && silent > 0 && out.length * 100 < this.panicThresholdPercent * serving;
    if (panic !== this.#panicModels.has(model)) {
      if (panic) this.#panicModels.add(model);
      else this.#panicModels.delete(model);
      this.onPanic?.(panic ? 'entered' : 'left', out.length, serving, model);
    }
    if (!panic) return out;
    const healthy = out.length;
    out.length = 0;
    for (const ep of this.#endpoints) {
      if ((ep.healthy || ep.health?.silent === true) && (ep.models.length === 0 || ep.models.includes(model))) out.push(ep);
    }
    this.onPanic?.('routed', healthy, serving, model);
    return out;
  }

  /** True when some endpoint serves `model`, or some endpoint's model list is unknown. */
  servesModel(model: string): boolean {
    return this.#endpoints.some((ep) => ep.models.length === 0 || ep.models.includes(model));
  }

  /** Union of the models the endpoints reported. */
  models(): string[] {
    return [...new Set(this.#endpoints.flatMap((ep) => ep.models))].sort();
  }

  /**
   * Why endpoints are not healthy, one clause per unhealthy endpoint (`id: reason`), for the
   * 503 message, /readyz and logs; '' when every endpoint is healthy.
   */
  unhealthyReasons(): string {
    return this.#endpoints
      .filter((ep) => !ep.healthy)
      .map((ep) => `${ep.id}: ${ep.health?.reason || 'unhealthy'}`)
      .join('; ');
  }

  /** Number of healthy endpoints. */
  healthyCount(): number {
    return this.#endpoints.reduce((n, ep) => n + (ep.healthy ? 1 : 0), 0);
  }

  // ---- Membership (dynamic discovery): endpoints join and leave at run time. ----

  /**
   * Adds an endpoint; it takes the lowest free dense index (an index freed by a removal is
   * reused, so typed-array bookkeeping stays small). Throws KVR_ERR_USAGE when its id exists.
   */
  add(spec: EndpointSpec): Endpoint {
    const { url, address } = normaliseEndpointUrl(spec.url);
    const id = spec.id ?? address;
    if (this.#byId.has(id)) throw new KvrError('KVR_ERR_USAGE', `endpoint "${id}" is listed twice`);
    const used = new Set(this.#endpoints.map((e) => e.index));
    let index = 0;
    while (used.has(index)) index++;
    const ep: Endpoint = {
      id,
      address,
      url,
      role: spec.role ?? 'both',
      engine: spec.engine ?? this.#defaultEngine ?? 'vllm',
      index,
      labels: { ...(spec.labels ?? {}) },
      metrics: EMPTY_METRICS,
      models: [],
      healthy: false,
      ...(spec.kvEvents ? { kvEvents: { ...spec.kvEvents } } : {}),
    };
    const at = this.#endpoints.findIndex((e) => e.index > index);
    if (at < 0) this.#endpoints.push(ep);
    else this.#endpoints.splice(at, 0, ep);
    this.#byId.set(id, ep);
    return ep;
  }

  /** Removes the endpoint with `id`; returns it, or undefined when it is not in the pool. */
  remove(id: string): Endpoint | undefined {
    const ep = this.#byId.get(id);
    if (ep === undefined) return undefined;
    this.#byId.delete(id);
    this.#endpoints.splice(this.#endpoints.indexOf(ep), 1);
    return ep;
  }

  /**
   * Makes the pool hold exactly `specs` (a discovery snapshot): endpoints whose id is gone are
   * removed, new ids added, and an endpoint whose address, role, engine, labels or KV-event
   * addresses changed is replaced (removed, then added as a new object). Specs repeating an id
   * are rejected whole (KVR_ERR_USAGE) before anything changes.
   */
  replace(specs: readonly EndpointSpec[]): { added: Endpoint[]; removed: Endpoint[] } {
    const want = new Map<string, EndpointSpec>();
    for (const spec of specs) {
      const id = spec.id ?? normaliseEndpointUrl(spec.url).address;
      if (want.has(id)) throw new KvrError('KVR_ERR_USAGE', `endpoint "${id}" is listed twice`);
      want.set(id, spec);
    }
    const removed: Endpoint[] = [];
    for (const ep of [...this.#endpoints]) {
      const spec = want.get(ep.id);
      if (spec !== undefined && this.#sameAs(ep, spec)) {
        want.delete(ep.id);
        continue;
      }
      this.remove(ep.id);
      removed.push(ep);
    }
    const added = [...want.values()].map((spec) => this.add(spec));
    return { added, removed };
  }

  #sameAs(ep: Endpoint, spec: EndpointSpec): boolean {
    const labels = spec.labels ?? {};
    const keys = Object.keys(labels);
    return normaliseEndpointUrl(spec.url).url === ep.url
      && (spec.role ?? 'both') === ep.role
      && (spec.engine ?? this.#defaultEngine ?? 'vllm') === ep.engine
      && keys.length === Object.keys(ep.labels).length && keys.every((k) => ep.labels[k] === labels[k])
      && (spec.kvEvents?.endpoint ?? '') === (ep.kvEvents?.endpoint ?? '')
      && (spec.kvEvents?.replayEndpoint ?? '') === (ep.kvEvents?.replayEndpoint ?? '');
  }
}
