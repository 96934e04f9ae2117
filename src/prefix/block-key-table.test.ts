import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randInt, seededRng } from '../core/rng.js';
import { BlockKeyTable } from './block-key-table.js';

test('BlockKeyTable agrees with a Map through inserts, removals (backward shift), growth and id reuse', () => {
  const rng = seededRng(7);
  let grownTo = 0;
  const t = new BlockKeyTable((n) => (grownTo = n), 4);
  const model = new Map<number, number>();
  // Keys from a narrow pool so probe runs collide and removals shift; both halves of the key vary.
  const pool = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? i : randInt(rng, 2 ** 21) * 2 ** 32 + randInt(rng, 2 ** 32)));
  pool.push(Number.MAX_SAFE_INTEGER, 0, 2 ** 32, 2 ** 32 - 1);
  for (let step = 0; step < 60_000; step++) {
    const k = pool[randInt(rng, pool.length)];
    if (randInt(rng, 3) === 0) {
      const id = t.find(k);
      assert.equal(id >= 0, model.has(k), `find ${k} at step ${step}`);
      if (id >= 0) {
        assert.equal(id, model.get(k));
        t.remove(id);
        model.delete(k);
      }
    } else {
      const id = t.upsert(k);
      assert.equal(t.inserted, !model.has(k), `upsert ${k} at step ${step}`);
      if (model.has(k)) assert.equal(id, model.get(k), 'an id is stable while its key is held');
      else {
        assert.ok(![...model.values()].includes(id), 'a new key gets an id not in use');
        model.set(k, id);
      }
      assert.equal(t.keyOf(id), k);
    }
    assert.equal(t.size, model.size);
  }
  for (const [k, id] of model) assert.equal(t.find(k), id);
  for (const k of pool) if (!model.has(k)) assert.equal(t.find(k), -1);
  assert.ok(grownTo >= 256 && t.capacity === grownTo, 'ids grew through onGrow');
  t.clear();
  assert.equal(t.size, 0);
  for (const k of pool) assert.equal(t.find(k), -1);
});

test('BlockKeyTable: a missing key that is not an integer (NaN, a fraction) is simply not found', () => {
  const t = new BlockKeyTable();
  t.upsert(5);
  assert.equal(t.find(Number.NaN), -1);
  assert.equal(t.find(5.5), -1);
  assert.equal(t.find(5), 0);
});
