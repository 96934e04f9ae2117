/**
 * Panic routing (Envoy's healthy panic threshold): when the replicas' probes time out while their
 * inference still works (an overloaded host or network: what failed in the soak on a loaded
 * machine), the router keeps routing to them instead of answering 503 to everyone; with it off
 * (`panicThresholdPercent: 0`) the same situation is a 503. Real HTTP, the real simulator with
 * its `stallProbes` fault.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { startFaultRig, until } from '../helpers/fault-fleet.js';

const FAST_HEALTH = { scrapeIntervalMs: 50, healthIntervalMs: 50, healthTimeoutMs: 150, deadAfterMs: 400, staleAfterMs: 300 };

for (const panic of [true, false]) {
  test(`every replica's probes stall while inference works: ${panic ? 'panic routing serves every request' : 'with panic routing off, 503'}`, async () => {
    const rig = await startFaultRig({ replicas: 2, router: { ...FAST_HEALTH, ...(panic ? {} : { panicThresholdPercent: 0 }) } });
    try {
      assert.equal((await rig.complete({ prompt: 'warm up' })).status, 200);
      for (const r of rig.fleet.replicas) await r.setFaults({ stallProbes: true });
      assert.ok(await until(() => rig.router.pool.healthyCount() === 0, 5000), 'both replicas marked unhealthy');
      assert.ok(rig.router.pool.all().every((ep) => ep.health?.silent === true), 'both are silent, not refusing');
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await rig.complete({ prompt: `request ${i} while the probes stall` })).status);
      if (panic) {
        assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200]);
        assert.equal(await rig.metric('kvroute_panic_routing_total'), 6);
      } else {
        assert.deepEqual(statuses, [503, 503, 503, 503, 503, 503]);
        assert.equal(await rig.metric('kvroute_panic_routing_total'), 0);
      }
      for (const r of rig.fleet.replicas) await r.setFaults({ stallProbes: false });
      assert.ok(await until(() => rig.router.pool.healthyCount() === 2, 5000), 'both healthy again');
      assert.equal((await rig.complete({ prompt: 'after' })).status, 200);
    } finally {
      await rig.close();
    }
  });
}

test('one of two replicas silent: not below the threshold, so it gets no traffic', async () => {
  const rig = await startFaultRig({ replicas: 2, router: FAST_HEALTH });
  try {
    await rig.fleet.replicas[0].setFaults({ stallProbes: true });
    assert.ok(await until(() => rig.router.pool.healthyCount() === 1, 5000), 'replica 0 marked unhealthy');
    const served: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await rig.complete({ prompt: `request ${i}` }, rig.pin(0));
      assert.equal(r.status, 200);
      served.push(String(r.headers['x-kvroute-endpoint']));
    }
    assert.deepEqual(served, served.map(() => rig.id(1)), 'even pinned to replica 0, every request went to the healthy replica');
    assert.equal(await rig.metric('kvroute_panic_routing_total'), 0);
  } finally {
    await rig.fleet.replicas[0].setFaults({ stallProbes: false });
    await rig.close();
  }
});

test('in panic mode a failed attempt is retried on a silent replica instead of failing the request', async () => {
  const rig = await startFaultRig({ replicas: 3, router: FAST_HEALTH });
  try {
    assert.equal((await rig.complete({ prompt: 'warm up' })).status, 200);
    await rig.fleet.replicas[1].setFaults({ stallProbes: true });
    await rig.fleet.replicas[2].setFaults({ stallProbes: true });
    assert.ok(await until(() => rig.router.pool.healthyCount() === 1, 5000), 'replicas 1 and 2 marked unhealthy (silent)');
    // The one healthy replica answers 500 (retriable): the pick is in panic mode (1 of 3 healthy),
    // so the only other candidates are silent.
    await rig.fleet.replicas[0].setFaults({ errorRate: 1 });
    const r = await rig.complete({ prompt: 'pinned to the failing healthy replica' }, rig.pin(0));
    assert.equal(r.status, 200, 'retried on a silent replica');
    assert.ok([rig.id(1), rig.id(2)].includes(String(r.headers['x-kvroute-endpoint'])), `served by ${String(r.headers['x-kvroute-endpoint'])}`);
    assert.ok((await rig.metric('kvroute_upstream_retries_total', { endpoint: rig.id(0) })) >= 1, 'the retry is counted');
  } finally {
    for (const x of rig.fleet.replicas) await x.setFaults({ stallProbes: false, errorRate: 0 });
    await rig.close();
  }
});
