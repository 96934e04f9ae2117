/**
 * Liveness vs load freshness with real processes: simulated replicas in child processes, the
 * router with its DEFAULT scraper settings (no staleAfterMs / interval passed, the way
 * `kvroute serve` starts it: before the fix, `staleAfterMs: undefined` overwrote the default and
 * a frozen server was never ejected).
 *
 * - A server frozen with SIGSTOP (connections accepted, nothing answered) stops receiving new
 *   requests within 3 s.
 * - A llama.cpp server busy in a long prefill (its /metrics blocks for seconds, /health answers
 *   at once) stays healthy the whole time: its load data goes stale, it does not flap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChildSim, type ChildSim } from '../helpers/child-sim.js';
import { startRouter, type RunningRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

async function complete(router: RunningRouter, prompt: string, maxTokens = 2, timeoutMs = 20_000): Promise<{ status: number; endpoint: string | null }> {
  const r = await fetch(`${router.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: maxTokens }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await r.arrayBuffer();
  return { status: r.status, endpoint: r.headers.get('x-kvroute-endpoint') };
}

test('a frozen server (SIGSTOP) stops receiving new requests within 3 s; it comes back after SIGCONT', async () => {
  const sims: ChildSim[] = [];
  let router: RunningRouter | undefined;
  try {
    sims.push(await startChildSim(['--time-scale', '0.02']), await startChildSim(['--time-scale', '0.02']));
    router = await startRouter({ endpoints: sims.map((s) => ({ url: s.url })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
    const [frozen, other] = [router.pool.get(sims[0].address)!, router.pool.get(sims[1].address)!];
    assert.ok(frozen.healthy && other.healthy, 'both healthy at start');
    sims[0].freeze();
    const t0 = Date.now();
    while (frozen.healthy && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    const ejectedMs = Date.now() - t0;
    assert.equal(frozen.healthy, false, 'the frozen server was never ejected');
    assert.ok(ejectedMs <= 3000, `ejected after ${ejectedMs} ms (> 3 s)`);
    assert.match(frozen.health!.reason, /no answer on \/health or \/metrics/);
    // New requests all go to the live server (a request to the frozen one would hang).
    const served = await Promise.all(Array.from({ length: 6 }, (_, i) => complete(router!, `after freeze ${i} `.repeat(20), 2, 5000)));
    assert.deepEqual(served.map((s) => [s.status, s.endpoint]), served.map(() => [200, other.id]));
    const ready = (await (await fetch(`${router.adminUrl}/readyz`)).json()) as { reasons?: string; endpoints: Array<{ id: string; live: boolean }> };
    assert.match(ready.reasons ?? '', new RegExp(`${frozen.id}: no answer`));
    sims[0].thaw();
    const t1 = Date.now();
    while (!frozen.healthy && Date.now() - t1 < 10_000) await new Promise((r) => setTimeout(r, 20));
    assert.equal(frozen.healthy, true, 'healthy again after SIGCONT');
  } finally {
    await router?.close();
    await Promise.all(sims.map((s) => s.close()));
  }
});

test('a llama.cpp server in a long prefill (slow /metrics, fast /health) does not flap: load goes stale, it stays healthy', async () => {
  const sims: ChildSim[] = [];
  let router: RunningRouter | undefined;
  try {
    // --time-scale 40: a 6,000-token prefill is one ~6 s step; /metrics waits for it (llama.cpp's task queue).
    sims.push(await startChildSim(['--engine', 'llamacpp', '--parallel', '2', '--time-scale', '40']));
    sims.push(await startChildSim(['--engine', 'llamacpp', '--parallel', '2', '--time-scale', '0.02']));
    router = await startRouter({ endpoints: sims.map((s) => ({ url: s.url })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
    const busy = router.pool.get(sims[0].address)!;
    assert.equal(busy.engine, 'llamacpp', 'engine detected without --engine');
    assert.ok(busy.healthy);
    // The long prefill goes straight to the busy server (not through the router).
    const long = fetch(`${sims[0].url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'lorem ipsum dolor '.repeat(1000), max_tokens: 2 }) }).then((r) => r.json());
    let sawStale = false;
    let flapped = false;
    const t0 = Date.now();
    let done = false;
    long.then(
      () => (done = true),
      () => (done = true),
    );
    while (!done && Date.now() - t0 < 30_000) {
      if (!busy.healthy) flapped = true;
      if (busy.health?.loadFresh === false) {
        sawStale = true;
        assert.equal(busy.metrics.stale, true, 'a stale snapshot is marked for the load scorers');
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    await long.catch((err: Error & { cause?: unknown }) => assert.fail(`the long prefill request failed: ${err.message} ${String(err.cause)}`));
    assert.ok(sawStale, 'the prefill never made /metrics stale: the scenario did not happen');
    assert.equal(flapped, false, 'the busy-but-live server was ejected');
    // And the router still sends it traffic.
    const r = await complete(router, 'after the prefill', 2);
    assert.equal(r.status, 200);
  } finally {
    await router?.close();
    await Promise.all(sims.map((s) => s.close()));
  }
});
