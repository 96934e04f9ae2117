import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadTracker } from '../load-tracker.js';
import { fakeEndpoints, fakeRequest } from '../testing/fakes.js';
import { InflightLoadScorer } from './inflight-load-scorer.js';

function scoresWithWork(work: number[], minRange: number): number[] {
  const load = new LoadTracker(256);
  const eps = fakeEndpoints(work.length);
  // work units = in-flight requests with empty prompts (1 unit each)
  work.forEach((w, i) => {
    for (let k = 0; k < w; k++) load.onPicked({ request: fakeRequest(''), now: 0 }, eps[i]);
  });
  const s = new InflightLoadScorer('l', load, minRange);
  const out = new Float64Array(eps.length);
  s.score({ request: fakeRequest('x'), now: 0 }, eps, out);
  return [...out].map((v) => Math.round(v * 1e6) / 1e6);
}

test('inflight-load-scorer: pure min-max with minRange 0', () => {
  assert.deepEqual(scoresWithWork([0, 2, 4], 0), [1, 0.5, 0]);
  assert.deepEqual(scoresWithWork([3, 3], 0), [1, 1]);
  assert.deepEqual(scoresWithWork([1, 0], 0), [0, 1]);
});

test('inflight-load-scorer: the floor on the range makes small gaps cost little', () => {
  assert.deepEqual(scoresWithWork([0, 1, 4], 16), [1, 0.9375, 0.75]);
  assert.deepEqual(scoresWithWork([0, 32], 16), [1, 0]);
  assert.deepEqual(scoresWithWork([5, 5, 5], 16), [1, 1, 1]);
});

test('inflight-load-scorer counts uncomputed prefill tokens as work', () => {
  const load = new LoadTracker(256);
  const eps = fakeEndpoints(2);
  load.onPicked({ request: fakeRequest('x'.repeat(4 * 512)), now: 0 }, eps[0]); // 512 tokens -> 2 + 1 units
  assert.equal(load.work(eps[0]), 3);
  const s = new InflightLoadScorer('l', load, 0);
  const out = new Float64Array(2);
  s.score({ request: fakeRequest('x'), now: 0 }, eps, out);
  assert.deepEqual([...out], [0, 1]);
});
