import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvrError } from '../core/errors.js';
import { referenceHitRates } from './reference-rates.js';
import { startReferencePass } from './reference-pass.js';
import { createWorkload, type WorkloadOptions } from './workloads.js';

test('the reference pass on a worker thread gives the in-process figures, bit for bit', async () => {
  const cases: { name: string; options: WorkloadOptions; capacity: number }[] = [
    // Capacity small enough that both caches evict (the references then differ from each other).
    { name: 'shared-prefix', options: { seed: 3, preset: 'sglang-default', requests: 600 }, capacity: 900 },
    { name: 'multi-turn-chat', options: { seed: 5, users: 12, turns: 4 }, capacity: 400 },
  ];
  for (const c of cases) {
    const inline = referenceHitRates(createWorkload(c.name, c.options), c.capacity, 16);
    const pass = startReferencePass({ workload: c.name, options: c.options, capacityBlocks: c.capacity, blockSize: 16 });
    assert.deepEqual(await pass.result, inline, c.name);
    assert.ok(inline.lru > 0 && inline.opt >= inline.lru - 1e-12, `${c.name}: a meaningful pair ${JSON.stringify(inline)}`);
  }
});

test('a failure in the worker rejects with its KvrError code; cancel stops the worker', async () => {
  const bad = startReferencePass({ workload: 'shared-prefix', options: { seed: 1, rate: [-1] }, capacityBlocks: 100, blockSize: 16 });
  await assert.rejects(bad.result, (err: unknown) => err instanceof KvrError && err.code === 'KVR_ERR_USAGE' && /rates must be positive/.test(err.message));
  const long = startReferencePass({ workload: 'shared-prefix', options: { seed: 1, requests: 200_000 }, capacityBlocks: 1000, blockSize: 16 });
  long.cancel();
  await assert.rejects(long.result, /was cancelled/);
});

test('runBench reports the same with the reference pass on a worker as in process', async () => {
  const { runBench } = await import('./run-bench.js');
  const o = { workload: 'shared-prefix', workloadOptions: { preset: 'sglang-default', requests: 400, rate: [40] }, strategies: ['round-robin', 'kvroute'], engine: 'virtual' as const, replicas: 3, gpuBlocks: 300, seed: 2 };
  const inProcess = await runBench({ ...o, referenceWorker: false });
  const onWorker = await runBench({ ...o, referenceWorker: true });
  assert.ok(inProcess.oracle.hitRate > 0 && inProcess.oracle.optHitRate >= inProcess.oracle.hitRate, JSON.stringify(inProcess.oracle));
  assert.deepEqual({ ...onWorker, wallSeconds: 0 }, { ...inProcess, wallSeconds: 0 });
});
