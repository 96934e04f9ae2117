/**
 * `kvroute demo` end to end (real sockets, simulated replicas): checks what the demo claims,
 * from the replicas' own metrics — not timings (those belong in benchmarks).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { runDemo } from '../../src/demo/run-demo.js';
import { demoJson, formatDemoReport } from '../../src/demo/demo-report.js';

test('demo: topics spread, hit phase served from cache, kvroute beats round robin on hit rate', async () => {
  const lines: string[] = [];
  const s = await runDemo({ timeScale: 0.25, onProgress: (l) => lines.push(l) });
  assert.ok(lines.length > 10, 'progress is reported while it runs');
  const [populate, hit, miss] = s.phases;
  assert.deepEqual(s.phases.map((p) => p.name), ['populate', 'hit', 'miss']);
  for (const p of s.phases) assert.equal(p.failed, 0, `${p.name} had failures`);

  assert.deepEqual(populate.replicas.map((r) => r.requests), [1, 1, 1], 'each seed topic lands on its own replica');
  assert.equal(populate.fleetHitRate, 0);
  assert.ok(hit.fleetHitRate >= 0.9, `hit phase fleet hit rate ${hit.fleetHitRate}`);
  assert.equal(hit.hitRequests, 9);
  for (const r of hit.replicas) assert.equal(r.requests, populate.replicas.find((p) => p.endpoint === r.endpoint)!.requests * 3, 'hits go where their topic is cached');
  assert.equal(miss.hitRequests, 0);
  assert.deepEqual(miss.replicas.map((r) => r.requests), [1, 1, 1], 'new topics spread');

  const [kv, rr] = s.comparison;
  assert.equal(kv.failed + rr.failed, 0);
  assert.equal(kv.requests, rr.requests);
  assert.ok(kv.fleetHitRate > rr.fleetHitRate + 0.1, `kvroute ${kv.fleetHitRate} vs round robin ${rr.fleetHitRate}`);
  // Hit rates come from engine counter deltas: they must agree with per-replica sums.
  const sumQ = kv.replicas.reduce((a, r) => a + r.prefixQueries, 0);
  const sumH = kv.replicas.reduce((a, r) => a + r.prefixHits, 0);
  assert.equal(kv.fleetHitRate, sumH / sumQ);

  assert.equal(s.comparisonSetup.engine, 'virtual', 'the comparison runs in simulated time, immune to machine load');
  assert.equal(kv.requests, s.comparisonSetup.requests);

  const json = JSON.parse(demoJson(s));
  assert.equal(json.version, 1);
  assert.equal(json.phases[0].hitTtftMs, null, 'NaN becomes null in JSON');
  const table = formatDemoReport(s);
  assert.match(table, /Phase "hit"/);
  assert.match(table, /round-robin/);
  assert.match(table, /mean TTFT [\d.]+ ms vs [\d.]+ ms \([\d.]+x (lower|higher)\)|the same/);
});
