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

/** The candidate the scorer prefers for a cold request (the first of equals). */
function best(lru: NoHitLruScorer, eps: ReturnType<typeof fakeEndpoints>): number {
  const out = new Float64Array(eps.length);
  lru.score({ request: fakeRequest('cold'), now: 0 }, eps, out);
  return out.indexOf(Math.max(...out));
}

test('no-hit-lru, several routers: a cold pick made by two replicas at once on one endpoint is paid back by the next deal', () => {
  const eps = fakeEndpoints(4);
  const cold = () => ({ request: fakeRequest('cold'), now: 0 });
  const remote = (i: number) => ({ endpoint: eps[i], uncachedTokens: 100, cold: true, now: 0 });
  // The same deals seen by a router that hears of another replica (multi) and by one alone.
  const multi = new NoHitLruScorer('m');
  const single = new NoHitLruScorer('s');
  const deal = (i: number, fromRemote: boolean) => {
    if (fromRemote) multi.applyRemotePick(remote(i));
    else multi.onPicked(cold(), eps[i]);
    single.onPicked(cold(), eps[i]);
  };
  for (const i of [0, 1, 2, 3]) deal(i, i === 0);
  // Collision: another replica and this one both dealt to ep-0 within the sync lag.
  deal(0, true);
  deal(0, false);
  for (const i of [1, 2, 3]) deal(i, false);
  // ep-0 is least recently picked again, but it holds one family more than the others.
  assert.equal(best(single, eps), 0, 'one router: plain LRU (unchanged)');
  assert.equal(best(multi, eps), 1, 'several routers: the least-dealt, least recently picked endpoint');
  deal(1, false);
  assert.equal(best(multi, eps), 2, 'ep-2 and ep-3 still hold fewer deals than ep-0');
  deal(2, false);
  assert.equal(best(multi, eps), 3);
  deal(3, false);
  // Paid back: every endpoint holds 3 of the window's deals; plain LRU again.
  assert.equal(best(multi, eps), 0);
});

test('no-hit-lru, several routers: dealt in turn without collisions, the picks are plain LRU (a full rotation past the window)', () => {
  const eps = fakeEndpoints(5);
  const a = new NoHitLruScorer('a');
  const b = new NoHitLruScorer('b');
  const plain = new NoHitLruScorer('p');
  const cold = () => ({ request: fakeRequest('cold'), now: 0 });
  const order: number[] = [];
  for (let k = 0; k < 3 * 256 + 7; k++) {
    // Routers a and b take turns; each hears of the other's pick at once (no lag).
    const [self, other] = k % 2 === 0 ? [a, b] : [b, a];
    const i = best(self, eps);
    assert.equal(i, best(plain, eps), `deal ${k}`);
    self.onPicked(cold(), eps[i]);
    other.applyRemotePick({ endpoint: eps[i], uncachedTokens: 1, cold: true, now: 0 });
    plain.onPicked(cold(), eps[i]);
    order.push(i);
  }
  assert.deepEqual(order.slice(0, 10), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
});
