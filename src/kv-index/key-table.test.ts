import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randInt, seededRng } from '../core/rng.js';
import { KeyTable } from './key-table.js';

test('KeyTable agrees with a Map through growth, deletions (backward shift) and id reuse', () => {
  const rng = seededRng(7);
  let grownTo = 0;
  const t = new KeyTable((n) => (grownTo = n), 4);
  const model = new Map<string, number>();
  const ids = new Set<number>();
  // Few distinct high words and slots, so probe runs collide, wrap and get shifted back on delete.
  const key = (): [number, number, number] => [randInt(rng, 4096) * 0x10001 >>> 0, randInt(rng, 3), randInt(rng, 2)];
  for (let step = 0; step < 60_000; step++) {
    const [a, b, c] = key();
    const k = `${a}/${b}/${c}`;
    const had = model.get(k);
    if (randInt(rng, 3) === 0 && had !== undefined) {
      t.remove(had);
      model.delete(k);
      ids.delete(had);
    } else {
      const id = t.upsert(a, b, c);
      assert.equal(t.inserted, had === undefined);
      if (had !== undefined) assert.equal(id, had);
      else {
        assert.ok(!ids.has(id), 'a new key never gets an id in use');
        model.set(k, id);
        ids.add(id);
      }
    }
    if (step % 5_000 === 0) {
      for (const [mk, id] of model) {
        const [ma, mb, mc] = mk.split('/').map(Number);
        assert.equal(t.find(ma, mb, mc), id);
      }
    }
  }
  assert.equal(t.size, model.size);
  assert.ok(grownTo >= t.size && t.capacity >= t.size, 'owners were told of the id capacity');
  for (const [mk, id] of model) {
    const [ma, mb, mc] = mk.split('/').map(Number);
    assert.equal(t.find(ma, mb, mc), id);
  }
  assert.equal(t.find(0xffffffff, 2, 1), model.get(`${0xffffffff}/2/1`) ?? -1);
  t.clear();
  assert.equal(t.size, 0);
  assert.equal(t.find(1, 0, 0), -1);
});

test('KeyTable keys differ by any of their three words, including words above 2^31', () => {
  const t = new KeyTable(() => undefined);
  const a = t.upsert(0x80000001, 5, 0);
  const b = t.upsert(0x80000001, 5, 1);
  const c = t.upsert(0x80000001, 6, 0);
  const d = t.upsert(1, 5, 0);
  assert.equal(new Set([a, b, c, d]).size, 4);
  assert.equal(t.find(0x80000001, 5, 1), b);
  t.remove(b);
  assert.equal(t.find(0x80000001, 5, 1), -1);
  assert.equal(t.find(0x80000001, 5, 0), a);
  assert.equal(t.find(0x80000001, 6, 0), c);
});
