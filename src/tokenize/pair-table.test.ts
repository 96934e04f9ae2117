import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PairTable, UNRESOLVED } from './pair-table.js';

test('PairTable: finds every pair it holds, none it does not; a later rank replaces an earlier one', () => {
  const n = 5000;
  const t = new PairTable(n);
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) pairs.push([(i * 7919) % 1000, (i * 104729) % 1337]);
  const want = new Map<string, number>();
  pairs.forEach(([a, b], rank) => {
    t.set(a, b, rank);
    want.set(`${a},${b}`, rank); // duplicates: the later rank wins, as in the library
  });
  assert.equal(t.size, want.size);
  for (const [key, rank] of want) {
    const [a, b] = key.split(',').map(Number);
    const slot = t.find(a, b);
    assert.ok(slot >= 0, key);
    assert.equal(t.rank(slot), rank);
    assert.equal(t.merged(slot), UNRESOLVED);
  }
  assert.equal(t.find(1000, 0), -1);
  assert.equal(t.find(0, 1337), -1);
  const s = t.find(pairs[0][0], pairs[0][1]);
  t.setMerged(s, 42);
  assert.equal(t.merged(t.find(pairs[0][0], pairs[0][1])), 42);
  // (a, b) and (b, a) are different pairs.
  const u = new PairTable(4);
  u.set(1, 2, 10);
  assert.equal(u.find(2, 1), -1);
  assert.equal(u.rank(u.find(1, 2)), 10);
});
