import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchParents } from './batch-parents.js';

test('BatchParents: later stores win, past the scan budget too (folded into a map), and clear forgets', () => {
  const p = new BatchParents();
  assert.equal(p.get(1n), undefined);
  p.add([1n, 2n], [10, 20]);
  p.add([2n, 3n], [21, 30]);
  assert.equal(p.get(2n), 21, 'the later store of hash 2 wins');
  assert.equal(p.get(1n), 10, 'a non-last block of an earlier event resolves');
  // Many events: lookups of early hashes go past the scan budget and fold the older events.
  for (let e = 0; e < 500; e++) p.add([BigInt(1000 + e * 2), BigInt(1001 + e * 2)], [e * 2, e * 2 + 1]);
  assert.equal(p.get(1n), 10);
  assert.equal(p.get(2n), 21, 'folding keeps store order');
  assert.equal(p.get(1001n), 1);
  p.add([1n], [11]);
  assert.equal(p.get(1n), 11, 'a store after the fold still wins');
  assert.equal(p.get(1999n), 999);
  assert.equal(p.get(5n), undefined);
  p.clear();
  assert.equal(p.get(1n), undefined);
  assert.equal(p.get(1999n), undefined);
});
