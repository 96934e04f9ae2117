import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommonPrefixTracker } from './common-prefix.js';

/** Chained-key stand-in: key j of a prompt = its first j+1 parts joined. */
const keys = (...parts: string[]): string[] => parts.map((_, j) => parts.slice(0, j + 1).join('/'));
const sys = ['s1', 's2', 's3'];

test('a system prompt every request shares becomes common; the conversation-specific part does not', () => {
  const t = new CommonPrefixTracker<string>({ share: 0.5 });
  assert.equal(t.depthThenObserve(keys(...sys, 'u1', 'q1')), 0, 'nothing seen yet');
  assert.equal(t.depthThenObserve(keys(...sys, 'u2', 'q2')), 0, 'one request is not evidence');
  assert.equal(t.depthThenObserve(keys(...sys, 'u3', 'q3')), 3, 'two of two share the system prompt');
  for (let i = 4; i < 30; i++) assert.equal(t.depthThenObserve(keys(...sys, `u${i}`, 'q')), 3);
  // A later turn of user 5 shares more with user 5's earlier request only: still 3.
  assert.equal(t.depth(keys(...sys, 'u5', 'q', 'a', 'q2')), 3);
});

test('group prefixes held by a minority are not common; an identical prompt keeps one block of its own', () => {
  const t = new CommonPrefixTracker<string>({ share: 0.5 });
  for (let i = 0; i < 40; i++) t.observe(keys(`g${i % 4}`, 'x', `q${i}`));
  assert.equal(t.depth(keys('g1', 'x', 'new')), 0, 'each group prefix is in 25 % of requests');
  const same = new CommonPrefixTracker<string>({ share: 0.5 });
  for (let i = 0; i < 10; i++) same.observe(keys('a', 'b', 'c'));
  assert.equal(same.depth(keys('a', 'b', 'c')), 2, 'capped at length - 1');
});

test('the window forgets: a prefix that stops appearing stops being common', () => {
  const t = new CommonPrefixTracker<string>({ share: 0.5, window: 10 });
  for (let i = 0; i < 10; i++) t.observe(keys('old', `q${i}`, 'z'));
  assert.equal(t.depth(keys('old', 'q', 'z')), 1);
  for (let i = 0; i < 10; i++) t.observe(keys('new', `q${i}`, 'z'));
  assert.equal(t.size, 10);
  assert.equal(t.depth(keys('old', 'q', 'z')), 0);
  assert.equal(t.depth(keys('new', 'q', 'z')), 1);
  assert.throws(() => new CommonPrefixTracker({ share: 0 }), /share/);
});

test('block keys in a Float64Array (the batch path) give exactly the depths of the same keys one by one', async () => {
  const { seededRng, randInt } = await import('../core/rng.js');
  const rng = seededRng(21);
  const typed = new CommonPrefixTracker<number>({ share: 0.5, window: 40, maxBlocks: 120 });
  const plain = new CommonPrefixTracker<number>({ share: 0.5, window: 40, maxBlocks: 120 });
  // Prompts from a few families: a shared system part, a family part, a private tail; chained
  // stand-in keys are family-and-position-coded integers (both halves of the 53-bit range used).
  const keyOf = (path: number, j: number): number => ((path * 131 + j) % 2 ** 21) * 2 ** 32 + ((path * 2654435761 + j * 40503) >>> 0);
  let depths = 0;
  for (let r = 0; r < 3000; r++) {
    const fam = randInt(rng, 6);
    const own = 1000 + r;
    const n = 1 + randInt(rng, 150);
    const ks = Array.from({ length: n }, (_, j) => (j < 20 ? keyOf(1, j) : j < 60 ? keyOf(100 + fam, j) : keyOf(own, j)));
    // Now and then a key that is not a block key (a bad remote pick): the batch stops there.
    if (randInt(rng, 50) === 0) ks[randInt(rng, n)] = randInt(rng, 2) === 0 ? Number.NaN : 1.5;
    const a = typed.depthThenObserve(Float64Array.from(ks));
    const b = plain.depthThenObserve(ks);
    assert.equal(a, b, `request ${r}`);
    depths += a;
  }
  assert.ok(depths > 10_000, 'the run found common prefixes');
});
