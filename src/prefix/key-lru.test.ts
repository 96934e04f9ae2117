import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randInt, seededRng } from '../core/rng.js';
import { KeyLru } from './key-lru.js';
import { Lru } from './lru.js';

test('KeyLru evicts exactly what a Map-ordered LRU evicts, through touches and resizes', () => {
  const rng = seededRng(3);
  const evA: number[] = [];
  const evB: number[] = [];
  const a = new KeyLru(50, (k) => evA.push(k));
  const b = new Lru<number, true>(50, (k) => evB.push(k));
  for (let step = 0; step < 40_000; step++) {
    const r = randInt(rng, 100);
    if (r === 0) {
      const c = randInt(rng, 80);
      a.resize(c);
      b.resize(c);
    } else {
      // Keys up to 2^53 - 1, a narrow range so most touches hit held keys.
      const k = randInt(rng, 120) * 2 ** 40 + randInt(rng, 3);
      assert.equal(a.touch(k), b.set(k, true), `touch ${k} at step ${step}`);
    }
    assert.equal(a.size, b.size);
  }
  assert.deepEqual(evA, evB);
  assert.deepEqual(a.keys(), [...b.keys()]);
  assert.ok(evA.length > 1000, 'the run evicted');
});

test('KeyLru with capacity 0 holds nothing and reports the key as evicted; clear forgets silently', () => {
  const ev: number[] = [];
  const l = new KeyLru(0, (k) => ev.push(k));
  assert.equal(l.touch(7), true);
  assert.deepEqual(ev, [7]);
  assert.equal(l.size, 0);
  l.resize(2);
  l.touch(1);
  l.touch(2);
  assert.equal(l.has(1), true);
  l.clear();
  assert.equal(l.size, 0);
  assert.equal(l.has(1), false);
  assert.deepEqual(ev, [7]);
});

test('KeyLru.headIs is true exactly when touching the keys last-to-first would change nothing', () => {
  const rng = seededRng(9);
  const l = new KeyLru(40);
  let trues = 0;
  let last: number[] = [];
  for (let step = 0; step < 20_000; step++) {
    const n = 1 + randInt(rng, 6);
    const start = randInt(rng, 12);
    // Runs of a narrow key pool; a third of the requests repeat the last one, or a prefix of it.
    let keys = Array.from({ length: n }, (_, i) => (start + i) * 2 ** 33 + 7);
    if (randInt(rng, 4) === 0) keys.reverse();
    if (randInt(rng, 3) === 0) keys = last.slice(0, Math.max(1, randInt(rng, last.length + 1)));
    last = keys;
    const before = l.keys();
    const head = l.headIs(keys);
    for (let b = keys.length - 1; b >= 0; b--) l.touch(keys[b]);
    const after = l.keys();
    assert.equal(head, JSON.stringify(before) === JSON.stringify(after), `step ${step}`);
    if (head) trues++;
  }
  assert.ok(trues > 1000 && trues < 19_000, `the run repeated requests (${trues})`);
  assert.equal(l.headIs([1, 1]), false);
});
