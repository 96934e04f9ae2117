import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeEndpoint, fakeEndpoints, fakeText } from '../scheduling/testing/fakes.js';
import { ApproxPrefixIndex, MAX_PENDING_KEYS } from './approx-prefix-index.js';
import { TextBlockHasher } from './text-block-hasher.js';

const run = (idx: ApproxPrefixIndex, keys: ArrayLike<number>, eps: ReturnType<typeof fakeEndpoints>): number[] => {
  const out = new Int32Array(eps.length);
  idx.longestPrefix(keys, eps, out);
  return [...out];
};

test('longest CONSECUTIVE prefix: a hole stops the run', () => {
  const idx = new ApproxPrefixIndex(100);
  const eps = fakeEndpoints(3);
  idx.add(eps[0], [1, 2, 3, 4]);
  idx.add(eps[1], [1, 2, 9, 4]); // holds 1,2 then differs
  idx.add(eps[2], [2, 3, 4]); // no root block
  assert.deepEqual(run(idx, [1, 2, 3, 4, 5], eps), [4, 2, 0]);
  assert.deepEqual(run(idx, [7, 2, 3], eps), [0, 0, 0]);
});

test('eviction keeps the global map consistent (tail evicted before root)', () => {
  const idx = new ApproxPrefixIndex(3);
  const [a, b] = fakeEndpoints(2);
  idx.add(a, [1, 2, 3]);
  idx.add(b, [1, 2, 3]);
  assert.deepEqual([...idx.holdersOf(1)].sort(), [0, 1]);
  idx.add(a, [10, 11]); // a's LRU holds 3 keys: evicts its least recent (3, then 2)
  assert.equal(idx.blocksOf(a), 3);
  assert.deepEqual([...idx.holdersOf(3)], [1]);
  assert.deepEqual([...idx.holdersOf(2)], [1]);
  assert.deepEqual([...idx.holdersOf(1)].sort(), [0, 1]);
  assert.deepEqual(run(idx, [1, 2, 3], [a, b]), [1, 3]);
  idx.removeEndpoint(b);
  assert.deepEqual([...idx.holdersOf(3)], []);
  assert.equal(idx.size, 3); // 1, 10, 11 held by a only
});

test('capacity comes from numGpuBlocks when reported, else the default, and follows changes', () => {
  const idx = new ApproxPrefixIndex(50);
  const reported = fakeEndpoint(0, { numGpuBlocks: 4 });
  const unknown = fakeEndpoint(1);
  idx.add(reported, [1, 2, 3, 4, 5, 6]);
  idx.add(unknown, [1, 2, 3, 4, 5, 6]);
  assert.equal(idx.capacityOf(reported), 4);
  assert.equal(idx.blocksOf(reported), 4);
  assert.equal(idx.capacityOf(unknown), 50);
  reported.metrics = { ...reported.metrics, numGpuBlocks: 2 };
  idx.add(reported, [1]);
  assert.equal(idx.capacityOf(reported), 2);
  assert.equal(idx.blocksOf(reported), 2);
  // Only the root survives plus the re-added key; global map agrees.
  let held = 0;
  for (let k = 1; k <= 6; k++) if (idx.holdersOf(k).includes(0)) held++;
  assert.equal(held, 2);
});

test('an index slot reused by another endpoint id never matches the old blocks', () => {
  const idx = new ApproxPrefixIndex(10);
  idx.add(fakeEndpoint(0, {}, 'old'), [1, 2]);
  const newcomer = fakeEndpoint(0, {}, 'new');
  assert.deepEqual(run(idx, [1, 2], [newcomer]), [0]);
  idx.add(newcomer, [5]);
  assert.deepEqual([...idx.holdersOf(1)], []);
});

test('memory stays bounded by the sum of capacities under churn', () => {
  const idx = new ApproxPrefixIndex(64);
  const eps = fakeEndpoints(4);
  const h = new TextBlockHasher(64, 16);
  for (let r = 0; r < 500; r++) idx.add(eps[r % 4], h.hash('m', fakeText(64 * 16, r)));
  assert.ok(idx.size <= 4 * 64, `size ${idx.size}`);
  for (const e of eps) assert.equal(idx.blocksOf(e), 64);
});

test('TextBlockHasher: chained keys, model-seeded, full blocks only, capped', () => {
  const h = new TextBlockHasher(64, 4);
  const t = fakeText(64 * 6 + 10, 1);
  const k1 = h.hash('m', t);
  assert.equal(k1.length, 4);
  assert.deepEqual([...h.hash('m', t)], [...k1]);
  assert.notDeepEqual([...h.hash('other', t)], [...k1]);
  // Same first block, different second: first key equal, second differs.
  const u = t.slice(0, 64) + 'X' + t.slice(65);
  const k2 = h.hash('m', u);
  assert.equal(k2[0], k1[0]);
  assert.notEqual(k2[1], k1[1]);
  // Chaining: identical block 2 after different block 1 still differs.
  assert.notEqual(k2[2], k1[2]);
  assert.equal(h.hash('m', 'short').length, 0);
  for (const k of k1) assert.ok(Number.isSafeInteger(k));
});

test('upkeep only where read: unread picks are queued, bounded per endpoint, and a read sees the newest of them', () => {
  const idx = new ApproxPrefixIndex(1_000_000);
  const [a, b] = fakeEndpoints(2);
  // 2,000 picks of 64 fresh keys each on a, never read: only the newest 8,192 keys' picks stay queued.
  for (let p = 0; p < 2_000; p++) idx.add(a, Array.from({ length: 64 }, (_, i) => p * 64 + i + 1));
  idx.add(b, [5, 6]);
  assert.equal(idx.blocksOf(a), MAX_PENDING_KEYS, 'the newest picks covering the bound were applied');
  const newest = Array.from({ length: 64 }, (_, i) => 1_999 * 64 + i + 1);
  assert.deepEqual(run(idx, newest, [a, b]), [64, 0]);
  assert.deepEqual(run(idx, [1, 2], [a, b]), [0, 0], 'the oldest picks were dropped unapplied');
  assert.deepEqual(run(idx, [5, 6], [a, b]), [0, 2]);
  // A removed endpoint's queued picks go with it; reads in between keep upkeep exact.
  idx.add(b, [7]);
  idx.removeEndpoint(b);
  assert.equal(idx.blocksOf(b), 0);
  assert.deepEqual([...idx.holdersOf(7)], []);
});
