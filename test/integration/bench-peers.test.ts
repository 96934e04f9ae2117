/**
 * The live peers: the REAL SGLang router (PyPI sglang-router, cache_aware) and the REAL Envoy
 * (LEAST_REQUEST) run by `kvroute bench --engine live` in front of a fresh simulated fleet, and
 * `external:<label>=<url>` for a router already running. Both binaries are required: a missing
 * one fails the test with the install command, never skips it.
 *
 * What could fail here: a peer that never becomes ready or routes nowhere (requests fail), replica
 * attribution through a peer (the simulator's x-kvroute-sim-replica header), hit rates from the
 * replicas' own counters (a cache-blind balancer must lose to a cache-aware router on a workload
 * of a few large shared prefixes), a peer process left running after its run, the workload's
 * non-streaming share being streamed anyway, an external router being stopped by the bench, and
 * kvroute's own gateway as a separate `kvroute serve` process (`--gateway-process`) failing to
 * start, to get KV events, or to route by cache.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/core/clock.js';
import { streamRequest } from '../../src/client/openai-stream-client.js';
import { computeFigures } from '../../src/bench/figures.js';
import { runLive } from '../../src/bench/live-runner.js';
import { runBench } from '../../src/bench/run-bench.js';
import { builtinStrategy } from '../../src/bench/strategies.js';
import { createWorkload } from '../../src/bench/workloads.js';
import { startFleet } from '../../src/sim/fleet.js';
import { requireEnvoy } from '../helpers/envoy.js';
import { requireSglangRouterForTest, startSglangRouterForTest } from '../helpers/sglang-router.js';
import { createServer } from 'node:net';
import type { RunningPeer } from '../../src/bench/live-peers.js';

const workloadOptions = { groups: 6, promptsPerGroup: 10, systemTokens: 800, questionTokens: 48, outputTokens: 6, rate: 6 };
const fleetSpec = { replicas: 3, profile: 'llama-3.1-8b' as const, blockSize: 16, seed: 5 };

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('bench peers: the real sglang-router and Envoy LEAST_REQUEST run live against the simulated fleet', async () => {
  requireSglangRouterForTest();
  requireEnvoy();
  const workload = createWorkload('shared-prefix', { seed: 5, ...workloadOptions });
  const nonStreaming = workload.requests.filter((r) => r.stream === false).length;
  assert.ok(nonStreaming > 0, 'the workload has a non-streaming share');
  const hit: Record<string, number> = {};
  // kvroute runs as its own `kvroute serve` process here (--gateway-process), KV events over ZeroMQ.
  for (const name of ['envoy-least-request-live', 'sglang-router-live', 'kvroute']) {
    const res = await runLive(workload, builtinStrategy(name), fleetSpec, { timeScale: 0.25, gatewayProcess: true });
    assert.ok(!('skipped' in res), `${name} skipped`);
    const { run, notes } = res as Exclude<typeof res, { skipped: string }>;
    const failed = run.records.filter((r) => !r.ok);
    assert.equal(failed.length, 0, `${name}: ${failed.length} failed: ${failed.slice(0, 3).map((r) => r.error).join('; ')}`);
    // Attribution through the peer: every request on a replica, from the simulator's header.
    assert.ok(run.records.every((r) => r.replica >= 0), `${name}: every request attributed to a replica`);
    // Non-streaming requests went as one JSON body: no TTFT observed, an end-to-end time, output read.
    const ns = run.records.filter((r) => r.streamed === false);
    assert.equal(ns.length, nonStreaming, `${name}: the workload's non-streaming requests were sent without streaming`);
    assert.ok(ns.every((r) => r.ttftMs === undefined && r.e2eMs !== undefined && r.outputTokens === 6), `${name}: non-streaming records`);
    assert.ok(run.records.filter((r) => r.streamed !== false).every((r) => r.ttftMs !== undefined), `${name}: streamed requests have a TTFT`);
    // Hit rates from the replicas' own counters.
    const q = run.measured.reduce((a, c) => a + c.queries, 0);
    assert.ok(q > 0, `${name}: the replicas counted prompt tokens`);
    hit[name] = computeFigures(run, 1).hitRate;
    // The peer process was started for the run and is gone after it.
    const note = notes.find((n) => n.startsWith(name === 'kvroute' ? 'gateway: kvroute serve in its own process' : 'live peer: '));
    assert.ok(note, `${name}: notes name the peer: ${notes.join(' | ')}`);
    const pid = Number(/pid (\d+)/.exec(note!)?.[1]);
    assert.ok(pid > 0 && !alive(pid), `${name}: peer pid ${pid} stopped after the run`);
    if (name === 'envoy-least-request-live') {
      const per = [0, 1, 2].map((i) => run.records.filter((r) => r.replica === i).length);
      assert.ok(per.every((n) => n >= 10), `Envoy LEAST_REQUEST spreads the load: ${per.join(', ')}`);
    }
  }
  // 6 groups of a 800-token prefix on 3 replicas: a cache-blind balancer spreads each group over
  // every replica (about 2/3 hits), the cache-aware router keeps each group together (about 5/6).
  assert.ok(hit['sglang-router-live'] > hit['envoy-least-request-live'] + 0.08, `cache-aware sglang-router ${hit['sglang-router-live'].toFixed(3)} vs Envoy LEAST_REQUEST ${hit['envoy-least-request-live'].toFixed(3)}`);
  assert.ok(hit.kvroute > hit['envoy-least-request-live'] + 0.08, `kvroute serve (own process) ${hit.kvroute.toFixed(3)} vs Envoy LEAST_REQUEST ${hit['envoy-least-request-live'].toFixed(3)}`);
});

test('bench peers: external:<label>=<url> measures a router already running, which the bench leaves running', async () => {
  requireSglangRouterForTest();
  const fleet = await startFleet({ replicas: 3, basePort: 0, timeScale: 0.25, seed: 3 });
  const urls = fleet.replicas.map((r) => r.url);
  const peer = await startSglangRouterForTest(urls);
  try {
    const report = await runBench({ workload: 'shared-prefix', workloadOptions, strategies: [`external:sgl=${peer.url}`], engine: 'live', endpoints: urls, replicas: 3, seed: 5 });
    const s = report.strategies[0];
    assert.equal(s.name, 'sgl');
    assert.equal(s.failed, 0, s.errors.join('; '));
    assert.equal(s.requests, 60);
    assert.ok(s.hitRate > 0.7, `hit rate from the endpoints' counters: ${s.hitRate}`);
    assert.equal(s.replicas.reduce((a, r) => a + r.requests, 0), 60, 'requests attributed through the router');
    const ready = await fetch(`${peer.url}/readiness`);
    assert.equal(ready.status, 200, 'the external router is still running');
  } finally {
    await peer.stop();
    await fleet.close();
  }
  assert.ok(!alive(peer.pid!), 'stopped by the test that started it');
});

test('bench peers: sglang-router starts while its default metrics port 29000 is taken, two side by side, exporters on loopback', async () => {
  requireSglangRouterForTest();
  const fleet = await startFleet({ replicas: 2, basePort: 0, timeScale: 0.25, seed: 4 });
  // Hold sglang-router's default exporter port, as another bench's router on the host does (if
  // something else holds it already, that is the same situation). Before the fix: a panic.
  const blocker = createServer();
  await new Promise<void>((res) => {
    blocker.once('error', () => res());
    blocker.listen(29000, '127.0.0.1', () => res());
  });
  const started = await Promise.allSettled([startSglangRouterForTest(fleet.replicas.map((r) => r.url)), startSglangRouterForTest(fleet.replicas.map((r) => r.url))]);
  const peers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])) as RunningPeer[];
  try {
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    const metrics = peers.map((p) => p.metricsUrl ?? '');
    assert.ok(metrics.every((m) => /^http:\/\/127\.0\.0\.1:\d+$/.test(m) && !m.endsWith(':29000')), `exporters on their own loopback ports: ${metrics.join(', ')}`);
    assert.notEqual(metrics[0], metrics[1]);
    for (const p of peers) {
      const m = await fetch(`${p.metricsUrl}/metrics`);
      assert.equal(m.status, 200, 'its exporter answers where the launcher says');
      await m.text();
      const r = await fetch(`${p.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'meta-llama/Llama-3.1-8B-Instruct', prompt: 'one two three four', max_tokens: 3 }) });
      assert.equal(r.status, 200, `routes through ${p.url}`);
      assert.equal(((await r.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens, 3);
    }
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
    await new Promise<void>((res) => blocker.close(() => res()));
    await fleet.close();
  }
  assert.ok(peers.every((p) => !alive(p.pid!)), 'both routers stopped');
});

test('bench peers: clear errors for peers on the virtual engine, external without endpoints, bad specs', async () => {
  await assert.rejects(runBench({ workload: 'shared-prefix', workloadOptions, strategies: ['sglang-router-live'], engine: 'virtual', replicas: 3 }), (e: Error & { code?: string }) => e.code === 'KVR_ERR_USAGE' && /--engine live/.test(e.message));
  await assert.rejects(runBench({ workload: 'shared-prefix', workloadOptions, strategies: ['external:x=http://127.0.0.1:9'], engine: 'live', replicas: 3 }), (e: Error & { code?: string }) => e.code === 'KVR_ERR_USAGE' && /--endpoints/.test(e.message));
  assert.throws(() => builtinStrategy('external:http://x'), (e: Error & { code?: string }) => e.code === 'KVR_ERR_USAGE' && /external:<label>=<url>/.test(e.message));
  assert.throws(() => builtinStrategy('envoy-live'), /sglang-router-live, envoy-least-request-live/);
});

test('live client: a non-streaming request is read as one body, with usage and no TTFT', async () => {
  const fleet = await startFleet({ replicas: 1, basePort: 0, timeScale: 0.1, seed: 1 });
  try {
    const body = { model: 'meta-llama/Llama-3.1-8B-Instruct', prompt: 'one two three four five six seven', max_tokens: 4, stream: false };
    const r = await streamRequest({ baseUrl: fleet.replicas[0].url, api: 'completions', body, clock: systemClock });
    assert.equal(r.status, 200, r.error);
    assert.equal(r.error, undefined);
    assert.equal(r.streamed, false);
    assert.equal(r.ttftMs, undefined);
    assert.equal(r.completionTokens, 4);
    assert.ok((r.promptTokens ?? 0) > 0 && r.text.length > 0 && r.e2eMs > 0);
    const s = await streamRequest({ baseUrl: fleet.replicas[0].url, api: 'completions', body: { ...body, stream: undefined }, clock: systemClock });
    assert.equal(s.streamed, true);
    assert.ok(s.ttftMs !== undefined && s.completionTokens === 4);
  } finally {
    await fleet.close();
  }
});
