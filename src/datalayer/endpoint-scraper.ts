/**
 * Keeps every endpoint's metrics snapshot and health fresh: scrapes `/metrics` every
 * `intervalMs` (default 50 ms, as llm-d) and `/v1/models` every `modelsIntervalMs`.
 *
 * Health: an endpoint becomes healthy on its first good scrape; it turns unhealthy at once when
 * a scrape cannot connect, and when no scrape has succeeded for `staleAfterMs` (default 2 s).
 * Scores read the snapshot as it is; it is replaced whole, never mutated.
 */
import { request, type Dispatcher } from 'undici';
import type { Endpoint } from '../core/endpoint.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { namesFor, toEndpointMetrics } from './metric-maps.js';
import { parsePromText } from './prom-text.js';
import type { EndpointPool } from './endpoint-pool.js';
import type { RouterMetrics } from '../metrics/router-metrics.js';

export interface ScraperOptions {
  clock: Clock;
  dispatcher?: Dispatcher;
  intervalMs?: number;
  staleAfterMs?: number;
  timeoutMs?: number;
  modelsIntervalMs?: number;
  metrics?: RouterMetrics;
}

interface State {
  lastOk: number;
  lastModels: number;
  timer: TimerHandle | undefined;
  inFlight: boolean;
  failures: number;
}

export class EndpointScraper {
  readonly #pool: EndpointPool;
  readonly #opts: Required<Omit<ScraperOptions, 'dispatcher' | 'metrics'>> & Pick<ScraperOptions, 'dispatcher' | 'metrics'>;
  readonly #state = new Map<Endpoint, State>();
  #stopped = true;
  readonly #untracked = new WeakSet<Endpoint>();

  constructor(pool: EndpointPool, opts: ScraperOptions) {
    this.#pool = pool;
    this.#opts = {
      intervalMs: 50,
      staleAfterMs: 2000,
      timeoutMs: 1000,
      modelsIntervalMs: 5000,
      ...opts,
    };
  }

  /** Starts scraping; resolves after the first round (every endpoint tried once). */
  async start(): Promise<void> {
    this.#stopped = false;
    const first = this.#pool.all().map(async (ep) => {
      this.#state.set(ep, { lastOk: 0, lastModels: 0, timer: undefined, inFlight: false, failures: 0 });
      await this.scrapeOnce(ep);
      this.#schedule(ep);
    });
    await Promise.all(first);
  }

  stop(): void {
    this.#stopped = true;
    for (const st of this.#state.values()) st.timer?.cancel();
  }

  /**
   * Starts scraping an endpoint that joined the pool (dynamic discovery): a first scrape now,
   * then every `intervalMs`. Resolves after the first scrape.
   */
  async track(ep: Endpoint): Promise<void> {
    if (this.#state.has(ep)) return;
    this.#state.set(ep, { lastOk: 0, lastModels: 0, timer: undefined, inFlight: false, failures: 0 });
    await this.scrapeOnce(ep);
    this.#schedule(ep);
  }

  /**
   * Stops scraping an endpoint that left the pool: its timer is cancelled, a scrape in flight
   * writes nothing when it lands, and its per-endpoint gauges are deleted.
   */
  untrack(ep: Endpoint): void {
    this.#untracked.add(ep);
    this.#state.get(ep)?.timer?.cancel();
    this.#state.delete(ep);
    this.#opts.metrics?.endpointHealthy.remove({ endpoint: ep.id });
    this.#opts.metrics?.endpointStaleness.remove({ endpoint: ep.id });
  }

  /** Endpoints being scraped (for tests and diagnostics). */
  tracked(): Endpoint[] {
    return [...this.#state.keys()];
  }

  /** Marks an endpoint down now (the gateway saw it refuse a connection). */
  markDown(ep: Endpoint): void {
    ep.healthy = false;
    this.#opts.metrics?.endpointHealthy.set({ endpoint: ep.id }, 0);
  }

  #schedule(ep: Endpoint): void {
    if (this.#stopped || this.#untracked.has(ep)) return;
    const st = this.#state.get(ep);
    if (st === undefined) return;
    st.timer = this.#opts.clock.setTimeout(() => {
      void this.scrapeOnce(ep).finally(() => this.#schedule(ep));
    }, this.#opts.intervalMs);
  }

  /** Scrapes one endpoint once (metrics, and models when due). Never throws. */
  async scrapeOnce(ep: Endpoint): Promise<void> {
    if (this.#untracked.has(ep)) return;
    const st = this.#state.get(ep) ?? { lastOk: 0, lastModels: 0, timer: undefined, inFlight: false, failures: 0 };
    this.#state.set(ep, st);
    if (st.inFlight) return;
    st.inFlight = true;
    const { clock, metrics } = this.#opts;
    try {
      const text = await this.#get(ep, '/metrics');
      const snap = toEndpointMetrics(ep.engine, parsePromText(text, namesFor(ep.engine)).samples, clock.now());
      if (!snap) throw new Error(`no ${ep.engine} load metrics on ${ep.url}/metrics (wrong --engine?)`);
      ep.metrics = snap;
      st.lastOk = clock.now();
      st.failures = 0;
      if (clock.now() - st.lastModels >= this.#opts.modelsIntervalMs || ep.models.length === 0) {
        await this.#refreshModels(ep).catch(() => undefined);
        st.lastModels = clock.now();
      }
      ep.healthy = true;
    } catch (err) {
      st.failures++;
      metrics?.scrapeErrors.inc({ endpoint: ep.id });
      const refused = isConnectError(err);
      if (refused || clock.now() - st.lastOk > this.#opts.staleAfterMs) ep.healthy = false;
    } finally {
      st.inFlight = false;
      if (this.#untracked.has(ep)) return;
      metrics?.endpointHealthy.set({ endpoint: ep.id }, ep.healthy ? 1 : 0);
      if (st.lastOk > 0) metrics?.endpointStaleness.set({ endpoint: ep.id }, (clock.now() - st.lastOk) / 1000);
    }
  }

  async #refreshModels(ep: Endpoint): Promise<void> {
    const body = JSON.parse(await this.#get(ep, '/v1/models')) as { data?: Array<{ id?: unknown }> };
    const ids = (body.data ?? []).map((m) => m.id).filter((x): x is string => typeof x === 'string');
    if (ids.length > 0) ep.models = ids;
  }

  async #get(ep: Endpoint, path: string): Promise<string> {
    const res = await request(ep.url + path, {
      method: 'GET',
      dispatcher: this.#opts.dispatcher,
      headersTimeout: this.#opts.timeoutMs,
      bodyTimeout: this.#opts.timeoutMs,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`${ep.url}${path} answered ${res.statusCode}`);
    return text;
  }
}

/** True for errors meaning nothing is listening / reachable at the address. */
export function isConnectError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND';
}
