import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeEndpoints } from '../scheduling/testing/fakes.js';
import { ApproxPrefixIndex } from './approx-prefix-index.js';

/** Conversation c's first prompt: 8 chained keys unique to it. */
const conv = (c: number): number[] => Array.from({ length: 8 }, (_, i) => c * 1000 + i);

function matched(idx: ApproxPrefixIndex, keys: number[], eps: ReturnType<typeof fakeEndpoints>): number[] {
  const out = new Int32Array(eps.length);
  idx.longestPrefix(keys, eps, out);
  return [...out];
}

test('llama.cpp slots: 6 conversations on 2 servers x 2 slots, the slot LRU decides which follow-ups hit', () => {
  const eps = fakeEndpoints(2);
  for (const ep of eps) ep.cacheModel = { kind: 'slots', slots: 2 };
  const idx = new ApproxPrefixIndex();
  // Sticky routing: conversations 0,1,2 on server 0; 3,4,5 on server 1.
  for (let c = 0; c < 6; c++) idx.add(eps[c < 3 ? 0 : 1], conv(c));
  // Each server's 2 slots hold its last 2 conversations; the first one's slot was reused.
  assert.deepEqual(matched(idx, conv(0), eps), [0, 0], 'conversation 0 was evicted from server 0 (slot LRU)');
  assert.deepEqual(matched(idx, conv(1), eps), [8, 0]);
  assert.deepEqual(matched(idx, conv(2), eps), [8, 0]);
  assert.deepEqual(matched(idx, conv(3), eps), [0, 0]);
  assert.equal(idx.slotsOf(eps[0]), 2);
  // A follow-up extends its conversation in the same slot: it does not evict the other slot.
  idx.add(eps[0], [...conv(1), 77, 78]);
  assert.deepEqual(matched(idx, conv(2), eps), [8, 0]);
  assert.deepEqual(matched(idx, [...conv(1), 77, 78], eps), [10, 0]);
});

test('paged engines keep every conversation (the old model, which over-predicted llama.cpp)', () => {
  const eps = fakeEndpoints(2);
  const idx = new ApproxPrefixIndex();
  for (let c = 0; c < 6; c++) idx.add(eps[c < 3 ? 0 : 1], conv(c));
  assert.deepEqual(matched(idx, conv(0), eps), [8, 0]);
});

test('a cache model detected late (blocks -> slots) starts the endpoint over; removeEndpoint drops slot keys', () => {
  const eps = fakeEndpoints(1);
  const idx = new ApproxPrefixIndex();
  idx.add(eps[0], conv(0));
  eps[0].cacheModel = { kind: 'slots', slots: 1 };
  idx.add(eps[0], conv(1));
  assert.deepEqual(matched(idx, conv(0), eps), [0]);
  assert.deepEqual(matched(idx, conv(1), eps), [8]);
  idx.removeEndpoint(eps[0]);
  assert.deepEqual(matched(idx, conv(1), eps), [0]);
  assert.equal(idx.size, 0);
});

test('learned capacity: a predicted hit the engine recomputed shrinks the endpoint, confirmed hits grow it back', () => {
  const eps = fakeEndpoints(1);
  const idx = new ApproxPrefixIndex(1000);
  // 20 conversations of 8 blocks = 160 blocks held; the engine really keeps fewer.
  for (let c = 0; c < 20; c++) idx.add(eps[0], conv(c));
  assert.deepEqual(matched(idx, conv(0), eps), [8], 'modelled as held');
  idx.observe(eps[0], 8, 0); // the engine recomputed conversation 0 ...
  idx.observe(eps[0], 8, 1);
  assert.equal(idx.learnedCapacityOf(eps[0]), undefined, 'one or two false hits may be in-flight siblings');
  idx.observe(eps[0], 8, 0); // ... three in a row: it keeps less than modelled
  assert.equal(idx.learnedCapacityOf(eps[0]), 144, '90 % of the 160 blocks held');
  assert.equal(idx.blocksOf(eps[0]), 144);
  assert.deepEqual(matched(idx, conv(0), eps), [0], 'the least recently used conversations are forgotten');
  assert.deepEqual(matched(idx, conv(19), eps), [8]);
  idx.observe(eps[0], 8, 8); // a confirmed hit
  assert.equal(idx.learnedCapacityOf(eps[0]), 147, 'ceil(144 x 1.01) + 1');
  idx.observe(eps[0], 8, 7.5); // within 80 %: confirmed
  assert.ok(idx.learnedCapacityOf(eps[0])! > 147);
  idx.observe(eps[0], 2, 0); // too small a prediction to learn from
  assert.ok(idx.learnedCapacityOf(eps[0])! > 147);
  idx.removeEndpoint(eps[0]);
  assert.equal(idx.learnedCapacityOf(eps[0]), undefined);
  // An engine that reports its capacity (vLLM num_gpu_blocks) keeps it.
  const vllm = fakeEndpoints(1);
  vllm[0].metrics = { ...vllm[0].metrics, numGpuBlocks: 1000 };
  for (let c = 0; c < 20; c++) idx.add(vllm[0], conv(c));
  for (let i = 0; i < 5; i++) idx.observe(vllm[0], 8, 0);
  assert.equal(idx.learnedCapacityOf(vllm[0]), undefined);
});
