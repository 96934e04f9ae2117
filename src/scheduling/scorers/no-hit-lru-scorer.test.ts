import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeEndpoints, fakeRequest, fakeText } from '../testing/fakes.js';
import { NoHitLruScorer } from './no-hit-lru-scorer.js';
import { PrefixCacheScorer } from './prefix-cache-scorer.js';

test('no-hit-lru: cold requests prefer least recently cold-picked endpoints; warm ones are neutral', () => {
  const prefix = new PrefixCacheScorer('p');
  const lru = new NoHitLruScorer('n');
  const eps = fakeEndpoints(3);
  const run = (text: string) => {
    const req = fakeRequest(text);
    const tmp = new Float64Array(3);
    prefix.score({ request: req, now: 0 }, eps, tmp);
    const out = new Float64Array(3);
    lru.score({ request: req, now: 0 }, eps, out);
    return { req, out: [...out] };
  };
  let r = run(fakeText(640, 1));
  assert.deepEqual(r.out, [1, 1, 1]);
  lru.onPicked({ request: r.req, now: 0 }, eps[0]);
  prefix.onPicked({ request: r.req, now: 0 }, eps[0]);
  r = run(fakeText(640, 2));
  assert.deepEqual(r.out, [0, 1, 1]);
  lru.onPicked({ request: r.req, now: 0 }, eps[2]);
  prefix.onPicked({ request: r.req, now: 0 }, eps[2]);
  r = run(fakeText(640, 3));
  assert.deepEqual(r.out, [1 / 3, 1, 0]); // seq: ep-0=1, ep-1=never(-1), ep-2=2
  // A warm request (hits on ep-0): neutral, and its pick does not count as cold.
  r = run(fakeText(640, 1));
  assert.deepEqual(r.out, [0, 0, 0]);
  lru.onPicked({ request: r.req, now: 0 }, eps[1]);
  r = run(fakeText(640, 4));
  assert.deepEqual(r.out, [1 / 3, 1, 0]); // seq: ep-0=1, ep-1=never(-1), ep-2=2
});
