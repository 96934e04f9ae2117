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
import { RouterMetrics } from '../metrics/router-metrics.js';
import type { EventIngestStats } from '../events/types.js';
import type { IndexStats } from '../kv-index/types.js';
import type { Scheduler } from '../scheduling/types.js';
import type { Endpoint } from '../core/endpoint.js';
import { createAdminHandler } from './admin/admin-server.js';
import { DashboardRecorder } from './admin/dashboard-state.js';
import { summarizeRouter } from './admin/router-summary.js';
import { createGatewayHandler, type DecisionRecord } from './openai/gateway.js';
import { createPublicServer, resolvePublicPortOptions, type PublicPortOptions } from './http/public-server.js';
import { guardPublicHandler } from './http/public-guard.js';
import type { ApiKeyStore } from './http/api-keys.js';
import { EndpointPrivacy, type EndpointPrivacyOptions } from './http/endpoint-privacy.js';

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
  upstreamTimeoutMs?: number;
  scrapeIntervalMs?: number;
  staleAfterMs?: number;
  /** Export Node process metrics too (default true). */
  processMetrics?: boolean;
  /** How many recent decisions `/debug/decisions` keeps (default 200). */
  decisionHistory?: number;
  /** Token block size the router keys blocks with (precise routing), reported to `kvroute doctor`. */
  blockSize?: number;
  /** Whether KV events are expected (default: when a precise prefix scorer is configured). */
  kvEventsExpected?: boolean;
  /**
   * Precise routing's event ingestion and index (src/app/kv-cache.ts): attached to the pool's
   * endpoints once the router is up, its stats exported, closed with the router.
   */
  kvCache?: RouterKvCache;
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
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
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
  const pool = new EndpointPool(opts.endpoints);
  const metrics = new RouterMetrics({ processMetrics: opts.processMetrics ?? true, clock });
  attachSchedulerStats(metrics, opts.scheduler);
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 512, pipelining: 1 });
  const scraper = new EndpointScraper(pool, {
    clock,
    dispatcher,
    metrics,
    intervalMs: opts.scrapeIntervalMs,
    staleAfterMs: opts.staleAfterMs,
  });
  const decisions = new RingBuffer<DecisionRecord>(opts.decisionHistory ?? 200);
  const dashboard = new DashboardRecorder({ clock });
  await scraper.start();

  const adminHost = opts.adminHost ?? '127.0.0.1';
  const portOpts = resolvePublicPortOptions(opts.publicPort);
  const maxBodyBytes = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  const privacy = opts.endpointPrivacy === undefined ? undefined : new EndpointPrivacy(opts.endpointPrivacy);
  const gatewayHandler = createGatewayHandler({
      pool,
      scheduler: opts.scheduler,
      clock,
      metrics,
      logger,
      dispatcher,
      maxBodyBytes,
      trustForwardedFor: opts.trustForwardedFor ?? false,
      upstreamTimeoutMs: opts.upstreamTimeoutMs ?? 600_000,
      onEndpointDown: (ep) => scraper.markDown(ep),
      onDecision: (d) => {
        decisions.push(d);
        dashboard.record(d);
      },
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
  try {
    port = await listen(gateway, opts.port ?? 8000, host);
    adminPort = await listen(admin, opts.adminPort ?? 9090, adminHost);
  } catch (err) {
    scraper.stop();
    gateway.close();
    await dispatcher.close();
    throw err;
  }
  const kv = opts.kvCache;
  if (kv !== undefined) {
    kv.onTokenized = (sec) => metrics.observeTokenization(sec);
    metrics.attachIndexStats(() => kv.indexStats());
    try {
      await kv.attach(pool.all());
    } catch (err) {
      scraper.stop();
      gateway.close();
      admin.close();
      await dispatcher.close();
      throw err;
    }
    if (kv.eventStats() !== undefined) metrics.attachEventStats(() => kv.eventStats()!);
  }
  logger.info({ port, adminPort, endpoints: pool.all().map((e) => e.id) }, 'kvroute gateway listening');
  return {
    url: `http://${host}:${port}`,
    adminUrl: `http://${adminHost}:${adminPort}`,
    pool,
    metrics,
    decisions,
    dashboard,
    async close() {
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
