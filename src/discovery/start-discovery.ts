/**
 * Starts a discovery source on a running front end (the HTTP gateway or the ext_proc endpoint
 * picker): snapshots go through {@link PoolMembership}, and removals also clear the outlier
 * detector's state and ejection gauge of the endpoint, and its host count.
 */
import type { Logger } from 'pino';
import type { EndpointPool } from '../datalayer/endpoint-pool.js';
import type { RouterMetrics } from '../metrics/router-metrics.js';
import { PoolMembership, type MembershipKvCache, type MembershipScraper } from './pool-membership.js';
import type { DiscoverySource } from './types.js';

/** What {@link startDiscovery} wires together. */
export interface StartDiscoveryOptions {
  discovery: DiscoverySource;
  pool: EndpointPool;
  scraper: MembershipScraper;
  scheduler: object;
  kvCache?: MembershipKvCache;
  outliers?: { removeEndpoint(id: string): void; setHostCount(n: number): void };
  metrics?: Pick<RouterMetrics, 'endpointEjected'>;
  logger: Logger;
}

/** Starts `discovery`; resolves once its first snapshot is applied (rejects as the source does). */
export async function startDiscovery(o: StartDiscoveryOptions): Promise<PoolMembership> {
  const m = new PoolMembership({
    pool: o.pool,
    scraper: o.scraper,
    scheduler: o.scheduler,
    ...(o.kvCache !== undefined ? { kvCache: o.kvCache } : {}),
    logger: o.logger,
    onChange: ({ removed }) => {
      for (const ep of removed) {
        o.outliers?.removeEndpoint(ep.id);
        o.metrics?.endpointEjected.remove({ endpoint: ep.id });
      }
      o.outliers?.setHostCount(o.pool.all().length);
    },
  });
  await o.discovery.start(async (specs) => void (await m.apply(specs)));
  o.logger.info({ discovery: o.discovery.description }, 'endpoint discovery running');
  return m;
}
