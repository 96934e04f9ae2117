/**
 * `startEndpointPicker`: kvroute in llm-d's EPP seat behind Envoy. The same parts as the
 * standalone gateway (endpoint pool, metrics scraper, scheduler, precise-routing index and
 * events, request lifecycle, admin server with /metrics, dashboard and /debug/decisions), with
 * the Envoy ext_proc service (9002) and gRPC health (9003) in place of the HTTP gateway.
 */
import { createServer } from 'node:http';
import { Agent } from 'undici';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../../core/clock.js';
import { silentLogger } from '../../core/logger.js';
import { RingBuffer } from '../../core/ring-buffer.js';
import { mathRng, type Rng } from '../../core/rng.js';
import type { Endpoint } from '../../core/endpoint.js';
import { EndpointPool, type EndpointSpec } from '../../datalayer/endpoint-pool.js';
import { EndpointScraper } from '../../datalayer/endpoint-scraper.js';
import { RequestLifecycles, type DecisionRecord, type OutlierOptions } from '../../lifecycle/index.js';
import { createObservedOutlierDetector } from '../../lifecycle/observed-outliers.js';
import { RouterMetrics } from '../../metrics/router-metrics.js';
import type { Scheduler } from '../../scheduling/types.js';
import { PdGateway } from '../../pd/gateway-orchestrator.js';
import { createAdminHandler } from '../admin/admin-server.js';
import { DashboardRecorder } from '../admin/dashboard-state.js';
import { summarizeRouter } from '../admin/router-summary.js';
import { listen, type RouterKvCache } from '../router.js';
import { startExtProcServer, type RunningExtProc } from './ext-proc-server.js';
import { LifecycleBackend } from './lifecycle-backend.js';
import { startRouterSync, type RouterSync, type RouterSyncFlags } from '../../sync/start-router-sync.js';
import type { DiscoverySource } from '../../discovery/types.js';
import { startDiscovery } from '../../discovery/start-discovery.js';
import { startIdleGc } from '../../app/idle-gc.js';
import { wirePanicRouting } from '../../datalayer/panic-routing.js';

export interface EndpointPickerOptions {
  endpoints: readonly EndpointSpec[];
  /** Dynamic discovery (src/discovery): snapshots replace the pool at run time; stopped on close. */
  discovery?: DiscoverySource;
  scheduler: Scheduler;
  host?: string;
  /** ext_proc port (default 9002; 0 = ephemeral). */
  extProcPort?: number;
  /** gRPC health port (default 9003; 0 = ephemeral). */
  healthPort?: number;
  /** Admin port: /metrics, dashboard, debug (default 9090; 0 = ephemeral). */
  adminPort?: number;
  /** Admin listen address (default: `host`). */
  adminHost?: string;
  clock?: Clock;
  rng?: Rng;
  logger?: Logger;
  maxBodyBytes?: number;
  /** Endpoints in the destination header, primary included (default 3). */
  maxDestinations?: number;
  drainTimeoutMs?: number;
  /** Outlier detection (as the gateway's): replicas Envoy keeps failing on are not picked for a while. */
  outlier?: OutlierOptions;
  /** Load shedding thresholds (429 when every candidate is past one); see LifecycleBackendOptions. */
  saturation?: { queueDepth?: number; kvUsage?: number };
  scrapeIntervalMs?: number;
  staleAfterMs?: number;
  processMetrics?: boolean;
  decisionHistory?: number;
  /** One full GC after this long idle following a busy period, ms (default 10,000; 0 = off; src/app/idle-gc.ts). */
  idleGcAfterMs?: number;
  /** Panic routing below this percentage of healthy endpoints (default 50; 0 = off; EndpointPool.panicThresholdPercent). */
  panicThresholdPercent?: number;
  blockSize?: number;
  kvEventsExpected?: boolean;
  kvCache?: RouterKvCache;
  /** Active-active replicas: share picks and in-flight load over a Redis Stream (src/sync). */
  sync?: RouterSyncFlags;
}

export interface RunningEndpointPicker {
  /** `host:port` of the ext_proc gRPC service. */
  readonly extProcAddress: string;
  readonly healthPort: number;
  readonly adminUrl: string;
  readonly pool: EndpointPool;
  readonly metrics: RouterMetrics;
  readonly decisions: RingBuffer<DecisionRecord>;
  readonly dashboard: DashboardRecorder;
  readonly lifecycles: RequestLifecycles;
  readonly extProc: RunningExtProc;
  /** SIGTERM: readiness NOT_SERVING, serve until drained, then close everything. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

export async function startEndpointPicker(opts: EndpointPickerOptions): Promise<RunningEndpointPicker> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? silentLogger;
  const host = opts.host ?? '127.0.0.1';
  const adminHost = opts.adminHost ?? host;
  const pool = new EndpointPool(opts.endpoints, { allowEmpty: opts.discovery !== undefined });
  const metrics = new RouterMetrics({ processMetrics: opts.processMetrics ?? true, clock });
  wirePanicRouting(pool, opts.panicThresholdPercent, metrics, logger);
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 64 });
  const scraper = new EndpointScraper(pool, { clock, dispatcher, metrics, intervalMs: opts.scrapeIntervalMs, staleAfterMs: opts.staleAfterMs });
  const decisions = new RingBuffer<DecisionRecord>(opts.decisionHistory ?? 200);
  const dashboard = new DashboardRecorder({ clock });
  // P/D: a config that picks prefill endpoints runs in llm-d's header mode (decode-pod sidecars).
  const disaggregates = (opts.scheduler as { prefillProfile?: unknown }).prefillProfile !== undefined;
  const pd = disaggregates ? new PdGateway({ scheduler: opts.scheduler, mode: 'header', metrics, clock, logger }) : undefined;
  const scheduler = pd?.scheduler ?? opts.scheduler;
  const outliers = createObservedOutlierDetector(clock, opts.outlier, pool.all().length, metrics, logger);
  const lifecycles = new RequestLifecycles({
    scheduler,
    clock,
    metrics,
    logger,
    outliers,
    // Envoy retries onto the fallbacks; the lifecycle only follows what Envoy did, as far down
    // the destination list as Envoy can go (no retry budget: these retries already happened).
    ttfbTimeoutMs: 0,
    upstreamTimeoutMs: 0,
    maxRetries: Math.max(0, (opts.maxDestinations ?? 3) - 1),
    onDecision: (d) => {
      decisions.push(d);
      dashboard.record(d);
    },
  });
  await scraper.start();
  const backend = new LifecycleBackend({
    pool,
    lifecycles,
    rng: opts.rng ?? mathRng,
    logger,
    maxDestinations: opts.maxDestinations,
    saturation: opts.saturation,
    ...(pd !== undefined ? { pd } : {}),
    onEndpointFailed: (ep: Endpoint) => scraper.markDown(ep),
  });
  let adminPort = 0;
  let extProc: RunningExtProc | undefined;
  const load = (opts.scheduler as { load?: { load(ep: Endpoint): { inflight: number } } }).load;
  const admin = createServer(
    createAdminHandler({
      pool,
      metrics,
      clock,
      decisions: () => decisions.toArray(),
      recorder: dashboard,
      summary: () =>
        summarizeRouter({
          scheduler: opts.scheduler,
          gatewayUrl: `grpc://${extProc?.address ?? host}`,
          adminUrl: `http://${adminHost}:${adminPort}`,
          endpoints: pool.all(),
          blockSize: opts.blockSize,
          kvEventsExpected: opts.kvEventsExpected,
        }),
      inflight: (ep) => (load ? load.load(ep).inflight : 0),
    }),
  );
  let stopped = false;
  let sync: RouterSync | undefined;
  const stopAll = async () => {
    if (stopped) return;
    stopped = true;
    await sync?.close();
    await opts.discovery?.stop();
    scraper.stop();
    admin.closeAllConnections();
    await new Promise((r) => admin.close(r));
    await dispatcher.close();
    await opts.kvCache?.close();
  };
  try {
    // Before serving: a replica that starts late has replayed the shared state before its first request.
    if (opts.sync !== undefined) sync = await startRouterSync(opts.sync, { scheduler: opts.scheduler, endpoints: pool, clock, logger, metrics });
    adminPort = await listen(admin, opts.adminPort ?? 9090, adminHost);
    extProc = await startExtProcServer({
      backend,
      clock,
      logger,
      host,
      port: opts.extProcPort,
      healthPort: opts.healthPort,
      maxBodyBytes: opts.maxBodyBytes,
      drainTimeoutMs: opts.drainTimeoutMs,
    });
    const kv = opts.kvCache;
    if (kv !== undefined) {
      kv.onTokenized = (sec) => metrics.observeTokenization(sec);
      metrics.attachIndexStats(() => kv.indexStats());
      const tokenizer = kv.tokenizer;
      if (tokenizer !== undefined) metrics.attachTokenizerStats(() => tokenizer.stats());
      await kv.attach(pool.all());
      if (kv.eventStats() !== undefined) metrics.attachEventStats(() => kv.eventStats()!);
    }
    if (opts.discovery !== undefined) {
      await startDiscovery({ discovery: opts.discovery, pool, scraper, scheduler: opts.scheduler, ...(kv !== undefined ? { kvCache: kv } : {}), outliers, metrics, logger });
    }
  } catch (err) {
    await extProc?.close();
    await stopAll();
    throw err;
  }
  const running = extProc;
  logger.info({ extProc: running.address, healthPort: running.healthPort, adminPort, endpoints: pool.all().map((e) => e.id) }, 'kvroute endpoint picker listening');
  const idleGc = startIdleGc(opts.idleGcAfterMs, clock, metrics, logger);
  return {
    extProcAddress: running.address,
    healthPort: running.healthPort,
    adminUrl: `http://${adminHost}:${adminPort}`,
    pool,
    metrics,
    decisions,
    dashboard,
    lifecycles,
    extProc: running,
    async drain() {
      idleGc?.stop();
      await running.drain();
      await stopAll();
    },
    async close() {
      idleGc?.stop();
      await running.close();
      await stopAll();
    },
  };
}
