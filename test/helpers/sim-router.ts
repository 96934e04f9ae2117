/**
 * A small simulated fleet (3 x llama-3.2-1b, fast time scale) behind a router running the default
 * profile, on free loopback ports: the set-up the observability tests share.
 */
import { startFleet, type SimFleet } from '../../src/sim/index.js';
import { startRouter, type RouterOptions, type RunningRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';

export const SIM_MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

/** A running fleet and router; `close` stops both. */
export interface SimRouter {
  fleet: SimFleet;
  router: RunningRouter;
  close(): Promise<void>;
}

/** Starts the fleet (workload `seed`) and a router with an admin port; `extra` adds router options. */
export async function startSimRouter(seed: number, extra: Partial<RouterOptions> = {}): Promise<SimRouter> {
  const fleet = await startFleet({ replicas: 3, basePort: 0, model: SIM_MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, seed, maxModelLen: 4096, enablePromptTokensDetails: true });
  try {
    const router = await startRouter({
      endpoints: fleet.replicas.map((r) => ({ url: r.url })),
      scheduler: buildScheduler({ preset: 'default' }),
      port: 0,
      adminPort: 0,
      processMetrics: false,
      ...extra,
    });
    return { fleet, router, close: async () => { await router.close(); await fleet.close(); } };
  } catch (err) {
    await fleet.close();
    throw err;
  }
}
