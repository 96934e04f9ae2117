/**
 * Defects 3 and 4 (issue 10), the upstream side: a replica answering 500 to everything is
 * ejected (it took 60 % of the traffic: failing fast made it look idle); requests on a replica
 * that dies before any byte reached the client are retried elsewhere; retries are bounded by a
 * budget; a replica whose /metrics answers but whose inference hangs is caught by the
 * time-to-first-byte timeout, retried elsewhere and ejected. Real HTTP, the real simulator's
 * fault injection (error rate, added latency, down).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { startFaultRig, until } from '../helpers/fault-fleet.js';

test('a replica answering 500 to everything is ejected: it stops taking traffic and clients see no error', async () => {
  const rig = await startFaultRig({ scheduler: buildScheduler({ preset: 'default' }) });
  try {
    await rig.fleet.replicas[0].setFaults({ errorRate: 1 });
    const bad = rig.id(0);
    const statuses: number[] = [];
    const N = 60;
    const CONC = 4;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONC }, async () => {
        while (next < N) {
          const i = next++;
          statuses.push((await rig.complete({ prompt: `distinct prompt number ${i} about topic ${i * 7}` })).status);
        }
      }),
    );
    assert.equal(statuses.filter((s) => s !== 200).length, 0, `every client got 200 (the 500s were retried elsewhere): ${statuses.join(',')}`);
    const badAttempts = await rig.metric('kvroute_upstream_errors_total', { endpoint: bad, kind: 'status' });
    assert.ok(badAttempts >= 5, `the bad replica was tried (${badAttempts})`);
    assert.ok(badAttempts <= 5 + CONC, `after 5 consecutive 500s the bad replica took no more traffic: ${badAttempts} of ${N} attempts (was ~60 %)`);
    assert.equal(await rig.metric('kvroute_outlier_ejections_total', { endpoint: bad }), 1);
    assert.equal(await rig.metric('kvroute_endpoint_ejected', { endpoint: bad }), 1);
    assert.equal(await rig.metric('kvroute_inflight_requests'), 0);
  } finally {
    await rig.close();
  }
});

test('a replica killed before the first byte: every request on it (streaming or not) is retried on another replica', async () => {
  const rig = await startFaultRig({ router: { scrapeIntervalMs: 60_000 } });
  try {
    const doomed = rig.fleet.replicas[0];
    await doomed.setFaults({ addedLatencyMs: 2000 }); // holds requests before the first byte
    const reqs = Array.from({ length: 6 }, (_, i) => rig.complete({ prompt: `kill me ${i}`, max_tokens: 4, stream: i % 2 === 0 }, rig.pin(0)));
    assert.ok(await until(async () => (await rig.metric('kvroute_inflight_requests', { endpoint: rig.id(0) })) === 6), 'six requests wait on the doomed replica');
    await doomed.setDown(true); // drops the open connections
    const out = await Promise.all(reqs);
    for (const [i, r] of out.entries()) {
      assert.equal(r.status, 200, `request ${i}: ${r.text}`);
      assert.notEqual(r.headers['x-kvroute-endpoint'], rig.id(0));
      if (i % 2 === 0) assert.match(r.text, /data: \[DONE\]\n\n$/);
      else assert.equal((JSON.parse(r.text) as { choices: unknown[] }).choices.length, 1);
    }
    assert.equal(await rig.metric('kvroute_upstream_retries_total', { endpoint: rig.id(0) }), 6);
    assert.equal(await rig.metric('kvroute_upstream_errors_total', { endpoint: rig.id(0), kind: 'reset' }), 6);
    assert.equal(await rig.metric('kvroute_inflight_requests'), 0);
    await doomed.setFaults({ addedLatencyMs: 0 });
  } finally {
    await rig.close();
  }
});

test('the retry budget bounds retries so they cannot multiply the load', async () => {
  const rig = await startFaultRig({
    router: { outlier: { consecutiveFailures: 0 }, retryBudget: { budgetPercent: 0, minRetriesPerSec: 1, windowMs: 2000 } },
  });
  try {
    await rig.fleet.replicas[0].setFaults({ errorRate: 1 });
    await rig.fleet.replicas[1].setFaults({ addedLatencyMs: 500 });
    await rig.fleet.replicas[2].setFaults({ addedLatencyMs: 500 });
    const out = await Promise.all(Array.from({ length: 10 }, (_, i) => rig.complete({ prompt: `budget ${i}` }, rig.pin(0))));
    const ok = out.filter((r) => r.status === 200).length;
    assert.equal(ok, 2, `two retries fit the budget (reserve 1/s over 2 s, no volume share): ${out.map((r) => r.status).join(',')}`);
    assert.equal(out.filter((r) => r.status === 500).length, 8, 'the rest get the replica\'s own 500');
    assert.equal(await rig.metric('kvroute_upstream_retries_total'), 2);
    assert.equal(await rig.metric('kvroute_retry_budget_exhausted_total'), 8);
    assert.equal(await rig.metric('kvroute_inflight_requests'), 0);
  } finally {
    await rig.close();
  }
});

test('a replica whose inference hangs (metrics fine) is caught by the TTFB timeout, retried elsewhere, then ejected', async () => {
  const rig = await startFaultRig({ router: { ttfbTimeoutMs: 300, outlier: { consecutiveFailures: 2 } } });
  try {
    const hung = rig.fleet.replicas[0];
    await hung.setFaults({ addedLatencyMs: 3000 });
    for (let i = 0; i < 6; i++) {
      const r = await rig.complete({ prompt: `hang ${i}` }, rig.pin(0));
      assert.equal(r.status, 200, r.text);
      assert.notEqual(r.headers['x-kvroute-endpoint'], rig.id(0));
    }
    assert.equal(rig.router.pool.get(rig.id(0))?.healthy, true, 'the scraper still sees the hung replica as healthy');
    assert.equal(await rig.metric('kvroute_upstream_errors_total', { endpoint: rig.id(0), kind: 'ttfb-timeout' }), 2, 'two timeouts, then no more traffic');
    assert.equal(await rig.metric('kvroute_outlier_ejections_total', { endpoint: rig.id(0) }), 1);
    assert.equal(await rig.metric('kvroute_inflight_requests'), 0);
  } finally {
    await rig.close();
  }
});
