import test from 'node:test';
import assert from 'node:assert/strict';
import { sliceBatch } from './batch-slicer.js';
import type { BlockStoredEvent, KvEventBatch } from './types.js';

const stored = (n: number, parent: bigint | null): BlockStoredEvent => ({
  type: 'BlockStored',
  blockHashes: Array.from({ length: n }, (_, i) => 100n + BigInt(i)),
  parentBlockHash: parent,
  tokenIds: Array.from({ length: n * 2 }, (_, i) => i),
  blockSize: 2,
  loraId: null,
  medium: 'GPU',
  loraName: null,
});
const b = (events: KvEventBatch['events']): KvEventBatch => ({ ts: 5, events, dataParallelRank: 1 });

test('a BlockStored is cut at block boundaries; each slice chains on the previous slice', () => {
  const { slices, blocks, oversizedEvents } = sliceBatch(b([stored(5, 7n)]), 2, 100);
  assert.equal(blocks, 5);
  assert.equal(oversizedEvents, 0);
  assert.equal(slices.length, 3);
  const parts = slices.map((s) => s.events[0] as BlockStoredEvent);
  assert.deepEqual(parts.map((p) => p.blockHashes), [[100n, 101n], [102n, 103n], [104n]]);
  assert.deepEqual(parts.map((p) => p.parentBlockHash), [7n, 101n, 103n]);
  assert.deepEqual(parts.map((p) => p.tokenIds), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  for (const s of slices) assert.equal(s.ts, 5);
});

test('small events share a slice; removals are cut too; events over the cap are dropped and counted', () => {
  const { slices, oversizedEvents } = sliceBatch(
    b([stored(1, null), { type: 'BlockRemoved', blockHashes: [1n, 2n, 3n], medium: null }, { type: 'AllBlocksCleared' }, stored(9, null)]),
    3,
    8,
  );
  assert.equal(oversizedEvents, 1);
  assert.deepEqual(slices.map((s) => s.events.map((e) => e.type)), [['BlockStored', 'BlockRemoved'], ['BlockRemoved', 'AllBlocksCleared']]);
});

test('an empty batch is one empty slice (its sequence number still counts)', () => {
  assert.deepEqual(sliceBatch(b([]), 4, 4).slices, [b([])]);
});
