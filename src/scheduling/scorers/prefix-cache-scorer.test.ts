import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prefixPredictionOf, predictedCachedTokens } from '../../prefix/prefix-prediction.js';
import { fakeEndpoints, fakeRequest, fakeText } from '../testing/fakes.js';
import { PrefixCacheScorer } from './prefix-cache-scorer.js';

test('prefix-cache-scorer: matched consecutive blocks / total blocks, learns from picks', () => {
  const s = new PrefixCacheScorer('p');
  const eps = fakeEndpoints(3);
  const base = fakeText(64 * 10, 7);
  const first = fakeRequest(base);
  s.onPicked({ request: first, now: 0 }, eps[1]);
  // Same first 6 blocks, then different.
  const second = fakeRequest(base.slice(0, 64 * 6) + fakeText(64 * 4, 99));
  const out = new Float64Array(3);
  s.score({ request: second, now: 0 }, eps, out);
  assert.deepEqual([...out], [0, 0.6, 0]);
  const p = prefixPredictionOf(second)!;
  assert.equal(p.totalBlocks, 10);
  assert.equal(p.anyHit, true);
  assert.equal(predictedCachedTokens(second, eps[1], 10_000), 6 * 16);
  assert.equal(predictedCachedTokens(second, eps[0], 10_000), 0);
});

test('prefix-cache-scorer: short prompt scores 0; different model does not match', () => {
  const s = new PrefixCacheScorer('p');
  const eps = fakeEndpoints(2);
  const out = new Float64Array(2);
  s.score({ request: fakeRequest('hello'), now: 0 }, eps, out);
  assert.deepEqual([...out], [0, 0]);
  const t = fakeText(64 * 4, 3);
  s.onPicked({ request: fakeRequest(t, { model: 'a' }), now: 0 }, eps[0]);
  s.score({ request: fakeRequest(t, { model: 'b' }), now: 0 }, eps, out);
  assert.deepEqual([...out], [0, 0]);
  s.score({ request: fakeRequest(t, { model: 'a' }), now: 0 }, eps, out);
  assert.deepEqual([...out], [1, 0]);
});

test('prefix-cache-scorer: at most maxPrefixBlocksToMatch blocks count', () => {
  const s = new PrefixCacheScorer('p', { maxPrefixBlocksToMatch: 4 });
  const eps = fakeEndpoints(2);
  const t = fakeText(64 * 4, 5);
  s.onPicked({ request: fakeRequest(t), now: 0 }, eps[0]);
  const out = new Float64Array(2);
  s.score({ request: fakeRequest(t + fakeText(64 * 20, 6)), now: 0 }, eps, out);
  assert.deepEqual([...out], [1, 0]);
});
