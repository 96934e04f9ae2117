import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng } from '../../core/rng.js';
import { fakeEndpoints, fakeRequest } from '../testing/fakes.js';
import { MaxScorePicker } from './max-score-picker.js';
import { RandomPicker } from './random-picker.js';
import { RoundRobinPicker } from './round-robin-picker.js';

const ctx = { request: fakeRequest('x'), now: 0 };

test('max-score-picker: top total first, the rest ranked by total', () => {
  const p = new MaxScorePicker('m', seededRng(1));
  assert.deepEqual(p.pick(ctx, fakeEndpoints(4), Float64Array.from([1, 3, 2, 0.5])), [1, 2, 0, 3]);
});

test('max-score-picker: ties broken with the rng, deterministic per seed, different across seeds', () => {
  const eps = fakeEndpoints(4);
  const totals = Float64Array.from([2, 5, 5, 5]);
  const winners = (seed: number) => {
    const p = new MaxScorePicker('m', seededRng(seed));
    return Array.from({ length: 12 }, () => p.pick(ctx, eps, totals)[0]);
  };
  const a = winners(1);
  assert.deepEqual(winners(1), a);
  for (const w of a) assert.ok(w >= 1 && w <= 3, 'winner among the ties only');
  assert.ok(new Set(a).size > 1, 'ties spread');
  let differs = false;
  for (let seed = 2; seed < 6 && !differs; seed++) differs = winners(seed).join() !== a.join();
  assert.ok(differs, 'another seed gives other winners');
  const first = new MaxScorePicker('m', seededRng(1)).pick(ctx, eps, totals);
  assert.equal(first.length, 4);
  assert.equal(first[3], 0);
});

test('random-picker: a permutation, deterministic per seed', () => {
  const eps = fakeEndpoints(5);
  const t = new Float64Array(5);
  const a = new RandomPicker('r', seededRng(3)).pick(ctx, eps, t);
  assert.deepEqual([...a].sort(), [0, 1, 2, 3, 4]);
  assert.deepEqual(new RandomPicker('r', seededRng(3)).pick(ctx, eps, t), a);
});

test('round-robin-picker: rotates', () => {
  const p = new RoundRobinPicker();
  const eps = fakeEndpoints(3);
  const t = new Float64Array(3);
  assert.deepEqual(p.pick(ctx, eps, t), [0, 1, 2]);
  assert.deepEqual(p.pick(ctx, eps, t), [1, 2, 0]);
  assert.deepEqual(p.pick(ctx, eps, t), [2, 0, 1]);
  assert.deepEqual(p.pick(ctx, eps, t), [0, 1, 2]);
});

test('max-score-picker: large candidate sets are ranked exactly as the comparator sort ranks them', () => {
  const rng = seededRng(7);
  for (const n of [31, 32, 33, 48, 200, 1000]) {
    const eps = fakeEndpoints(n);
    for (let round = 0; round < 20; round++) {
      // Few distinct values (many ties), or all distinct, or all equal.
      const distinct = round % 3 === 0 ? 1 : round % 3 === 1 ? 5 : n;
      const totals = Float64Array.from({ length: n }, () => Math.floor(rng.next() * distinct) / 7);
      const order = new MaxScorePicker('m', seededRng(round)).pick(ctx, eps, totals);
      const winner = order[0];
      const want = Array.from({ length: n }, (_, i) => i).filter((i) => i !== winner);
      want.sort((a, b) => totals[b] - totals[a] || a - b);
      assert.deepEqual(order, [winner, ...want], `n ${n} round ${round}`);
      assert.equal(totals[winner], Math.max(...totals));
    }
  }
});
