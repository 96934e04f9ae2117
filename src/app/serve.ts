/**
 * `kvroute serve`: the standalone gateway from command-line style options. Resolves endpoints
 * (flag or `KVROUTE_ENDPOINTS`), the scheduling config (file, preset, seeds' env vars), and
 * starts the router. Returns the running router; the caller decides when to close it.
 */
import type { Logger } from 'pino';
import { KvrError } from '../core/errors.js';
import type { EngineKind } from '../core/endpoint.js';
import { parseEndpointList } from '../datalayer/endpoint-pool.js';
import { startRouter, type RunningRouter } from '../server/router.js';
import { buildSchedulerWithConfig, type SchedulerPreset } from './build-scheduler.js';

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
  env: Record<string, string | undefined>;
  logger: Logger;
}

export async function runServe(o: ServeOptions): Promise<RunningRouter> {
  const list = o.endpoints ?? o.env.KVROUTE_ENDPOINTS;
  if (!list) throw new KvrError('KVR_ERR_USAGE', 'no endpoints: pass --endpoints host:port,host:port or set KVROUTE_ENDPOINTS');
  const specs = parseEndpointList(list).map((s) => ({ ...s, engine: s.engine ?? o.engine }));
  const { scheduler, config } = buildSchedulerWithConfig({ file: o.config, preset: o.preset, env: o.env });
  for (const w of config.warnings) o.logger.warn(w);
  const router = await startRouter({
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
    if (err.code === 'EADDRINUSE') throw new KvrError('KVR_ERR_USAGE', `port in use (${err.message}); choose another with --port / --admin-port`);
    throw err;
  });
  o.logger.info({ sources: config.sources, profile: scheduler.profile.name }, 'scheduling config loaded');
  return router;
}
