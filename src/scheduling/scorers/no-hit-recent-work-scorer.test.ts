import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadTracker } from '../load-tracker.js';
import { fakeEndpoint, fakeEndpoints, fakeRequest, fakeText } from '../testing/fakes.js';
import { NoHitRecentWorkScorer } from './no-hit-recent-work-scorer.js';
import { PrefillCostScorer } from './prefill-cost-scorer.js';
import { PrefixCacheScorer } from './prefix-cache-scorer.js';

const round = (xs: Iterable<number>) => [...xs].map((v) => Math.round(v * 1e6) / 1e6);

/** A prefix scorer and the scorer under test, driven like the scheduler drives them. */
function rig(halfLifeSeconds = 60, minRange = 16) {
  const prefix = new PrefixCacheScorer('p');
  const s = new NoHitRecentWorkScorer('w', new LoadTracker(256), halfLifeSeconds, minRange);
  const eps = fakeEndpoints(3);
  const score = (text: string, now: number) => {
    const req = fakeRequest(text);
    prefix.score({ request: req, now }, eps, new Float64Array(3));
    const out = new Float64Array(3);
    s.score({ request: req, now }, eps, out);
    return { req, out: round(out) };
  };
  const pick = (req: ReturnType<typeof fakeRequest>, i: number, now: number) => {
    prefix.onPicked({ request: req, now }, eps[i]);
    s.onPicked({ request: req, now }, eps[i]);
  };
  return { s, eps, score, pick };
}

test('no-hit-recent-work: cold requests prefer endpoints given less work lately; warm ones are neutral', () => {
  const { s, eps, score, pick } = rig();
  let r = score(fakeText(4 * 1024, 1), 0); // 1,024 tokens
  assert.deepEqual(r.out, [1, 1, 1]);
  pick(r.req, 0, 0); // ep-0: 1024 / 256 + 1 = 5 units
  assert.equal(s.recentWork(eps[0], 0), 5);
  r = score(fakeText(4 * 1024, 2), 0);
  assert.deepEqual(r.out, [1 - 5 / 16, 1, 1]); // under minRange: proportionally less
  // A warm request (it hits ep-0) is neutral, but the work it brings still counts.
  r = score(fakeText(4 * 1024, 1) + ' more', 0);
  assert.deepEqual(r.out, [0, 0, 0]);
  pick(r.req, 0, 0);
  assert.ok(s.recentWork(eps[0], 0) > 6 && s.recentWork(eps[0], 0) < 7, `cached tokens are not work: ${s.recentWork(eps[0], 0)}`);
  // Past minRange the spread is full: 40 cold 1,024-token picks on ep-1 (200 units).
  for (let i = 0; i < 40; i++) pick(score(fakeText(4 * 1024, 100 + i), 0).req, 1, 0);
  r = score(fakeText(4 * 1024, 3), 0);
  assert.equal(r.out[1], 0);
  assert.equal(r.out[2], 1);
});

test('no-hit-recent-work: work halves every half-life; a new endpoint at a reused index starts at 0', () => {
  const { s, eps, score, pick } = rig(10);
  pick(score(fakeText(4 * 2048, 1), 0).req, 2, 0); // 9 units
  assert.equal(s.recentWork(eps[2], 0), 9);
  assert.ok(Math.abs(s.recentWork(eps[2], 10_000) - 4.5) < 1e-9);
  assert.ok(Math.abs(s.recentWork(eps[2], 30_000) - 9 / 8) < 1e-9);
  // Picking later adds to the decayed value, not to the old one.
  pick(score(fakeText(4 * 256, 2), 10_000).req, 2, 10_000); // + 2 units
  assert.ok(Math.abs(s.recentWork(eps[2], 10_000) - 6.5) < 1e-9);
  const replaced = { ...fakeEndpoint(2), id: 'another-pod' };
  assert.equal(s.recentWork(replaced, 10_000), 0);
});

test('prefill-cost uncachedWeight scales only the prefill a miss would add', () => {
  const eps = fakeEndpoints(2);
  const gap = (uncachedWeight: number) => {
    const prefix = new PrefixCacheScorer('p');
    const load = new LoadTracker(256);
    const doc = fakeText(4 * 4096, 7);
    const seed = fakeRequest(doc);
    prefix.score({ request: seed, now: 0 }, eps, new Float64Array(2));
    prefix.onPicked({ request: seed, now: 0 }, eps[0]);
    // ep-0 also has 3 empty requests in flight (3 units of work), ep-1 none.
    for (let i = 0; i < 3; i++) load.onPicked({ request: fakeRequest(''), now: 0 }, eps[0]);
    const req = fakeRequest(doc + ' next question');
    prefix.score({ request: req, now: 0 }, eps, new Float64Array(2));
    const out = new Float64Array(2);
    new PrefillCostScorer('c', load, 1000, uncachedWeight).score({ request: req, now: 0 }, eps, out);
    return (out[0] - out[1]) * 1000; // minRange 1000: the cost difference in work units
  };
  const g1 = gap(1);
  const g2 = gap(2);
  assert.ok(g1 > 0, `the cached endpoint is cheaper despite its load: ${g1}`);
  // cost_1 - cost_0 = w * (uncached_1 - uncached_0) / 256 - 3, so doubling w adds that term once more.
  assert.ok(Math.abs(g2 - (2 * g1 + 3)) < 1e-6, `g1 ${g1}, g2 ${g2}`);
});
