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
import { startRouter, type RunningRouter } from '../server/router.js';
import { loadSchedulerConfig, usesPreciseScorer, type SchedulerPreset } from './build-scheduler.js';
import { createKvCache, tokenizerSourceFrom, type KvCache } from './kv-cache.js';

export interface ServeOptions {
  endpoints?: string;
  config?: string;
  preset?: SchedulerPreset;
  host: string;
  port: number;
  adminPort: number;
  engine: EngineKind;
  maxBodyBytes: number;
  trustForwardedFor: boolean;
  scrapeIntervalMs: number;
  /** Precise routing: tokenizer source (`builtin`, a folder, or an endpoint URL); default the first endpoint's /tokenize. */
  tokenizer?: string;
  /** Engine block size (default 16). */
  blockSize?: number;
  /** KV events: connect (default), bind or off. */
  kvEvents?: 'connect' | 'bind' | 'off';
  /** Bind mode address (default tcp://127.0.0.1:5557, loopback). */
  kvEventsBind?: string;
  /** Check every KV-event stream against its replay socket this often, ms (default 30,000; 0 = off). */
  kvEventsResyncMs?: number;
  /** Shared Redis index (host:port or URL); default from KVCACHE_INDEXER_REDIS_ADDR, else memory. */
  redis?: string;
  env: Record<string, string | undefined>;
  logger: Logger;
}

export async function runServe(o: ServeOptions): Promise<RunningRouter> {
  const list = o.endpoints ?? o.env.KVROUTE_ENDPOINTS;
  if (!list) throw new KvrError('KVR_ERR_USAGE', 'no endpoints: pass --endpoints host:port,host:port or set KVROUTE_ENDPOINTS');
  const specs = parseEndpointList(list).map((s) => ({ ...s, engine: s.engine ?? o.engine }));
  const config = loadSchedulerConfig({ file: o.config, preset: o.preset, env: o.env });
  for (const w of config.warnings) o.logger.warn(w);
  let kvCache: KvCache | undefined;
  const blockSize = o.blockSize ?? 16;
  const redis = o.redis ?? config.extras.kvCacheIndexerRedisAddr;
  if (wantsKvCache(config, o, specs, redis)) {
    kvCache = await createKvCache({
      blockSize,
      tokenizer: tokenizerSourceFrom(o.tokenizer, specs[0] !== undefined ? normaliseEndpointUrl(specs[0].url).url : undefined),
      ...(redis !== undefined ? { redis } : {}),
      events: o.kvEvents ?? 'connect',
      ...(o.kvEventsBind !== undefined ? { bindAddress: o.kvEventsBind } : {}),
      ...(o.kvEventsResyncMs !== undefined ? { resyncIntervalMs: o.kvEventsResyncMs } : {}),
      logger: o.logger,
    });
    o.logger.info({ index: redis !== undefined ? 'redis' : 'memory', events: o.kvEvents ?? 'connect', blockSize }, 'precise prefix routing on');
  }
  const scheduler = createScheduler(config, kvCache !== undefined ? { kvCache: kvCache.services } : {});
  const router = await startRouter({
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
  }).catch((err: NodeJS.ErrnoException) => {
    void kvCache?.close();
    if (err.code === 'EADDRINUSE') throw new KvrError('KVR_ERR_USAGE', `port in use (${err.message}); choose another with --port / --admin-port (or --kv-events-bind)`);
    throw err;
  });
  o.logger.info({ sources: config.sources, profile: scheduler.profile.name }, 'scheduling config loaded');
  return router;
}

/**
 * Whether to run precise routing's tokenizer, index and event ingestion: the profile has a
 * precise scorer AND either the user asked for it (a config file, a preset or the seeds'
 * variables) or KV events / a shared index are configured. kvroute's built-in default also
 * carries the precise scorer; with no events configured it routes approximately and nothing
 * extra runs (no tokenization round trips, no sockets).
 */
function wantsKvCache(config: LoadedConfig, o: ServeOptions, specs: readonly EndpointSpec[], redis: string | undefined): boolean {
  if (!usesPreciseScorer(config)) return false;
  if (o.kvEvents === 'bind' || redis !== undefined || specs.some((s) => s.kvEvents !== undefined)) return true;
  return !(config.sources.length === 1 && config.sources[0] === 'default');
}
