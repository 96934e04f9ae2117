/**
 * Keeps every endpoint's liveness, load data and engine identity current. Two loops per endpoint:
 *
 *   liveness  GET /health every `healthIntervalMs` (default 250 ms, timeout `healthTimeoutMs`
 *             750 ms; a server without /health is probed on /v1/models), skipped while /metrics
 *             answers (a fresh /metrics answer is liveness too)
 *   load      GET /metrics every `intervalMs` (default 50 ms, as llm-d; timeout `timeoutMs`
 *             1,000 ms; backs off after failures) and /v1/models every `modelsIntervalMs`
 *
 * Liveness and load freshness are different things: llama.cpp answers /metrics through its task
 * queue, so /metrics blocks for a whole prefill while /health answers at once.
 *
 *   healthy  = live AND not refusing connections AND no engine mismatch
 *   live     = /health or /metrics answered within `deadAfterMs` (default 2,000 ms)
 *   fresh    = /metrics answered within `staleAfterMs` (default 2,000 ms)
 *
 * A stale snapshot stays in place marked `stale: true`: load scorers then treat the endpoint's
 * load as unknown (neutral), it is not ejected. A refused connection ejects at once. A frozen
 * server (SIGSTOP: connections accepted, nothing answered) is ejected once neither probe has
 * answered for `deadAfterMs`: within deadAfterMs + healthTimeoutMs + healthIntervalMs (3 s).
 *
 * Engine: the `--engine` / `;engine=` override, else detected from the /metrics prefixes,
 * /v1/models `owned_by`, /props or /server_info (src/engines/detect.ts). An override that does
 * not match what the endpoint serves ejects it with the reason ("no vllm load metrics ...; it
 * serves llamacpp: metrics (wrong --engine?)"), shown in /readyz, 503 messages, logs and doctor.
 *
 * Restarts: the adapter's restart token (vLLM `process_start_time_seconds`, llama.cpp's
 * `Process-Start-Time-Unix` header) changing, prefix counters going back, or the endpoint coming
 * back after refusing connections calls `onRestart` (the router drops its cache predictions).
 *
 * Options left undefined take their defaults (an explicit `undefined` never overrides one).
 */
import type { Dispatcher } from 'undici';
import { cappedGet, isConnectError, type CappedPage } from './capped-get.js';
import type { Logger } from 'pino';
import { EMPTY_METRICS, type Endpoint } from '../core/endpoint.js';
import { endpointHealth } from './endpoint-health.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { silentLogger } from '../core/logger.js';
import { detectEngine, engineFromMetricsText } from '../engines/detect.js';
import { mapNames, obj } from '../engines/common.js';
import { adapterFor } from '../engines/registry.js';
import { parsePromText } from './prom-text.js';
import type { EndpointPool } from './endpoint-pool.js';
import type { RouterMetrics } from '../metrics/router-metrics.js';
import { scraperSettings, type ScraperSettings } from './scraper-settings.js';

export interface ScraperOptions {
  clock: Clock;
  dispatcher?: Dispatcher;
  /** /metrics scrape interval (default 50 ms). */
  intervalMs?: number;
  /** Load data older than this is stale (default 2,000 ms). */
  staleAfterMs?: number;
  /** /metrics request timeout (default 1,000 ms). */
  timeoutMs?: number;
  /** /v1/models refresh interval (default 5,000 ms). */
  modelsIntervalMs?: number;
  /** /health probe interval (default 250 ms). */
  healthIntervalMs?: number;
  /** /health probe timeout (default 750 ms). */
  healthTimeoutMs?: number;
  /** An endpoint answering neither /health nor /metrics for this long is ejected (default 2,000 ms). */
  deadAfterMs?: number;
  metrics?: RouterMetrics;
  logger?: Logger;
  /**
   * Longest adaptive /metrics interval (ms): each scrape finding the routing metrics unchanged
   * doubles the interval up to this; a change, a failure or traffic (`touch`) resets it, and past
   * 16 endpoints the base interval stretches by endpoints / 16 (up to this). Default
   * min(10 x intervalMs, staleAfterMs / 4), never below intervalMs (= intervalMs: no backing off).
   */
  maxIntervalMs?: number;
  /** Largest page read from an endpoint (bytes; default 8 MiB); more is a failed probe. */
  maxPageBytes?: number;
  /** Called when a restart of the endpoint is detected (its cache is empty now). */
  onRestart?: (ep: Endpoint, reason: string) => void;
  /** Receives each scrape's `process_start_time_seconds` (KV-event ingestion confirms restarts with it). */
  onProcessStart?: (ep: Endpoint, startSeconds: number) => void;
}

interface State {
  lastLive: number;
  lastMetricsOk: number;
  lastModels: number;
  metricsTimer: TimerHandle | undefined;
  healthTimer: TimerHandle | undefined;
  metricsInFlight: boolean;
  healthInFlight: boolean;
  metricsFailures: number;
  refused: boolean;
  /** The endpoint refused connections since it was last live: coming back is a restart. */
  wasRefused: boolean;
  healthPath: string;
  healthProblem: string;
  metricsProblem: string;
  engineProblem: string;
  override: boolean;
  detected: boolean;
  restartToken: string | undefined;
  lastQueries: number | undefined;
  info: Record<string, unknown> | undefined;
  restarts: number;
  lastReason: string;
  /** Adaptive /metrics interval (ms; undefined = the base) and the kept samples' values last seen. */
  interval?: number;
  sig?: string;
}

export class EndpointScraper {
  readonly #pool: EndpointPool;
  readonly #opts: ScraperOptions;
  readonly #s: ScraperSettings;
  readonly #log: Logger;
  readonly #state = new Map<Endpoint, State>();
  /** Endpoints that left the pool: a probe in flight when they left writes nothing when it lands. */
  readonly #untracked = new WeakSet<Endpoint>();
  #stopped = true;
  readonly #maxIntervalMs: number;
  readonly #maxPageBytes: number;

  constructor(pool: EndpointPool, opts: ScraperOptions) {
    this.#pool = pool;
    this.#opts = opts;
    this.#s = scraperSettings(opts);
    this.#log = opts.logger ?? silentLogger;
    const base = this.#s.intervalMs;
    this.#maxIntervalMs = Math.max(base, opts.maxIntervalMs ?? Math.min(10 * base, this.#s.staleAfterMs / 4));
    this.#maxPageBytes = opts.maxPageBytes ?? 8 * 1024 * 1024;
    if (!(this.#maxPageBytes > 0)) throw new RangeError(`maxPageBytes must be > 0 (got ${opts.maxPageBytes})`);
  }

  /**
   * Base /metrics interval: `intervalMs`, stretched by endpoints / 16 past 16 endpoints (capped
   * at the adaptive maximum), so scraping cost does not grow linearly with the fleet.
   */
  #baseInterval(): number {
    return Math.min(this.#maxIntervalMs, this.#s.intervalMs * Math.max(1, this.#pool.all().length / 16));
  }

  /**
   * The router just served a request on `ep`: its load moves, so a backed-off interval returns to
   * the base at once (a pending far-off scrape is brought forward). A no-op when not backed off.
   */
  touch(ep: Endpoint): void {
    const st = this.#state.get(ep);
    if (st === undefined || st.interval === undefined || this.#stopped) return;
    const base = this.#baseInterval();
    st.sig = undefined;
    if (st.interval <= base) return;
    st.interval = undefined;
    if (!st.metricsInFlight && st.metricsFailures === 0 && st.metricsTimer !== undefined) {
      st.metricsTimer.cancel();
      this.#scheduleMetrics(ep);
    }
  }

  /** Current (adaptive) /metrics interval of `ep` (ms). */
  intervalOf(ep: Endpoint): number {
    return this.#state.get(ep)?.interval ?? this.#baseInterval();
  }

  /** The effective settings (defaults applied). */
  get settings(): Readonly<ScraperSettings> {
    return this.#s;
  }

  /** Starts both loops; resolves after the first round (every endpoint probed once). */
  async start(): Promise<void> {
    this.#stopped = false;
    await Promise.all(this.#pool.all().map((ep) => this.add(ep)));
  }

  /** Starts probing `ep` (at start, or when it joins the pool later); resolves after its first round. */
  async add(ep: Endpoint): Promise<void> {
    if (this.#stopped) return;
    const st = this.#stateOf(ep);
    await Promise.all([this.checkHealth(ep), this.scrapeOnce(ep)]);
    this.#evaluate(ep, st);
    this.#scheduleMetrics(ep);
    this.#scheduleHealth(ep);
  }

  /** Stops probing `ep` (it left the pool). */
  remove(ep: Endpoint): void {
    const st = this.#state.get(ep);
    st?.metricsTimer?.cancel();
    st?.healthTimer?.cancel();
    this.#state.delete(ep);
  }

  /**
   * Starts probing an endpoint that joined the pool (dynamic discovery): a first round now, then
   * both loops. Resolves after the first round.
   */
  async track(ep: Endpoint): Promise<void> {
    if (this.#state.has(ep)) return;
    await this.add(ep);
  }

  /**
   * Stops probing an endpoint that left the pool for good: its timers are cancelled, a probe in
   * flight writes nothing when it lands, and its per-endpoint gauges are deleted.
   */
  untrack(ep: Endpoint): void {
    this.#untracked.add(ep);
    this.remove(ep);
    const m = this.#opts.metrics;
    for (const g of [m?.endpointHealthy, m?.endpointStaleness, m?.endpointLive, m?.endpointLoadFresh]) g?.remove({ endpoint: ep.id });
  }

  /** Endpoints being probed (tests and diagnostics). */
  tracked(): Endpoint[] {
    return [...this.#state.keys()];
  }

  stop(): void {
    this.#stopped = true;
    for (const st of this.#state.values()) {
      st.metricsTimer?.cancel();
      st.healthTimer?.cancel();
    }
  }

  /** Marks an endpoint down now (the gateway saw it refuse a connection). */
  markDown(ep: Endpoint): void {
    const st = this.#stateOf(ep);
    st.refused = true;
    st.wasRefused = true;
    st.interval = undefined;
    this.#evaluate(ep, st);
  }

  #stateOf(ep: Endpoint): State {
    let st = this.#state.get(ep);
    if (st === undefined) {
      st = {
        lastLive: 0, lastMetricsOk: 0, lastModels: 0, metricsTimer: undefined, healthTimer: undefined,
        metricsInFlight: false, healthInFlight: false, metricsFailures: 0, refused: false, wasRefused: false,
        healthPath: '/health', healthProblem: '', metricsProblem: '', engineProblem: '',
        override: ep.health?.engineSource === 'override', detected: false, restartToken: undefined,
        lastQueries: undefined, info: undefined, restarts: 0, lastReason: '',
      };
      this.#state.set(ep, st);
    }
    return st;
  }

  #scheduleMetrics(ep: Endpoint): void {
    if (this.#stopped || !this.#state.has(ep)) return;
    const st = this.#stateOf(ep);
    // Back off while /metrics fails (llama.cpp queues every /metrics behind a prefill).
    const delay = st.metricsFailures === 0 ? (st.interval ?? this.#baseInterval()) : Math.min(this.#s.intervalMs * 2 ** Math.min(st.metricsFailures, 10), 1000);
    st.metricsTimer = this.#opts.clock.setTimeout(() => {
      void this.scrapeOnce(ep).finally(() => this.#scheduleMetrics(ep));
    }, delay);
  }

  #scheduleHealth(ep: Endpoint): void {
    if (this.#stopped || !this.#state.has(ep)) return;
    const st = this.#stateOf(ep);
    st.healthTimer = this.#opts.clock.setTimeout(() => {
      void this.checkHealth(ep).finally(() => this.#scheduleHealth(ep));
    }, this.#s.healthIntervalMs);
  }

  /**
   * Probes liveness once (skipped while /metrics answered within the last health interval: that
   * answer proves liveness already, so a healthy fleet sees no extra traffic). Never throws.
   */
  async checkHealth(ep: Endpoint): Promise<void> {
    if (this.#untracked.has(ep)) return;
    const st = this.#stateOf(ep);
    if (st.healthInFlight) return;
    if (st.lastMetricsOk > 0 && this.#opts.clock.now() - st.lastMetricsOk < this.#s.healthIntervalMs) {
      this.#evaluate(ep, st);
      return;
    }
    st.healthInFlight = true;
    try {
      const res = await this.#get(ep, st.healthPath, this.#s.healthTimeoutMs);
      if (res.status === 200) {
        this.#live(ep, st);
        st.healthProblem = '';
      } else if ((res.status === 404 || res.status === 405) && st.healthPath === '/health') {
        st.healthPath = '/v1/models';
      } else {
        st.healthProblem = `GET ${st.healthPath} answered ${res.status}${res.status === 503 ? ' (loading the model?)' : ''}`;
      }
    } catch (err) {
      if (isConnectError(err)) {
        st.refused = true;
        st.wasRefused = true;
        st.healthProblem = `connection refused at ${ep.url}`;
      } else st.healthProblem = `GET ${st.healthPath} failed: ${(err as Error).message}`;
    } finally {
      st.healthInFlight = false;
      this.#evaluate(ep, st);
    }
  }

  /** Scrapes /metrics once (and models when due; detects the engine on the way). Never throws. */
  async scrapeOnce(ep: Endpoint): Promise<void> {
    if (this.#untracked.has(ep)) return;
    const st = this.#stateOf(ep);
    if (st.metricsInFlight) return;
    st.metricsInFlight = true;
    const { clock, metrics } = this.#opts;
    try {
      let res: { status: number; text: string; headers: Record<string, string | string[] | undefined> } | undefined;
      try {
        res = await this.#get(ep, '/metrics', this.#s.timeoutMs);
      } catch (err) {
        if (isConnectError(err)) {
          st.refused = true;
          st.wasRefused = true;
        }
        throw err;
      }
      // Any answer but a server error proves the process serves (501: metrics not enabled);
      // llama.cpp answers 503 while it loads the model.
      if (res.status < 500 || res.status === 501) this.#live(ep, st);
      const text = res.status === 200 ? res.text : undefined;
      if (!st.detected) await this.#detect(ep, st, text);
      if (res.status !== 200) throw new Error(`GET ${ep.url}/metrics answered ${res.status}${res.status === 501 || res.status === 404 ? ' (metrics not enabled? llama-server needs --metrics, SGLang --enable-metrics)' : ''}`);
      const adapter = adapterFor(ep.engine);
      const t0 = clock.now();
      const samples = parsePromText(res.text, mapNames(adapter.metrics)).samples;
      const snap = adapter.snapshot(samples, clock.now());
      metrics?.fast.counter(metrics.scrapeCost, ep.id).inc(Math.max(0, clock.now() - t0) / 1000);
      metrics?.fast.counter(metrics.scrapeBytes, ep.id).inc(res.text.length);
      if (!snap) {
        const seen = engineFromMetricsText(res.text);
        const why = `no ${ep.engine} load metrics on ${ep.url}/metrics${seen && seen !== ep.engine ? `; it serves ${seen} metrics` : ''}`;
        if (st.override) {
          st.engineProblem = `${why} (wrong --engine? drop --engine / ;engine= to detect the engine${seen ? `, or set it to ${seen}` : ''})`;
        } else if (seen && seen !== ep.engine) {
          st.detected = false; // a different engine came up on this address: detect again
        }
        throw new Error(why);
      }
      st.engineProblem = '';
      this.#checkRestart(ep, st, adapter.restartToken(samples, res.headers), snap.prefixQueries);
      const start = samples.find((x) => x.name === 'process_start_time_seconds');
      if (start !== undefined && Number.isFinite(start.value) && start.value > 0) this.#opts.onProcessStart?.(ep, start.value);
      ep.metrics = snap;
      st.lastMetricsOk = clock.now();
      st.metricsFailures = 0;
      // Adaptive interval: unchanged routing metrics double it, a change resets it.
      let sig = '';
      for (const x of samples) sig += `${x.value},`;
      const base = this.#baseInterval();
      st.interval = sig === st.sig ? Math.min(this.#maxIntervalMs, Math.max(base, (st.interval ?? base) * 2)) : base;
      st.sig = sig;
      st.metricsProblem = '';
      if (ep.cacheModel === undefined || ep.cacheModel.kind === 'blocks') ep.cacheModel = adapter.cacheModel(st.info, snap);
      if (clock.now() - st.lastModels >= this.#s.modelsIntervalMs || ep.models.length === 0) {
        await this.#refreshModels(ep).catch(() => undefined);
        st.lastModels = clock.now();
      }
    } catch (err) {
      st.metricsFailures++;
      st.interval = undefined;
      st.sig = undefined;
      if (!st.metricsProblem || st.metricsFailures === 1) st.metricsProblem = (err as Error).message;
      metrics?.scrapeErrors.inc({ endpoint: ep.id });
    } finally {
      st.metricsInFlight = false;
      this.#evaluate(ep, st);
      if (st.lastMetricsOk > 0 && !this.#untracked.has(ep)) metrics?.endpointStaleness.set({ endpoint: ep.id }, (clock.now() - st.lastMetricsOk) / 1000);
      if (!this.#untracked.has(ep)) metrics?.scrapeInterval.set({ endpoint: ep.id }, (st.interval ?? this.#baseInterval()) / 1000);
    }
  }

  /** The endpoint answered something: it is alive; coming back from refusing connections is a restart. */
  #live(ep: Endpoint, st: State): void {
    st.lastLive = this.#opts.clock.now();
    st.refused = false;
    if (st.wasRefused) {
      st.wasRefused = false;
      if (st.restarts > 0 || st.lastMetricsOk > 0 || st.restartToken !== undefined) {
        // The next scrape records the new process's token and counters without a second restart.
        st.restartToken = undefined;
        st.lastQueries = undefined;
        this.#restart(ep, st, 'came back after refusing connections');
      }
    }
  }

  #checkRestart(ep: Endpoint, st: State, token: string | undefined, queries: number | undefined): void {
    let reason: string | undefined;
    if (token !== undefined && st.restartToken !== undefined && token !== st.restartToken) reason = 'process start changed';
    else if (queries !== undefined && st.lastQueries !== undefined && queries < st.lastQueries) reason = 'counters went back';
    if (token !== undefined) st.restartToken = token;
    if (queries !== undefined) st.lastQueries = queries;
    if (reason !== undefined) this.#restart(ep, st, reason);
  }

  #restart(ep: Endpoint, st: State, reason: string): void {
    st.restarts++;
    this.#opts.metrics?.endpointRestarts.inc({ endpoint: ep.id, reason });
    this.#log.warn({ endpoint: ep.id, reason }, 'endpoint restarted: its cache is empty, dropping cache predictions for it');
    try {
      this.#opts.onRestart?.(ep, reason);
    } catch (err) {
      this.#log.error({ endpoint: ep.id, err: (err as Error).message }, 'restart handler failed');
    }
  }

  async #detect(ep: Endpoint, st: State, metricsText: string | undefined): Promise<void> {
    const get = async (path: string) => {
      const r = await this.#get(ep, path, this.#s.timeoutMs);
      return { status: r.status, text: r.text };
    };
    if (st.override) {
      for (const path of adapterFor(ep.engine).infoPaths) {
        const r = await get(path).catch(() => undefined);
        if (r?.status === 200) {
          try {
            st.info = obj(JSON.parse(r.text));
          } catch {
            /* not JSON: no info */
          }
          if (st.info) break;
        }
      }
    } else {
      const d = await detectEngine(get, metricsText);
      if (d.engine !== ep.engine || !st.detected) this.#log.info({ endpoint: ep.id, engine: d.engine, via: d.via }, 'engine detected');
      ep.engine = d.engine;
      st.info = d.info;
    }
    st.detected = true;
    ep.cacheModel = adapterFor(ep.engine).cacheModel(st.info, ep.metrics.updatedAt > 0 ? ep.metrics : undefined);
    this.#opts.metrics?.endpointEngine.set({ endpoint: ep.id, engine: ep.engine, source: st.override ? 'override' : 'detected' }, 1);
  }

  /** Recomputes health from the state; logs transitions with their reason. */
  #evaluate(ep: Endpoint, st: State): void {
    if (this.#untracked.has(ep)) return;
    const now = this.#opts.clock.now();
    const { healthy, state } = endpointHealth(st, now, ep.url, this.#s);
    const { live, loadFresh: fresh, reason } = state;
    if (!fresh && ep.metrics.stale !== true) ep.metrics = { ...(ep.metrics.updatedAt > 0 ? ep.metrics : EMPTY_METRICS), stale: true };
    const was = ep.healthy;
    ep.healthy = healthy;
    ep.health = state;
    if (was !== healthy || (reason !== st.lastReason && !healthy)) {
      if (healthy) this.#log.info({ endpoint: ep.id, engine: ep.engine }, 'endpoint healthy');
      else this.#log.warn({ endpoint: ep.id, engine: ep.engine, reason }, 'endpoint unhealthy');
    }
    st.lastReason = reason;
    const m = this.#opts.metrics;
    m?.endpointHealthy.set({ endpoint: ep.id }, healthy ? 1 : 0);
    m?.endpointLive.set({ endpoint: ep.id }, live ? 1 : 0);
    m?.endpointLoadFresh.set({ endpoint: ep.id }, fresh ? 1 : 0);
  }

  async #refreshModels(ep: Endpoint): Promise<void> {
    const r = await this.#get(ep, '/v1/models', this.#s.timeoutMs);
    if (r.status !== 200) return;
    const body = JSON.parse(r.text) as { data?: Array<{ id?: unknown }> };
    const ids = (body.data ?? []).map((m) => m.id).filter((x): x is string => typeof x === 'string');
    if (ids.length > 0) ep.models = ids;
  }

  #get(ep: Endpoint, path: string, timeoutMs: number): Promise<CappedPage> {
    return cappedGet(ep.url + path, { timeoutMs, maxBytes: this.#maxPageBytes, dispatcher: this.#opts.dispatcher });
  }
}
