/**
 * Applies discovery snapshots to a running router: the pool changes, and everything keyed by
 * endpoint follows. For an endpoint that left: the scraper stops (its gauges go), the scheduler
 * forgets it (load tracker, approximate prefix index, every plugin with `removeEndpoint`), the
 * precise KV index drops its blocks and its KV-event subscription closes. For one that joined:
 * it is scraped (healthy after its first good scrape, so it gets traffic only once it answers)
 * and its KV events are subscribed. Snapshots are applied one at a time, in order.
 */
import type { Logger } from 'pino';
import type { Endpoint } from '../core/endpoint.js';
import { silentLogger } from '../core/logger.js';
import type { EndpointPool, EndpointSpec } from '../datalayer/endpoint-pool.js';

/** What membership needs of the scraper. */
export interface MembershipScraper {
  track(ep: Endpoint): Promise<void>;
  untrack(ep: Endpoint): void;
}

/** What membership needs of precise routing's runtime (src/app/kv-cache.ts). */
export interface MembershipKvCache {
  addEndpoint?(ep: Endpoint): void;
  removeEndpoint?(endpointId: string): Promise<void>;
}

/** Options of {@link PoolMembership}. */
export interface PoolMembershipOptions {
  pool: EndpointPool;
  scraper: MembershipScraper;
  /** The scheduler; its `removeEndpoint` is called when present. */
  scheduler: object;
  kvCache?: MembershipKvCache;
  logger?: Logger;
  /** Called after each applied change (metrics, dashboards). */
  onChange?: (change: { added: Endpoint[]; removed: Endpoint[] }) => void;
}

/** See the file comment. */
export class PoolMembership {
  readonly #o: PoolMembershipOptions;
  readonly #log: Logger;
  #chain: Promise<unknown> = Promise.resolve();
  #changes = 0;

  constructor(o: PoolMembershipOptions) {
    this.#o = o;
    this.#log = o.logger ?? silentLogger;
  }

  /** Number of snapshots that changed the pool. */
  get changes(): number {
    return this.#changes;
  }

  /** Applies a snapshot (queued behind any snapshot still being applied). */
  apply(specs: readonly EndpointSpec[]): Promise<{ added: Endpoint[]; removed: Endpoint[] }> {
    const run = this.#chain.then(() => this.#apply(specs));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #apply(specs: readonly EndpointSpec[]): Promise<{ added: Endpoint[]; removed: Endpoint[] }> {
    const { pool, scraper, kvCache } = this.#o;
    const change = pool.replace(specs);
    const sched = this.#o.scheduler as { removeEndpoint?: (e: Pick<Endpoint, 'id' | 'index'>) => void };
    for (const ep of change.removed) {
      ep.healthy = false;
      scraper.untrack(ep);
      sched.removeEndpoint?.(ep);
      try {
        await kvCache?.removeEndpoint?.(ep.id);
      } catch (err) {
        this.#log.warn({ endpoint: ep.id, err: (err as Error).message }, 'precise index: removing an endpoint failed');
      }
    }
    await Promise.all(change.added.map(async (ep) => {
      await scraper.track(ep);
      kvCache?.addEndpoint?.(ep);
    }));
    if (change.added.length + change.removed.length > 0) {
      this.#changes++;
      this.#log.info({ added: change.added.map((e) => e.id), removed: change.removed.map((e) => e.id), size: pool.all().length }, 'endpoint pool changed');
      this.#o.onChange?.(change);
    }
    return change;
  }
}
