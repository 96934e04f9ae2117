import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { OutlierDetector } from './outlier-detector.js';
import { RetryBudget } from './retry-budget.js';

const eps = ['a', 'b', 'c', 'd'].map((id) => ({ id }));

test('outlier detector: N consecutive failures eject; a success resets the count; ejection time grows then decays', () => {
  const clock = new ManualClock(0);
  const o = new OutlierDetector(clock, { consecutiveFailures: 3, baseEjectionMs: 1000, maxEjectionMs: 2500 });
  o.filter(eps);
  o.failure('a');
  o.failure('a');
  o.success('a');
  o.failure('a');
  o.failure('a');
  assert.equal(o.isEjected('a'), false);
  assert.equal(o.failure('a'), true);
  assert.deepEqual(o.filter(eps).map((e) => e.id), ['b', 'c', 'd']);
  clock.advance(1000);
  assert.equal(o.isEjected('a'), false, 'first ejection: base time');
  for (let i = 0; i < 3; i++) o.failure('a');
  clock.advance(1999);
  assert.equal(o.isEjected('a'), true, 'second ejection: 2 x base');
  clock.advance(1);
  assert.equal(o.isEjected('a'), false);
  for (let i = 0; i < 3; i++) o.failure('a');
  clock.advance(2499);
  assert.equal(o.isEjected('a'), true, 'third: capped at max (2.5 s, not 3 s)');
  clock.advance(1);
  clock.advance(10_000); // healthy for a long time: the multiplier decays
  o.success('a');
  for (let i = 0; i < 3; i++) o.failure('a');
  clock.advance(1000);
  assert.equal(o.isEjected('a'), false, 'back to the base time after a calm period');
});

test('outlier detector: at most maxEjectionPercent ejected (at least one); never filters everyone out', () => {
  const clock = new ManualClock(0);
  const o = new OutlierDetector(clock, { consecutiveFailures: 1, maxEjectionPercent: 50 });
  o.filter(eps);
  for (const id of ['a', 'b', 'c', 'd']) o.failure(id);
  assert.deepEqual(o.ejected().sort(), ['a', 'b']);
  assert.deepEqual(o.filter([{ id: 'a' }, { id: 'b' }]).map((e) => e.id), ['a', 'b'], 'panic: all candidates ejected -> all returned');
});

test('retry budget: sustained failures get at most budgetPercent of requests retried, plus the reserve', () => {
  const clock = new ManualClock(0);
  const b = new RetryBudget(clock, { budgetPercent: 20, minRetriesPerSec: 1, windowMs: 10_000 });
  let retried = 0;
  for (let i = 0; i < 10_000; i++) {
    clock.advance(10); // 100 requests/s, each failing once
    b.requestStarted();
    if (b.tryAcquire()) retried++;
    b.requestEnded();
  }
  // 100 s of traffic: 20 % of 10 000 requests, plus the reserve of 1 retry/s (100), plus at most
  // one window of reserve ahead (10): 1.21x the load at worst, never 2x.
  assert.ok(retried >= 2000 && retried <= 2000 + 100 + 10, `retried ${retried}`);
});

test('retry budget: a burst of retries (a replica died) is absorbed from recent volume', () => {
  const clock = new ManualClock(0);
  const b = new RetryBudget(clock);
  for (let i = 0; i < 1000; i++) {
    clock.advance(5);
    b.requestStarted();
  }
  let ok = 0;
  for (let i = 0; i < 60; i++) if (b.tryAcquire()) ok++;
  assert.equal(ok, 60, 'one third of 180 in flight retried at once');
  assert.throws(() => new RetryBudget(clock, { budgetPercent: 120 }), /percent/);
});
