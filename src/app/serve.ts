/**
 * `kvroute serve`: the standalone gateway from command-line style options. Resolves endpoints
 * (flag or `KVROUTE_ENDPOINTS`), the scheduling config (file, preset, seeds' env vars), and
 * starts the router. Returns the running router; the caller decides when to close it.
 */
import type { Logger } from 'pino';
import { KvrError } from '../core/errors.js';
import type { EngineKind } from '../core/endpoint.js';
import { normaliseEndpointUrl, parseEndpointList, type EndpointSpec } from '../datalayer/endpoint-pool.js';
import type { LoadedConfig } from '../config/scheduler-config.js';
import { createScheduler } from '../scheduling/scheduler.js';
import { startRouter, type RouterOptions, type RunningRouter } from '../server/router.js';
import { startEndpointPicker, type RunningEndpointPicker } from '../server/ext-proc/start-endpoint-picker.js';
import { loadSchedulerConfig, usesPreciseScorer, type SchedulerPreset } from './build-scheduler.js';
import { createKvCache, tokenizerSourceFrom, type KvCache } from './kv-cache.js';
import { parseAllowList } from '../events/zap-allow-list.js';
import type { RouterSyncFlags } from '../sync/start-router-sync.js';
import { createDiscovery, isDynamicDiscovery, type DiscoveryFlags } from '../discovery/create-discovery.js';
import type { DiscoverySource } from '../discovery/types.js';
import { ApiKeyStore } from '../server/http/api-keys.js';

export interface ServeOptions {
  endpoints?: string;
  config?: string;
  preset?: SchedulerPreset;
  host: string;
  port: number;
  adminPort: number;
  /** Engine override for every endpoint without `;engine=`; undefined = detect per endpoint. */
  engine?: EngineKind;
  maxBodyBytes: number;
  trustForwardedFor: boolean;
  scrapeIntervalMs: number;
  /** Precise routing: tokenizer source (`builtin`, a folder, or an endpoint URL); default: the endpoints' own tokenizers, round robin. */
  tokenizer?: string;
  /** Engine block size (default 16). */
  blockSize?: number;
  /** KV events: connect (default), bind or off. */
  kvEvents?: 'connect' | 'bind' | 'off';
  /** Bind mode address (default tcp://127.0.0.1:5557, loopback). */
  kvEventsBind?: string;
  /** Bind mode: publisher addresses / CIDRs allowed to connect (comma-separated; ZeroMQ ZAP). */
  kvEventsAllowFrom?: string;
  /** Check every KV-event stream against its replay socket this often, ms (default 30,000; 0 = off). */
  kvEventsResyncMs?: number;
  /** Local tokenizer: jobs that may wait for its worker thread (default 32); more route approximately. */
  tokenizerMaxQueued?: number;
  /** Shared Redis index (host:port or URL); default from KVCACHE_INDEXER_REDIS_ADDR, else memory. */
  redis?: string;
  /** Active-active replicas: share picks and in-flight load through this Redis (RouterOptions.sync). */
  sync?: RouterSyncFlags;
  /** P/D mode of the gateway (RouterOptions.pdMode). */
  pdMode?: 'orchestrate' | 'header' | 'off';
  env: Record<string, string | undefined>;
  logger: Logger;
  /** Upstream timeouts, retries and outlier detection (the `kvroute serve` flags; router defaults otherwise). */
  resilience?: Pick<RouterOptions, 'upstreamTimeoutMs' | 'ttfbTimeoutMs' | 'maxRetries' | 'retryBudget' | 'outlier' | 'nonStreamingUpstream'>;
  /**
   * Endpoint discovery (`--discovery static|file:<path>|dns:<name>:<port>|k8s` and the pool
   * flags); absent or `static` = the `--endpoints` list. With a dynamic source and KV events in
   * connect mode, each endpoint of rank i subscribes to tcp://<ip>:<kvEventsPodPort + i>.
   */
  discovery?: Omit<DiscoveryFlags, 'kvEvents' | 'logger'> & { kvEventsPodPort?: number };
  /** Admin listen address (default 127.0.0.1). */
  adminHost?: string;
  /** One full GC once idle this long after a busy period, seconds (default 10; 0 = off; src/app/idle-gc.ts). */
  idleGcAfter?: number;
  /** Panic routing below this percentage of healthy endpoints (default 50; 0 = off). */
  panicThresholdPercent?: number;
  /** Public port hardening (timeouts, connection caps, API keys, header stripping, endpoint privacy). */
  publicPort?: PublicPortFlags;
}

/** The public-port flags of `kvroute serve` (docs/configuration.md, "Securing the gateway"). */
export interface PublicPortFlags {
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  maxConnections?: number;
  maxConnectionsPerClient?: number;
  maxHeaderBytes?: number;
  apiKey?: string[];
  apiKeysFile?: string;
  /** Comma-separated header names, or 'none'. */
  stripHeaders?: string;
  sessionSecret?: string;
  signSessionTokens?: boolean;
  hideEndpoints?: boolean;
}

/** Turns {@link PublicPortFlags} (plus `KVROUTE_API_KEYS_FILE` / `KVROUTE_SESSION_SECRET`) into router options. */
export function publicPortRouterOptions(f: PublicPortFlags = {}, env: Record<string, string | undefined> = {}) {
  const apiKeys = ApiKeyStore.from(f.apiKey ?? [], f.apiKeysFile ?? env.KVROUTE_API_KEYS_FILE);
  const secret = f.sessionSecret ?? env.KVROUTE_SESSION_SECRET;
  const strip =
    f.stripHeaders === undefined
      ? undefined
      : f.stripHeaders.trim() === 'none'
        ? []
        : f.stripHeaders.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  for (const h of strip ?? []) if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(h)) throw new KvrError('KVR_ERR_USAGE', `--strip-headers: "${h}" is not a header name`);
  const privacyOn = f.signSessionTokens === true || f.hideEndpoints === true || secret !== undefined;
  return {
    publicPort: {
      headersTimeoutMs: f.headersTimeoutMs,
      requestTimeoutMs: f.requestTimeoutMs,
      keepAliveTimeoutMs: f.keepAliveTimeoutMs,
      maxConnections: f.maxConnections,
      maxConnectionsPerClient: f.maxConnectionsPerClient,
      maxHeaderBytes: f.maxHeaderBytes,
    },
    ...(apiKeys !== undefined ? { apiKeys } : {}),
    ...(strip !== undefined ? { stripHeaders: strip } : {}),
    ...(privacyOn ? { endpointPrivacy: { ...(secret !== undefined ? { secret } : {}), hideEndpoints: f.hideEndpoints === true } } : {}),
  };
}

export async function runServe(o: ServeOptions): Promise<RunningRouter> {
  const publicOpts = publicPortRouterOptions(o.publicPort, o.env);
  const { specs, config, scheduler, kvCache, blockSize, discovery } = await prepareRouting(o);
  const router = await startRouter({
    ...(discovery !== undefined ? { discovery } : {}),
    ...(kvCache !== undefined ? { kvCache, blockSize } : {}),
    kvEventsExpected: kvCache !== undefined && o.kvEvents !== 'off',
    endpoints: specs,
    scheduler,
    host: o.host,
    port: o.port,
    adminPort: o.adminPort,
    logger: o.logger,
    maxBodyBytes: o.maxBodyBytes,
    trustForwardedFor: o.trustForwardedFor,
    scrapeIntervalMs: o.scrapeIntervalMs,
    ...(o.idleGcAfter !== undefined ? { idleGcAfterMs: o.idleGcAfter * 1000 } : {}),
    ...(o.panicThresholdPercent !== undefined ? { panicThresholdPercent: o.panicThresholdPercent } : {}),
    ...(o.pdMode !== undefined ? { pdMode: o.pdMode } : {}),
    ...(o.sync !== undefined ? { sync: o.sync } : {}),
    ...o.resilience,
    ...publicOpts,
    ...(o.adminHost !== undefined ? { adminHost: o.adminHost } : {}),
  }).catch((err: NodeJS.ErrnoException) => {
    void kvCache?.close();
    if (err.code === 'EADDRINUSE') throw new KvrError('KVR_ERR_USAGE', `port in use (${err.message}); choose another with --port / --admin-port (or --kv-events-bind)`);
    throw err;
  });
  o.logger.info({ sources: config.sources, profile: scheduler.profile.name }, 'scheduling config loaded');
  return router;
}

/** What both front ends (gateway, ext_proc) route with: endpoints, scheduler, precise-routing runtime. */
async function prepareRouting(o: ServeOptions): Promise<{ specs: EndpointSpec[]; config: LoadedConfig; scheduler: ReturnType<typeof createScheduler>; kvCache: KvCache | undefined; blockSize: number; discovery: DiscoverySource | undefined }> {
  const dynamic = isDynamicDiscovery(o.discovery?.discovery);
  const list = o.endpoints ?? o.env.KVROUTE_ENDPOINTS ?? (dynamic ? '' : undefined);
  if (list === undefined || (!dynamic && list === '')) throw new KvrError('KVR_ERR_USAGE', 'no endpoints: pass --endpoints host:port,host:port or set KVROUTE_ENDPOINTS');
  const specs = parseEndpointList(list).map((s) => {
    const engine = s.engine ?? o.engine;
    return engine !== undefined ? { ...s, engine } : s;
  });
  const config = loadSchedulerConfig({ file: o.config, preset: o.preset, env: o.env });
  for (const w of config.warnings) o.logger.warn(w);
  const discovery = dynamic ? dynamicSource(o, config, specs) : undefined;
  let kvCache: KvCache | undefined;
  const blockSize = o.blockSize ?? 16;
  const redis = o.redis ?? config.extras.kvCacheIndexerRedisAddr;
  const eventsFollowDiscovery = dynamic && o.discovery?.kvEventsPodPort !== undefined;
  if (o.kvEventsAllowFrom !== undefined) {
    if ((o.kvEvents ?? 'connect') !== 'bind') throw new KvrError('KVR_ERR_USAGE', '--kv-events-allow-from restricts who connects to the bound KV-event socket: it needs --kv-events bind');
    parseAllowList(o.kvEventsAllowFrom.split(',').filter((x) => x.trim() !== ''));
  }
  if (wantsKvCache(config, o, specs, redis) || (eventsFollowDiscovery && usesPreciseScorer(config))) {
    kvCache = await createKvCache({
      blockSize,
      tokenizer: tokenizerSourceFrom(o.tokenizer, specs[0] !== undefined ? normaliseEndpointUrl(specs[0].url).url : undefined),
      ...(redis !== undefined ? { redis } : {}),
      events: o.kvEvents ?? 'connect',
      ...(o.kvEventsBind !== undefined ? { bindAddress: o.kvEventsBind } : {}),
      ...(o.kvEventsAllowFrom !== undefined ? { allowFrom: o.kvEventsAllowFrom.split(',').filter((x) => x.trim() !== '') } : {}),
      ...(o.kvEventsResyncMs !== undefined ? { resyncIntervalMs: o.kvEventsResyncMs } : {}),
      ...(o.tokenizerMaxQueued !== undefined ? { tokenizerOptions: { workers: { maxQueued: o.tokenizerMaxQueued } } } : {}),
      logger: o.logger,
    });
    o.logger.info({ index: redis !== undefined ? 'redis' : 'memory', events: o.kvEvents ?? 'connect', blockSize }, 'precise prefix routing on');
  }
  const scheduler = createScheduler(config, kvCache !== undefined ? { kvCache: kvCache.services } : {});
  return { specs: dynamic ? [] : specs, config, scheduler, kvCache, blockSize, discovery };
}

/** Options of `kvroute serve --ext-proc` beyond the gateway's (the HTTP port is not used). */
export interface ExtProcServeOptions extends Omit<ServeOptions, 'port' | 'trustForwardedFor' | 'resilience'> {
  /** ext_proc gRPC port (default 9002). */
  extProcPort: number;
  /** gRPC health port (default 9003). */
  healthPort: number;
  /** Longest drain after SIGTERM (ms). */
  drainTimeoutMs: number;
  /** Endpoints in x-gateway-destination-endpoint, primary included (1 = no fallbacks, for ORIGINAL_DST). */
  maxDestinations: number;
  /** Outlier detection, as the gateway's `resilience.outlier`. */
  outlier?: NonNullable<ServeOptions['resilience']>['outlier'];
  /** Load shedding: 429 when every candidate has this many requests waiting. */
  shedQueueDepth?: number;
  /** Load shedding: 429 when every candidate's KV usage is at least this (0..1). */
  shedKvUsage?: number;
}

/**
 * `kvroute serve --ext-proc`: the same endpoints, scheduling config and precise routing as the
 * gateway, answering Envoy's ext_proc stream instead of HTTP (src/server/ext-proc).
 */
export async function runServeExtProc(o: ExtProcServeOptions): Promise<RunningEndpointPicker> {
  if (o.shedKvUsage !== undefined && !(o.shedKvUsage > 0 && o.shedKvUsage <= 1)) throw new KvrError('KVR_ERR_USAGE', `--shed-kv-usage must be in (0, 1], got ${o.shedKvUsage}`);
  if (!(Number.isInteger(o.maxDestinations) && o.maxDestinations >= 1)) throw new KvrError('KVR_ERR_USAGE', `--max-destinations must be an integer >= 1, got ${o.maxDestinations}`);
  const { specs, config, scheduler, kvCache, blockSize, discovery } = await prepareRouting({ ...o, port: 0, trustForwardedFor: false });
  // A config that disaggregates runs in llm-d's header mode: the picker names the prefill pod in
  // x-prefiller-host-port for the decode pod's sidecar (startEndpointPicker wraps the scheduler).
  const saturation = o.shedQueueDepth !== undefined || o.shedKvUsage !== undefined ? { queueDepth: o.shedQueueDepth, kvUsage: o.shedKvUsage } : undefined;
  const epp = await startEndpointPicker({
    ...(discovery !== undefined ? { discovery } : {}),
    ...(kvCache !== undefined ? { kvCache, blockSize } : {}),
    kvEventsExpected: kvCache !== undefined && o.kvEvents !== 'off',
    endpoints: specs,
    scheduler,
    host: o.host,
    extProcPort: o.extProcPort,
    healthPort: o.healthPort,
    adminPort: o.adminPort,
    logger: o.logger,
    maxBodyBytes: o.maxBodyBytes,
    scrapeIntervalMs: o.scrapeIntervalMs,
    ...(o.idleGcAfter !== undefined ? { idleGcAfterMs: o.idleGcAfter * 1000 } : {}),
    ...(o.panicThresholdPercent !== undefined ? { panicThresholdPercent: o.panicThresholdPercent } : {}),
    drainTimeoutMs: o.drainTimeoutMs,
    maxDestinations: o.maxDestinations,
    ...(o.outlier !== undefined ? { outlier: o.outlier } : {}),
    ...(saturation !== undefined ? { saturation } : {}),
    ...(o.sync !== undefined ? { sync: o.sync } : {}),
  }).catch((err: NodeJS.ErrnoException) => {
    void kvCache?.close();
    if (err.code === 'EADDRINUSE') throw new KvrError('KVR_ERR_USAGE', `port in use (${err.message}); choose another with --admin-port / --ext-proc-port / --grpc-health-port`);
    throw err;
  });
  o.logger.info({ sources: config.sources, profile: scheduler.profile.name }, 'scheduling config loaded');
  return epp;
}

/**
 * Whether to run precise routing's tokenizer, index and event ingestion: the profile has a
 * precise scorer AND KV events or a shared index are configured (an endpoint's `events=`,
 * `--kv-events bind`, or Redis, which is read even with `--kv-events off`). Without events the scorer has nothing to read and routes
 * approximately, so nothing extra runs (no tokenization round trips, no sockets, and `doctor`
 * does not report missing events): this is the case of kvroute's default profile, written out
 * or not (examples/default.yaml). An explicit config or preset asking for precise routing
 * without events gets a warning saying how to turn them on.
 */
function wantsKvCache(config: LoadedConfig, o: ServeOptions, specs: readonly EndpointSpec[], redis: string | undefined): boolean {
  if (!usesPreciseScorer(config)) return false;
  // A shared Redis index is read even with --kv-events off (another router feeds it).
  if (redis !== undefined) return true;
  if (o.kvEvents === 'off') return false;
  if (o.kvEvents === 'bind' || specs.some((s) => s.kvEvents !== undefined)) return true;
  if (!(config.sources.length === 1 && config.sources[0] === 'default') && o.preset !== undefined && o.preset !== 'default') {
    o.logger.warn(
      `the precise-prefix-cache-scorer of preset "${o.preset}" has no KV events to read, so it routes approximately; ` +
        "give each endpoint its events socket ('http://host:8000;events=tcp://host:5557;replay=tcp://host:5558') or use --kv-events bind",
    );
  }
  return false;
}

/** The dynamic discovery source of `o`, endpoints given `o.engine` unless they name one. */
function dynamicSource(o: ServeOptions, config: LoadedConfig, staticSpecs: readonly EndpointSpec[]): DiscoverySource {
  const { kvEventsPodPort, ...flags } = o.discovery ?? {};
  const follow = usesPreciseScorer(config) && (o.kvEvents ?? 'connect') === 'connect';
  if (kvEventsPodPort !== undefined && !follow) {
    throw new KvrError('KVR_ERR_USAGE', '--kv-events-pod-port needs precise routing with --kv-events connect (a precise-prefix-cache-scorer in the config)');
  }
  const src = createDiscovery({ ...flags, logger: o.logger, ...(follow ? { kvEvents: { port: kvEventsPodPort ?? 5557 } } : {}) }, staticSpecs);
  return {
    description: src.description,
    start: (listener) => src.start((list) => listener(list.map((s) => ({ ...s, engine: s.engine ?? o.engine })))),
    stop: () => src.stop(),
  };
}
