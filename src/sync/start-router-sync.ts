/**
 * Wiring of {@link RouterSync} into a front end (the gateway's startRouter, the ext_proc picker):
 * checks that the scheduler supports remote picks and starts the sync on the router's pool.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { KvrError } from '../core/errors.js';
import type { RouterMetrics } from '../metrics/router-metrics.js';
import { RouterSync, type RouterSyncOptions, type SyncableScheduler } from './router-sync.js';

export { RouterSync };

/** The user-facing sync settings (`kvroute serve --sync-redis --router-id`). */
export type RouterSyncFlags = Omit<RouterSyncOptions, 'scheduler' | 'endpoints' | 'clock' | 'logger' | 'metrics'>;

/** Starts replica sync for a router whose scheduler is `scheduler` and pool is `endpoints`. */
export async function startRouterSync(
  flags: RouterSyncFlags,
  deps: { scheduler: unknown; endpoints: { get(id: string): Endpoint | undefined }; clock: Clock; logger: Logger; metrics?: RouterMetrics },
): Promise<RouterSync> {
  const s = deps.scheduler as Partial<SyncableScheduler>;
  if (typeof s.addObserver !== 'function' || typeof s.applyRemotePick !== 'function' || typeof s.pickKeysOf !== 'function' || typeof s.load?.setRemote !== 'function') {
    throw new KvrError('KVR_ERR_CONFIG', 'router sync needs kvroute\'s configured scheduler (createScheduler); this scheduler cannot apply remote picks');
  }
  if (flags.url.trim() === '') throw new KvrError('KVR_ERR_USAGE', '--sync-redis needs a Redis address, e.g. redis://10.0.0.9:6379');
  const sync = await RouterSync.start({ ...flags, scheduler: s as SyncableScheduler, endpoints: deps.endpoints, clock: deps.clock, logger: deps.logger, ...(deps.metrics !== undefined ? { metrics: deps.metrics } : {}) });
  deps.logger.info({ routerId: sync.routerId, replayed: sync.stats().replayed }, 'router sync on (active-active replicas)');
  return sync;
}
