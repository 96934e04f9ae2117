import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randInt, seededRng } from '../../core/rng.js';
import type { BlockKey } from '../kv-cache-services.js';
import { SpeculativeBlocks } from './speculative-blocks.js';

const keys = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

test('entries expire at their until: sweep removes exactly the expired ones', () => {
  const s = new SpeculativeBlocks(1000);
  s.set('a', keys(0, 4), 100, false);
  s.set('b', keys(10, 3), 150, false);
  s.set('a', keys(4, 2), 200, false);
  assert.equal(s.size, 9);
  s.sweep(99);
  assert.equal(s.size, 9);
  s.sweep(100);
  assert.equal(s.size, 5);
  assert.equal(s.runFrom('a', keys(0, 6), 0, 100), 0);
  assert.equal(s.runFrom('a', keys(4, 2), 0, 100), 2);
  s.sweep(150);
  assert.equal(s.size, 2);
  assert.equal(s.runFrom('b', keys(10, 3), 0, 140), 0, 'swept entries are gone even for an earlier now');
  s.sweep(1000);
  assert.equal(s.size, 0);
  assert.equal(s.queuedRecords, 0);
});

test('a refreshed entry outlives the record of its first expiry', () => {
  const s = new SpeculativeBlocks(1000);
  s.set('a', [1, 2], 100, false);
  s.set('a', [2], 300, false);
  s.sweep(100);
  assert.equal(s.size, 1);
  assert.equal(s.runFrom('a', [2], 0, 250), 1);
  s.sweep(300);
  assert.equal(s.size, 0);
});

test('lowerOnly shortens entries (grace queue) and never lengthens or creates them', () => {
  const s = new SpeculativeBlocks(1000);
  s.set('a', [1, 2, 3], 1000, false);
  s.set('a', [2, 3, 9], 120, true);
  s.set('a', [2], 500, true);
  s.set('z', [1], 100, true);
  assert.equal(s.size, 3, 'key 9 and endpoint z are not created by a shortening');
  assert.equal(s.runFrom('a', [2], 0, 119), 1);
  s.sweep(120);
  assert.equal(s.size, 1);
  assert.equal(s.runFrom('a', [1], 0, 999), 1);
  assert.equal(s.runFrom('a', [2, 3], 0, 0), 0);
  s.sweep(1000);
  assert.equal(s.size, 0);
});

test('removed endpoints and evicted entries leave no wrong deletions behind', () => {
  const s = new SpeculativeBlocks(3);
  s.set('a', keys(0, 5), 100, false); // 0 and 1 evicted (oldest first)
  assert.equal(s.size, 3);
  assert.equal(s.runFrom('a', [0], 0, 0), 0);
  s.set('a', [0], 400, false); // re-added after its eviction (evicting 2): the old record must not delete it
  s.set('b', [7], 100, false);
  s.removeEndpoint('b');
  s.set('b', [7], 400, false);
  s.sweep(100);
  assert.equal(s.size, 2, 'a:3 and a:4 expired; a:0 and b:7 live on');
  assert.equal(s.runFrom('a', [0], 0, 399), 1);
  assert.equal(s.runFrom('b', [7], 0, 399), 1);
  s.sweep(400);
  assert.equal(s.size, 0);
});

test('stale records stay bounded when the same keys are refreshed over and over', () => {
  const s = new SpeculativeBlocks(1_000_000);
  for (let t = 0; t < 400; t++) s.set('a', keys(0, 1000), 1_000_000 + t, false);
  assert.equal(s.size, 1000);
  assert.ok(s.queuedRecords <= 2 * 1000 + 65_536 + 1000, `records ${s.queuedRecords}`);
  s.sweep(1_000_000 + 398);
  assert.equal(s.size, 1000, 'only stale records were due');
  s.sweep(1_000_000 + 399);
  assert.equal(s.size, 0);
});

test('matches a naive model under random writes, shortenings, removals and sweeps', () => {
  const rng = seededRng(42);
  const s = new SpeculativeBlocks(50);
  // Naive model: Map per endpoint, full scan on sweep, same eviction order (insertion order).
  const model = new Map<string, Map<BlockKey, number>>();
  const ttl = 300;
  const grace = 40;
  for (let now = 0; now < 20_000; now += randInt(rng, 7)) {
    const ep = `e${randInt(rng, 3)}`;
    const ks = keys(randInt(rng, 80), 1 + randInt(rng, 12));
    const op = randInt(rng, 10);
    if (op < 6) {
      s.set(ep, ks, now + ttl, false);
      let m = model.get(ep);
      if (!m) model.set(ep, (m = new Map()));
      for (const k of ks) {
        m.delete(k);
        m.set(k, now + ttl);
      }
      while (m.size > 50) m.delete(m.keys().next().value as BlockKey);
    } else if (op < 9) {
      s.set(ep, ks, now + grace, true);
      const m = model.get(ep);
      for (const k of ks) if (m?.has(k) && now + grace < m.get(k)!) m.set(k, now + grace);
    } else if (randInt(rng, 20) === 0) {
      s.removeEndpoint(ep);
      model.delete(ep);
    }
    if (randInt(rng, 4) === 0) {
      s.sweep(now);
      for (const m of model.values()) for (const [k, exp] of m) if (exp <= now) m.delete(k);
      const want = [...model.values()].reduce((n, m) => n + m.size, 0);
      assert.equal(s.size, want, `size at ${now}`);
    }
    for (let k = 0; k < 92; k += 13) {
      const m = model.get(ep);
      const exp = m?.get(k);
      assert.equal(s.runFrom(ep, [k], 0, now), exp !== undefined && exp > now ? 1 : 0, `key ${k} of ${ep} at ${now}`);
    }
  }
});

test('runsFrom gives every candidate what runFrom gives it (chained keys, shared prefixes, duplicates, unknown ids)', () => {
  const rng = seededRng(9);
  const s = new SpeculativeBlocks(400);
  // Prompts = a group prefix (shared) + a tail of their own; keys chained as numbers.
  const prompt = (g: number, q: number, len: number): number[] => Array.from({ length: len }, (_, j) => (j < 6 ? g * 1000 + j : g * 1000 + q * 50 + j));
  const eps = ['e0', 'e1', 'e2', 'e3', 'e4'];
  for (let now = 0; now < 5_000; now += 1 + randInt(rng, 9)) {
    const ks = prompt(randInt(rng, 4), randInt(rng, 6), 2 + randInt(rng, 12));
    const ep = eps[randInt(rng, eps.length)];
    if (randInt(rng, 3) > 0) s.set(ep, ks, now + 100 + randInt(rng, 300), false);
    else s.set(ep, ks, now + randInt(rng, 40), true);
    if (randInt(rng, 10) === 0) s.sweep(now);
    if (randInt(rng, 200) === 0) s.removeEndpoint(eps[randInt(rng, eps.length)]);
    const q = prompt(randInt(rng, 4), randInt(rng, 6), 1 + randInt(rng, 14));
    const cands = Array.from({ length: 1 + randInt(rng, 7) }, () => (randInt(rng, 8) === 0 ? 'unknown' : eps[randInt(rng, eps.length)]));
    const from = Int32Array.from(cands, () => randInt(rng, q.length + 1));
    const got = new Int32Array(cands.length);
    s.runsFrom(cands, q, from, now, got);
    const want = cands.map((id, c) => s.runFrom(id, q, from[c], now));
    assert.deepEqual([...got], want, `at ${now}: ${cands.join(',')} from ${[...from].join(',')}`);
  }
});
