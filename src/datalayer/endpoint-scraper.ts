/**
 * Keeps every endpoint's metrics snapshot and health fresh: scrapes `/metrics` every
 * `intervalMs` (default 50 ms, as llm-d) and `/v1/models` every `modelsIntervalMs`.
 *
 * Scraping that scales: the interval of an endpoint is adaptive. It is `intervalMs` (stretched by
 * `endpoints / 16` past 16 endpoints) while the endpoint's routing metrics change; each scrape
 * that finds them unchanged doubles it, up to `maxIntervalMs` (default min(10 x intervalMs,
 * staleAfterMs / 4), so a quiet endpoint never looks stale); a change, a failure or markDown
 * resets it. Pages are read up to `maxPageBytes` (default 8 MiB; more is a scrape error) and only
 * the metric families the engine map uses are parsed. Per endpoint, the event-loop time spent on
 * pages, their bytes and the current interval are exported.
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
  /** Longest adaptive interval (ms); default min(10 x intervalMs, staleAfterMs / 4), never below intervalMs. */
  maxIntervalMs?: number;
  /** Largest /metrics page read (bytes); default 8 MiB. */
  maxPageBytes?: number;
  metrics?: RouterMetrics;
}

interface State {
  lastOk: number;
  lastModels: number;
  timer: TimerHandle | undefined;
  inFlight: boolean;
  failures: number;
  /** Current adaptive interval (ms) and the kept samples' values last seen. */
  interval?: number;
  sig?: string;
}

export class EndpointScraper {
  readonly #pool: EndpointPool;
  readonly #opts: Required<Omit<ScraperOptions, 'dispatcher' | 'metrics' | 'maxIntervalMs'>> & Pick<ScraperOptions, 'dispatcher' | 'metrics'> & { maxIntervalMs: number };
  readonly #state = new Map<Endpoint, State>();
  #stopped = true;

  constructor(pool: EndpointPool, opts: ScraperOptions) {
    this.#pool = pool;
    this.#opts = {
      intervalMs: 50,
      staleAfterMs: 2000,
      timeoutMs: 1000,
      modelsIntervalMs: 5000,
      maxPageBytes: 8 * 1024 * 1024,
      ...(Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as ScraperOptions),
      maxIntervalMs: 0,
    };
    const base = this.#opts.intervalMs;
    this.#opts.maxIntervalMs = Math.max(base, opts.maxIntervalMs ?? Math.min(10 * base, this.#opts.staleAfterMs / 4));
    if (!(this.#opts.maxPageBytes > 0)) throw new RangeError(`maxPageBytes must be > 0 (got ${this.#opts.maxPageBytes})`);
  }

  /** The base interval: `intervalMs`, stretched past 16 endpoints. */
  #baseInterval(): number {
    return Math.min(this.#opts.maxIntervalMs, this.#opts.intervalMs * Math.max(1, this.#pool.all().length / 16));
  }

  /** Current scrape interval of `ep` (ms). */
  intervalOf(ep: Endpoint): number {
    return this.#state.get(ep)?.interval ?? this.#baseInterval();
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

  /** Marks an endpoint down now (the gateway saw it refuse a connection). */
  markDown(ep: Endpoint): void {
    ep.healthy = false;
    const st = this.#state.get(ep);
    if (st !== undefined) st.interval = this.#baseInterval();
    this.#opts.metrics?.endpointHealthy.set({ endpoint: ep.id }, 0);
  }

  #schedule(ep: Endpoint): void {
    if (this.#stopped) return;
    const st = this.#state.get(ep)!;
    st.timer = this.#opts.clock.setTimeout(() => {
      void this.scrapeOnce(ep).finally(() => this.#schedule(ep));
    }, st.interval ?? this.#baseInterval());
  }

  /** Scrapes one endpoint once (metrics, and models when due). Never throws. */
  async scrapeOnce(ep: Endpoint): Promise<void> {
    const st = this.#state.get(ep) ?? { lastOk: 0, lastModels: 0, timer: undefined, inFlight: false, failures: 0 };
    this.#state.set(ep, st);
    if (st.inFlight) return;
    st.inFlight = true;
    const { clock, metrics } = this.#opts;
    try {
      const text = await this.#get(ep, '/metrics', this.#opts.maxPageBytes);
      const t0 = clock.now();
      const samples = parsePromText(text, namesFor(ep.engine)).samples;
      const snap = toEndpointMetrics(ep.engine, samples, clock.now());
      metrics?.fast.counter(metrics.scrapeCost, ep.id).inc(Math.max(0, clock.now() - t0) / 1000);
      metrics?.fast.counter(metrics.scrapeBytes, ep.id).inc(text.length);
      if (!snap) throw new Error(`no ${ep.engine} load metrics on ${ep.url}/metrics (wrong --engine?)`);
      let sig = '';
      for (const x of samples) sig += `${x.value},`;
      const base = this.#baseInterval();
      st.interval = sig === st.sig ? Math.min(this.#opts.maxIntervalMs, Math.max(base, (st.interval ?? base) * 2)) : base;
      st.sig = sig;
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
      st.interval = this.#baseInterval();
      st.sig = undefined;
      metrics?.scrapeErrors.inc({ endpoint: ep.id });
      const refused = isConnectError(err);
      if (refused || clock.now() - st.lastOk > this.#opts.staleAfterMs) ep.healthy = false;
    } finally {
      st.inFlight = false;
      metrics?.endpointHealthy.set({ endpoint: ep.id }, ep.healthy ? 1 : 0);
      if (st.lastOk > 0) metrics?.endpointStaleness.set({ endpoint: ep.id }, (clock.now() - st.lastOk) / 1000);
      metrics?.scrapeInterval.set({ endpoint: ep.id }, (st.interval ?? this.#baseInterval()) / 1000);
    }
  }

  async #refreshModels(ep: Endpoint): Promise<void> {
    const body = JSON.parse(await this.#get(ep, '/v1/models')) as { data?: Array<{ id?: unknown }> };
    const ids = (body.data ?? []).map((m) => m.id).filter((x): x is string => typeof x === 'string');
    if (ids.length > 0) ep.models = ids;
  }

  async #get(ep: Endpoint, path: string, maxBytes = Infinity): Promise<string> {
    const res = await request(ep.url + path, {
      method: 'GET',
      dispatcher: this.#opts.dispatcher,
      headersTimeout: this.#opts.timeoutMs,
      bodyTimeout: this.#opts.timeoutMs,
    });
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      throw new Error(`${ep.url}${path} answered ${res.statusCode}`);
    }
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      res.body.destroy();
      throw new Error(`${ep.url}${path} is ${declared} bytes, over the ${maxBytes}-byte cap (raise maxPageBytes)`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res.body as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > maxBytes) {
        res.body.destroy();
        throw new Error(`${ep.url}${path} is over the ${maxBytes}-byte cap (raise maxPageBytes)`);
      }
      chunks.push(c);
    }
    return Buffer.concat(chunks, size).toString('utf8');
  }
}

/** True for errors meaning nothing is listening / reachable at the address. */
export function isConnectError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND';
}
