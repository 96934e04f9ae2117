/**
 * `startRouter`: the standalone gateway assembled from its parts — endpoint pool, metrics
 * scraper, scheduler, OpenAI gateway (default port 8000) and admin server (default 9090).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger } from '../core/logger.js';
import { RingBuffer } from '../core/ring-buffer.js';
import { EndpointPool, type EndpointSpec } from '../datalayer/endpoint-pool.js';
import { EndpointScraper } from '../datalayer/endpoint-scraper.js';
import { RouterMetrics, type TokenizerStatsLike } from '../metrics/router-metrics.js';
import type { EventIngestStats } from '../events/types.js';
import type { IndexStats } from '../kv-index/types.js';
import type { Scheduler } from '../scheduling/types.js';
import type { Endpoint } from '../core/endpoint.js';
import { createAdminHandler } from './admin/admin-server.js';
import { DashboardRecorder } from './admin/dashboard-state.js';
import { summarizeRouter } from './admin/router-summary.js';
import { createGatewayHandler, type DecisionRecord } from './openai/gateway.js';
import type { PoolMembership } from '../discovery/pool-membership.js';
import { startDiscovery } from '../discovery/start-discovery.js';
import type { DiscoverySource } from '../discovery/types.js';
import { PdGateway } from '../pd/gateway-orchestrator.js';
import { KvrError } from '../core/errors.js';
import { RequestLifecycles } from '../lifecycle/request-lifecycle.js';
import type { OutlierDetector, OutlierOptions } from '../lifecycle/outlier-detector.js';
import { createObservedOutlierDetector } from '../lifecycle/observed-outliers.js';
import { RetryBudget, type RetryBudgetOptions } from '../lifecycle/retry-budget.js';
import { startRouterSync, type RouterSync, type RouterSyncFlags } from '../sync/start-router-sync.js';
import { createPublicServer, resolvePublicPortOptions, type PublicPortOptions } from './http/public-server.js';
import { guardPublicHandler } from './http/public-guard.js';
import type { ApiKeyStore } from './http/api-keys.js';
import { EndpointPrivacy, type EndpointPrivacyOptions } from './http/endpoint-privacy.js';
import { startIdleGc } from '../app/idle-gc.js';
import { wirePanicRouting } from '../datalayer/panic-routing.js';

export interface RouterOptions {
  endpoints: readonly EndpointSpec[];
  scheduler: Scheduler;
  host?: string;
  /** Gateway port (default 8000; 0 = ephemeral). */
  port?: number;
  /** Admin port (default 9090; 0 = ephemeral). */
  adminPort?: number;
  clock?: Clock;
  logger?: Logger;
  maxBodyBytes?: number;
  trustForwardedFor?: boolean;
  /** Whole upstream exchange per request, ms (default 600 000; 0 = none). */
  upstreamTimeoutMs?: number;
  /** Dispatch -> first token per attempt, ms (default 300 000; 0 = none): a replica that hangs is retried elsewhere and ejected. */
  ttfbTimeoutMs?: number;
  /** Outlier detection (consecutive failures eject a replica for a growing back-off). */
  outlier?: OutlierOptions;
  /** Retry budget (retries as a share of recent requests, plus a small reserve). */
  retryBudget?: RetryBudgetOptions;
  /** Retries on other replicas per request when nothing reached the client (default 2; 0 = none). */
  maxRetries?: number;
  /** Non-streaming requests upstream: re-assembled from a stream (default) or passed through (see proxy.ts). */
  nonStreamingUpstream?: 'stream' | 'passthrough';
  /** /metrics scrape interval (default 50 ms). */
  scrapeIntervalMs?: number;
  /** Load data older than this is stale: load scorers treat it as unknown (default 2,000 ms). */
  staleAfterMs?: number;
  /** /health probe interval (default 250 ms) and timeout (default 750 ms). */
  healthIntervalMs?: number;
  healthTimeoutMs?: number;
  /** An endpoint answering neither /health nor /metrics for this long is ejected (default 2,000 ms). */
  deadAfterMs?: number;
  /** Export Node process metrics too (default true). */
  processMetrics?: boolean;
  /** How many recent decisions `/debug/decisions` keeps (default 200). */
  decisionHistory?: number;
  /** One full GC after this long idle following a busy period, ms (default 10,000; 0 = off; src/app/idle-gc.ts). */
  idleGcAfterMs?: number;
  /** Panic routing below this percentage of healthy endpoints (default 50, Envoy's; 0 = off; EndpointPool.panicThresholdPercent). */
  panicThresholdPercent?: number;
  /** Token block size the router keys blocks with (precise routing), reported to `kvroute doctor`. */
  blockSize?: number;
  /** Whether KV events are expected (default: when a precise prefix scorer is configured). */
  kvEventsExpected?: boolean;
  /**
   * Precise routing's event ingestion and index (src/app/kv-cache.ts): attached to the pool's
   * endpoints once the router is up, its stats exported, closed with the router.
   */
  kvCache?: RouterKvCache;
  /**
   * Dynamic discovery (src/discovery): its snapshots replace the pool's endpoints at run time
   * (`endpoints` may then be empty). Started once the router is up, stopped on close.
   */
  discovery?: DiscoverySource;
  /**
   * Prefill/decode disaggregation in the gateway (src/pd/gateway-orchestrator.ts): 'orchestrate'
   * runs both legs, 'header' sets x-prefiller-host-port for decode-pod sidecars, 'off' serves
   * every request on the decode pick alone. Default: 'orchestrate' when the scheduler has a
   * prefill profile, else 'off'.
   */
  pdMode?: 'orchestrate' | 'header' | 'off';
  /** Retries of an in-gateway prefill leg on 502/503/504 (default 3). */
  pdPrefillMaxRetries?: number;
  /** Active-active replicas: share picks and in-flight load over a Redis Stream (src/sync). */
  sync?: RouterSyncFlags;
  /** Admin listen address (default 127.0.0.1, whatever `host` is: admin stays on loopback). */
  adminHost?: string;
  /** Public port limits: timeouts, connection caps, header size (src/server/http/public-server.ts). */
  publicPort?: Partial<PublicPortOptions>;
  /** Accepted API keys (src/server/http/api-keys.ts); undefined = no authentication. */
  apiKeys?: ApiKeyStore;
  /** Client headers removed before forwarding upstream (lower-case names). */
  stripHeaders?: readonly string[];
  /** Signed session tokens / opaque endpoint ids (src/server/http/endpoint-privacy.ts); undefined = off. */
  endpointPrivacy?: EndpointPrivacyOptions;
}

/** What the router needs of precise routing's runtime. */
export interface RouterKvCache {
  attach(endpoints: readonly Endpoint[]): Promise<void>;
  eventStats(): EventIngestStats | undefined;
  indexStats(): IndexStats;
  /** Late-bound: where tokenization times go. */
  onTokenized?: ((seconds: number) => void) | undefined;
  /** The router's own tokenizer, whose counters the metrics export (worker queue, fast BPE path). */
  readonly tokenizer?: { stats(): TokenizerStatsLike };
  /** Dynamic pool: an endpoint joined / left (its subscription closes and its blocks go). */
  addEndpoint?(endpoint: Endpoint): void;
  removeEndpoint?(endpointId: string): Promise<void>;
  /** Drops an endpoint's precise-index entries (it restarted: its cache is empty). */
  resetEndpoint?(endpointId: string): Promise<void>;
  /** Where the scraper reports each endpoint's `process_start_time_seconds` (KV-event ingestion's restart signal). */
  restartSignal?: { report(endpointId: string, startSeconds: number): void };
  close(): Promise<void>;
}

export interface RunningRouter {
  readonly url: string;
  readonly adminUrl: string;
  readonly pool: EndpointPool;
  readonly metrics: RouterMetrics;
  readonly decisions: RingBuffer<DecisionRecord>;
  /** What the dashboard accumulates (routed counts, time series). */
  readonly dashboard: DashboardRecorder;
  /** Present with dynamic discovery: applies snapshots to the pool. */
  readonly membership?: PoolMembership;
  /** The request lifecycles (shared by every front end of this router). */
  readonly lifecycles: RequestLifecycles;
  /** Outlier detection of this router. */
  readonly outliers: OutlierDetector;
  /** Replica sync, when `sync` was given. */
  readonly sync?: RouterSync;
  close(): Promise<void>;
}

/** Listens on `host:port` (0 = ephemeral) and resolves with the bound port. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startRouter(opts: RouterOptions): Promise<RunningRouter> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? silentLogger;
  const host = opts.host ?? '127.0.0.1';
  const pool = new EndpointPool(opts.endpoints, { allowEmpty: opts.discovery !== undefined });
  const metrics = new RouterMetrics({ processMetrics: opts.processMetrics ?? true, clock });
  wirePanicRouting(pool, opts.panicThresholdPercent, metrics, logger);
  attachSchedulerStats(metrics, opts.scheduler);
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 512, pipelining: 1 });
  const scraper = new EndpointScraper(pool, {
    clock,
    dispatcher,
    metrics,
    logger,
    intervalMs: opts.scrapeIntervalMs,
    staleAfterMs: opts.staleAfterMs,
    healthIntervalMs: opts.healthIntervalMs,
    healthTimeoutMs: opts.healthTimeoutMs,
    deadAfterMs: opts.deadAfterMs,
    onRestart: (ep) => forgetCachedPrefixes(opts.scheduler, ep, opts.kvCache, logger),
    onProcessStart: (ep, start) => opts.kvCache?.restartSignal?.report(ep.id, start),
  });
  const decisions = new RingBuffer<DecisionRecord>(opts.decisionHistory ?? 200);
  const dashboard = new DashboardRecorder({ clock });
  await scraper.start();
  // P/D (src/pd): the scheduler wrapper remembers decisions, the interceptor runs the prefill leg.
  const disaggregates = (opts.scheduler as { prefillProfile?: unknown }).prefillProfile !== undefined;
  const pdMode = opts.pdMode ?? (disaggregates ? 'orchestrate' : 'off');
  if (pdMode === 'off' && disaggregates) {
    scraper.stop();
    await dispatcher.close();
    throw new KvrError('KVR_ERR_CONFIG', 'the scheduling config picks prefill endpoints (disagg-profile-handler with a prefill decider) but P/D mode is off; use --pd-mode orchestrate or header, or drop deciders.prefill');
  }
  const pd = pdMode === 'off' ? undefined : new PdGateway({ scheduler: opts.scheduler, mode: pdMode, metrics, clock, logger, dispatcher, prefillMaxRetries: opts.pdPrefillMaxRetries, timeoutMs: opts.upstreamTimeoutMs });

  const outliers = createObservedOutlierDetector(clock, opts.outlier, pool.all().length, metrics, logger);
  const lifecycles = new RequestLifecycles({
    scheduler: pd?.scheduler ?? opts.scheduler,
    clock,
    metrics,
    logger,
    outliers,
    retryBudget: new RetryBudget(clock, opts.retryBudget),
    maxRetries: opts.maxRetries,
    upstreamTimeoutMs: opts.upstreamTimeoutMs ?? 600_000,
    ttfbTimeoutMs: opts.ttfbTimeoutMs ?? 300_000,
    onDecision: (d) => {
      decisions.push(d);
      dashboard.record(d);
    },
    // traffic moves the endpoint's load: its adaptive scrape interval returns to the base
    onAssigned: (ep) => scraper.touch(ep),
  });

  const adminHost = opts.adminHost ?? '127.0.0.1';
  const portOpts = resolvePublicPortOptions(opts.publicPort);
  const maxBodyBytes = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  const privacy = opts.endpointPrivacy === undefined ? undefined : new EndpointPrivacy(opts.endpointPrivacy);
  const gatewayHandler = createGatewayHandler({
      pool,
      scheduler: pd?.scheduler ?? opts.scheduler,
      clock,
      metrics,
      logger,
      dispatcher: pd !== undefined ? (dispatcher.compose(pd.interceptor()) as unknown as Agent) : dispatcher,
      maxBodyBytes,
      trustForwardedFor: opts.trustForwardedFor ?? false,
      upstreamTimeoutMs: opts.upstreamTimeoutMs ?? 600_000,
      onEndpointDown: (ep) => scraper.markDown(ep),
      nonStreamingUpstream: opts.nonStreamingUpstream,
      lifecycles,
    });
  const gateway = createPublicServer(
    guardPublicHandler(gatewayHandler, {
      metrics,
      logger,
      maxBodyBytes,
      apiKeys: opts.apiKeys,
      stripHeaders: opts.stripHeaders,
      privacy,
      endpointIds: () => pool.all().map((e) => e.id),
    }),
    portOpts,
    { metrics, logger, maxBodyBytes },
  );
  let port = 0;
  let adminPort = 0;
  const summary = () =>
    summarizeRouter({
      scheduler: opts.scheduler,
      gatewayUrl: `http://${host}:${port}`,
      adminUrl: `http://${adminHost}:${adminPort}`,
      endpoints: pool.all(),
      blockSize: opts.blockSize,
      kvEventsExpected: opts.kvEventsExpected,
    });
  const load = (opts.scheduler as { load?: { load(ep: Endpoint): { inflight: number } } }).load;
  const admin = createServer(
    createAdminHandler({
      pool,
      metrics,
      clock,
      decisions: () => decisions.toArray(),
      recorder: dashboard,
      summary,
      inflight: (ep) => (load ? load.load(ep).inflight : 0),
    }),
  );
  admin.on('clientError', (_err, socket) => socket.destroy());
  // Before listening: a replica that starts late has replayed the shared state before its first request.
  const sync = opts.sync !== undefined ? await startRouterSync(opts.sync, { scheduler: opts.scheduler, endpoints: pool, clock, logger, metrics }) : undefined;
  try {
    port = await listen(gateway, opts.port ?? 8000, host);
    adminPort = await listen(admin, opts.adminPort ?? 9090, adminHost);
  } catch (err) {
    scraper.stop();
    gateway.close();
    await dispatcher.close();
    await sync?.close();
    throw err;
  }
  const kv = opts.kvCache;
  if (kv !== undefined) {
    kv.onTokenized = (sec) => metrics.observeTokenization(sec);
    metrics.attachIndexStats(() => kv.indexStats());
    const tokenizer = kv.tokenizer;
    if (tokenizer !== undefined) metrics.attachTokenizerStats(() => tokenizer.stats());
    try {
      await kv.attach(pool.all());
    } catch (err) {
      scraper.stop();
      gateway.close();
      admin.close();
      await dispatcher.close();
      await sync?.close();
      throw err;
    }
    if (kv.eventStats() !== undefined) metrics.attachEventStats(() => kv.eventStats()!);
  }
  let membership: PoolMembership | undefined;
  if (opts.discovery !== undefined) {
    try {
      membership = await startDiscovery({ discovery: opts.discovery, pool, scraper, scheduler: opts.scheduler, ...(kv !== undefined ? { kvCache: kv } : {}), outliers, metrics, logger });
    } catch (err) {
      scraper.stop();
      gateway.close();
      admin.close();
      await dispatcher.close();
      await kv?.close();
      await sync?.close();
      throw err;
    }
  }
  logger.info({ port, adminPort, endpoints: pool.all().map((e) => e.id) }, 'kvroute gateway listening');
  const idleGc = startIdleGc(opts.idleGcAfterMs, clock, metrics, logger);
  return {
    url: `http://${host}:${port}`,
    adminUrl: `http://${adminHost}:${adminPort}`,
    pool,
    metrics,
    decisions,
    dashboard,
    ...(membership !== undefined ? { membership } : {}),
    lifecycles,
    outliers,
    ...(sync !== undefined ? { sync } : {}),
    async close() {
      idleGc?.stop();
      await sync?.close();
      await opts.discovery?.stop();
      scraper.stop();
      gateway.closeAllConnections();
      admin.closeAllConnections();
      await Promise.all([new Promise((r) => gateway.close(r)), new Promise((r) => admin.close(r))]);
      await dispatcher.close();
      await kv?.close();
    },
  };
}

/**
 * An endpoint restarted (its cache is empty): every scheduling plugin holding cache predictions
 * for it (approximate prefix index, precise scorer's speculative entries, cache-aware picker)
 * forgets them, and the precise block index drops its entries, so its old prefixes stop
 * attracting requests. Load bookkeeping is left alone (in-flight requests end on their own).
 */
function forgetCachedPrefixes(scheduler: Scheduler, ep: Endpoint, kv: RouterKvCache | undefined, logger: Logger): void {
  const s = scheduler as { plugins?: ReadonlyMap<string, unknown> };
  for (const p of s.plugins?.values() ?? []) {
    const r = p as { removeEndpoint?: (e: Pick<Endpoint, 'id' | 'index'>) => void };
    if (typeof r.removeEndpoint === 'function') r.removeEndpoint(ep);
  }
  kv?.resetEndpoint?.(ep.id).catch((err: unknown) => logger.warn({ endpoint: ep.id, err: (err as Error).message }, 'could not drop the restarted endpoint\'s block index entries'));
}

/**
 * Attaches what the scheduler can report to the metrics: the session-binding count (when the
 * session store exposes `size`) and the precise prefix scorer's counters (when one is configured).
 */
function attachSchedulerStats(metrics: RouterMetrics, scheduler: Scheduler): void {
  const s = scheduler as { sessions?: { size?: unknown }; plugins?: ReadonlyMap<string, { type: string; stats?: () => unknown }> };
  const sessions = s.sessions;
  if (sessions !== undefined && typeof sessions.size === 'number') metrics.attachSessionCount(() => sessions.size as number);
  for (const p of s.plugins?.values() ?? []) {
    if (p.type === 'precise-prefix-cache-scorer' && typeof p.stats === 'function') {
      const stats = p.stats.bind(p) as () => ReturnType<RouterMetrics['preciseScorerStats']> & object;
      metrics.attachPreciseScorerStats(stats);
      break;
    }
  }
}
