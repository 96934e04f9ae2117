/**
 * Active-active test set-up: a real redis-server, a simulated fleet, and kvroute routers (the
 * default profile) that share picks and in-flight load through it (src/sync).
 */
import { request } from 'undici';
import { startFleet, type SimFleet } from '../../src/sim/index.js';
import { startRouter, type RunningRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import type { KvrouteScheduler } from '../../src/scheduling/scheduler.js';
import type { RouterSyncFlags } from '../../src/sync/start-router-sync.js';
import { SIM_MODEL } from './sim-router.js';

/** A router of the test plus its scheduler (to read its load tracker). */
export interface TestRouter {
  router: RunningRouter;
  scheduler: KvrouteScheduler;
}

/** Starts a simulated fleet of `replicas` llama-3.2-1b replicas. */
export function startSyncFleet(replicas: number, timeScale: number, seed: number): Promise<SimFleet> {
  return startFleet({ replicas, basePort: 0, model: SIM_MODEL, profile: 'llama-3.2-1b', timeScale, seed, maxModelLen: 8192 });
}

/** Starts a router in front of `fleet`; with `sync`, it shares state through that Redis stream. */
export async function startTestRouter(fleet: SimFleet, sync?: RouterSyncFlags): Promise<TestRouter> {
  const scheduler = buildScheduler({ preset: 'default' }) as KvrouteScheduler;
  const router = await startRouter({
    endpoints: fleet.replicas.map((r) => ({ url: r.url })),
    scheduler,
    port: 0,
    adminPort: 0,
    processMetrics: false,
    ...(sync !== undefined ? { sync } : {}),
  });
  return { router, scheduler };
}

/** One completion through `router`: status, the endpoint it was routed to, the decision's cache status. */
export async function complete(router: RunningRouter, prompt: string, maxTokens = 4): Promise<{ status: number; endpoint: string; cache: string | undefined; text: string }> {
  const res = await request(`${router.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-kvroute-explain': '1' },
    body: JSON.stringify({ model: SIM_MODEL, prompt, max_tokens: maxTokens, ignore_eos: true }),
  });
  const text = await res.body.text();
  const explain = res.headers['x-kvroute-explain'];
  const cache = typeof explain === 'string' ? (JSON.parse(explain) as { cache?: string }).cache : undefined;
  return { status: res.statusCode, endpoint: String(res.headers['x-kvroute-endpoint']), cache, text };
}

/** Polls `pred` every 10 ms until true; throws with `what` after `timeoutMs`. */
export async function waitFor(what: string, pred: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Total in-flight load other replicas report to `r`, over the fleet's endpoints. */
export function remoteInflight(r: TestRouter): number {
  let n = 0;
  for (const e of r.router.pool.all()) n += r.scheduler.load.remoteLoad(e.id).inflight;
  return n;
}
