import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../core/clock.js';
import { PublisherStart } from './publisher-start.js';

test('a restart found by replay while the signal still names the old process: the next start time is adopted, no second reset', () => {
  const clock = new ManualClock(0);
  const p = new PublisherStart(clock, 10_000);
  p.learn(100);
  assert.equal(p.known, 100);
  p.resetFoundByStream(100); // the scraper has not seen the new process yet
  assert.equal(p.known, undefined);
  p.learn(100);
  assert.equal(p.known, undefined, 'the old start time is not learned back while waiting');
  clock.advance(500);
  assert.equal(p.signalled(200), 'adopted');
  assert.equal(p.known, 200);
  assert.equal(p.signalled(200), 'known');
  assert.equal(p.signalled(300), 'restart', 'a later change is a new restart');
});

test('the signal already names the new process at the reset; after the wait a new start time is a restart', () => {
  const clock = new ManualClock(0);
  const p = new PublisherStart(clock, 10_000);
  p.learn(100);
  p.resetFoundByStream(200);
  assert.equal(p.known, 200);
  assert.equal(p.signalled(200), 'known');
  const q = new PublisherStart(clock, 10_000);
  q.resetFoundByStream(undefined);
  clock.advance(10_001);
  assert.equal(q.signalled(500), 'restart', 'past the wait, nothing is adopted');
  q.set(500);
  assert.equal(q.known, 500);
  q.resetFoundByStream(500);
  clock.advance(10_001);
  q.learn(500);
  assert.equal(q.known, 500, 'after the wait the signal is learned again');
});
