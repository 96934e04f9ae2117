/**
 * Liveness vs load freshness, timed: simulated replicas in child processes behind a router with
 * its default scraper settings.
 *   - frozen: SIGSTOP one replica, time until the router stops routing to it (5 rounds);
 *   - busy: a llama.cpp-dialect replica in a ~6 s prefill: time of its /metrics and /health
 *     answers, and whether the router ever ejected it.
 *
 *   npm run build && node dist/bench/health-ejection.js
 */
import { startChildSim } from '../test/helpers/child-sim.js';
import { startRouter } from '../src/server/router.js';
import { buildScheduler } from '../src/app/build-scheduler.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const frozen: number[] = [];
for (let round = 0; round < 5; round++) {
  const sims = [await startChildSim(['--time-scale', '0.02']), await startChildSim(['--time-scale', '0.02'])];
  const router = await startRouter({ endpoints: sims.map((s) => ({ url: s.url })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
  const ep = router.pool.get(sims[0].address)!;
  await sleep(300 + 97 * round); // freeze at a different phase of the probe cycle each round
  sims[0].freeze();
  const t0 = performance.now();
  while (ep.healthy && performance.now() - t0 < 10_000) await sleep(5);
  frozen.push(Math.round(performance.now() - t0));
  await router.close();
  for (const s of sims) await s.close();
}
process.stdout.write(`frozen (SIGSTOP) -> ejected after ms: ${frozen.join(', ')} (max ${Math.max(...frozen)})\n`);

const busy = await startChildSim(['--engine', 'llamacpp', '--parallel', '2', '--time-scale', '40']);
const router = await startRouter({ endpoints: [{ url: busy.url }], scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
const ep = router.pool.all()[0];
const long = fetch(`${busy.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'lorem ipsum dolor '.repeat(1000), max_tokens: 2 }) }).then((r) => r.json());
await sleep(200);
const timed = async (path: string): Promise<number> => {
  const t = performance.now();
  await (await fetch(`${busy.url}${path}`)).text();
  return performance.now() - t;
};
// Both asked at the same moment, during the prefill.
const [metricsMs, healthMs] = await Promise.all([timed('/metrics'), timed('/health')]);
let ejected = false;
let staleSeen = false;
let done = false;
void long.finally(() => (done = true));
while (!done) {
  if (!ep.healthy) ejected = true;
  if (ep.health?.loadFresh === false) staleSeen = true;
  await sleep(10);
}
process.stdout.write(`busy llama.cpp prefill: /metrics answered in ${Math.round(metricsMs)} ms, /health in ${Math.round(healthMs)} ms; load went stale: ${staleSeen}; ejected: ${ejected}\n`);
await router.close();
await busy.close();
