import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KV_LINKS, transferMs } from '../sim/pd/transfer-model.js';
import { runPdVirtual } from './pd-virtual-bench.js';
import { pdWorkload } from './pd-workloads.js';

test('virtual P/D run: every request served, prefill pins all released, deterministic for a seed', async () => {
  const w = pdWorkload('mixed', { requests: 24, rate: 8, seed: 3, model: 'm' });
  const o = { profile: 'llama-3.1-8b' as const, link: KV_LINKS.rdma, seed: 3, sloTtftMs: 2000, sloTpotMs: 50 };
  const a = await runPdVirtual(w, { prefill: 1, decode: 1 }, o);
  assert.equal(a.ok, 24);
  assert.equal(a.disaggregated, 24, 'every prompt is far over nonCachedTokens on a cold decode endpoint');
  assert.equal(a.pinsLeft, 0);
  const b = await runPdVirtual(w, { prefill: 1, decode: 1 }, o);
  assert.deepEqual(b, a);
  const agg = await runPdVirtual(w, { prefill: 0, decode: 2 }, o);
  assert.equal(agg.ok, 24);
  assert.equal(agg.disaggregated, 0);
});

test('transfer time: 8B bf16 KV over RDMA and NVLink', () => {
  // 4,000 tokens x 128 KiB = 524 MB: ~10.5 ms at 50 GB/s (+0.5 ms), ~1.2 ms at 450 GB/s.
  assert.ok(Math.abs(transferMs(KV_LINKS.rdma, 4000) - 11.0) < 0.1);
  assert.ok(Math.abs(transferMs(KV_LINKS.nvlink, 4000) - 1.215) < 0.01);
  assert.equal(transferMs(KV_LINKS.rdma, 0), 0);
});
