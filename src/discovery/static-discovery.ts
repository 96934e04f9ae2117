/**
 * Static discovery: the `--endpoints` list (or `KVROUTE_ENDPOINTS`), one snapshot, no changes.
 */
import type { EndpointSpec } from '../datalayer/endpoint-pool.js';
import type { DiscoveryListener, DiscoverySource } from './types.js';

/** A fixed list of endpoints as a {@link DiscoverySource}. */
export class StaticDiscovery implements DiscoverySource {
  readonly description = 'static';
  readonly #specs: EndpointSpec[];

  constructor(specs: readonly EndpointSpec[]) {
    this.#specs = specs.map((s) => ({ ...s }));
  }

  async start(listener: DiscoveryListener): Promise<void> {
    await listener(this.#specs.map((s) => ({ ...s })));
  }

  async stop(): Promise<void> {}
}
