/**
 * The honest figures of `kvroute bench`: paired multi-seed intervals, closed-loop saturation,
 * KV-event delay and loss, held-out workloads and the non-streaming share.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/clock.js';
import { runBench, type BenchReport } from '../../src/bench/run-bench.js';
import { comparePaired, pairedInterval, t975 } from '../../src/bench/paired.js';
import { withEventFaults } from '../../src/bench/event-faults.js';
import type { PreciseSetupFactory } from '../../src/bench/precise-setup.js';
import { createWorkload } from '../../src/bench/workloads.js';
import type { KvEventBatch } from '../../src/events/types.js';

test('paired interval: Student t, verdict only when the interval excludes 0', () => {
  assert.equal(t975(9), 2.262);
  const i = pairedInterval([1, 2, 3, 4, 5]);
  assert.equal(i.mean, 3);
  assert.ok(Math.abs(i.hi - i.mean - 2.776 * Math.sqrt(2.5 / 5)) < 1e-9);
  assert.equal(pairedInterval([4]).lo, -Infinity, 'one seed gives no interval');
  const mk = (hit: number, p90: number): BenchReport['strategies'][number] =>
    ({ name: '', hitRate: hit, ttftMs: { p50: 1, p90, p99: p90, mean: 1 }, goodput: { requestsPerSecond: 1, share: 1, slo: { ttftMs: 1, tpotMs: 1 } }, balance: 1 }) as never;
  const reports = [0, 1, 2, 3].map((k) => ({ strategies: [{ ...mk(0.5 + k / 100, 100), name: 'base' }, { ...mk(0.6 + k / 100, 100 + (k % 2 ? 1 : -1)), name: 'cand' }] }) as unknown as BenchReport);
  const r = comparePaired(reports, 'base');
  assert.equal(r.find((x) => x.strategy === 'cand' && x.figure === 'hit rate')!.verdict, 'better');
  assert.equal(r.find((x) => x.strategy === 'cand' && x.figure === 'TTFT p90')!.verdict, 'not separated');
  assert.equal(r.find((x) => x.strategy === 'base' && x.figure === 'hit rate')!.verdict, 'baseline');
  assert.throws(() => comparePaired(reports, 'nope'), /baseline/);
});

test('closed loop: more clients, more saturation throughput; goodput counts only requests within the targets', async () => {
  const base = { workload: 'rag', workloadOptions: { requests: 120 }, strategies: ['round-robin'], engine: 'virtual' as const, replicas: 2, seed: 2 };
  const one = (await runBench({ ...base, closedLoopUsers: 1 })).strategies[0];
  const many = (await runBench({ ...base, closedLoopUsers: 48 })).strategies[0];
  assert.equal(one.saturation!.failed, 0);
  assert.ok(many.saturation!.outputTokensPerSecond > 3 * one.saturation!.outputTokensPerSecond, `${many.saturation!.outputTokensPerSecond} vs ${one.saturation!.outputTokensPerSecond}`);
  const strict = (await runBench({ ...base, slo: { ttftMs: 1, tpotMs: 1 } })).strategies[0];
  assert.equal(strict.goodput.share, 0, 'no request meets a 1 ms TTFT');
  assert.equal(one.goodput.share, 1, 'every request meets 1 s / 50 ms at 12 req/s on 2 replicas');
  await assert.rejects(runBench({ ...base, engine: 'live', closedLoopUsers: 2 }), /virtual engine only/);
});

test('event faults: batches are applied delayMs late (released by a lookup) and a seeded share is lost', async () => {
  const clock = new ManualClock(0);
  const applied: bigint[] = [];
  const inner: PreciseSetupFactory = async () => ({
    services: { blockSize: 16, tokenize: async () => [], requestKeys: () => [], lookup: async () => [] },
    sink: { applyBatch: async (_e, _m, seq) => void applied.push(seq), resetEndpoint: async () => undefined },
    description: 'counting',
    close: async () => undefined,
  });
  const batch = (ms: number): KvEventBatch => ({ ts: ms / 1000, events: [], dataParallelRank: null });
  const delayed = (await withEventFaults(inner, { delayMs: 100, loss: 0 })({ mode: 'virtual', clock, model: 'm', blockSize: 16, endpoints: [] }))!;
  await delayed.sink!.applyBatch('e', 'm', 0n, batch(0));
  assert.deepEqual(applied, [], 'not yet');
  clock.advanceTo(100);
  await delayed.services.lookup([], []);
  assert.deepEqual(applied, [0n], 'released at t + delay by a scheduling lookup');
  applied.length = 0;
  const lossy = (await withEventFaults(inner, { delayMs: 0, loss: 0.5, seed: 3 })({ mode: 'virtual', clock, model: 'm', blockSize: 16, endpoints: [] }))!;
  for (let i = 0; i < 200; i++) await lossy.sink!.applyBatch('e', 'm', BigInt(i), batch(100));
  assert.ok(applied.length > 60 && applied.length < 140, `${applied.length} of 200 applied`);
  assert.ok(applied.some((s, i) => i > 0 && s !== applied[i - 1] + 1n), 'the index sees sequence gaps');
  assert.throws(() => withEventFaults(inner, { delayMs: -1, loss: 0 }), /event-delay-ms/);
  assert.throws(() => withEventFaults(inner, { delayMs: 0, loss: 1 }), /event-loss/);
});

test('held-out workloads are deterministic, sized as stated, and send a fifth of requests without streaming', () => {
  for (const [name, n] of [['tool-agent', 640], ['rag', 1000], ['azure', 2000]] as const) {
    const a = createWorkload(name, { seed: 4 });
    const b = createWorkload(name, { seed: 4 });
    assert.equal(a.requests.length, n, name);
    assert.deepEqual(a.requests.slice(0, 20).map((r) => [r.atMs, r.session, r.stream]), b.requests.slice(0, 20).map((r) => [r.atMs, r.session, r.stream]));
    assert.ok(a.requests.every((r, i) => i === 0 || r.atMs >= a.requests[i - 1].atMs), `${name}: arrivals in order`);
    const share = a.requests.filter((r) => r.stream === false).length / n;
    assert.ok(share > 0.15 && share < 0.25, `${name}: non-streaming share ${share}`);
  }
  const t = createWorkload('tool-agent', { seed: 1, users: 2, turns: 3 });
  const p = t.requests.map((r) => r.prompt());
  assert.ok(p.every((x) => x.tokens!.slice(0, 3000).join() === p[0].tokens!.slice(0, 3000).join()), 'one shared tool preamble');
  const azure = createWorkload('azure', { seed: 1, requests: 50 });
  for (const r of azure.requests.slice(0, 5)) assert.ok(r.prompt().tokens!.length > 0);
});
