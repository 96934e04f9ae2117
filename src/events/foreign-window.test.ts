import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { FOREIGN_LOG_MS, ForeignWindow } from './foreign-window.js';

test('after a foreign message, higher numbers are covered for the window only; warnings are rate-limited', () => {
  const clock = new ManualClock(0);
  const w = new ForeignWindow(clock, 1000);
  assert.equal(w.covers(10n), false, 'nothing found yet');
  assert.equal(w.found(100n), true, 'the first finding is logged');
  assert.equal(w.covers(99n), false, 'below the foreign number: judged as usual');
  assert.equal(w.covers(100n), true);
  assert.equal(w.covers(5000n), true);
  clock.advance(1000);
  assert.equal(w.covers(5000n), false, 'the window is over: ask the replay again');
  assert.equal(w.covers(5000n), false);
  assert.equal(w.found(200n), false, 'a second finding within the log interval is not logged');
  w.reset();
  assert.equal(w.covers(300n), false, 'reset closes the window');
  clock.advance(FOREIGN_LOG_MS);
  assert.equal(w.found(400n), true, 'logged again after the interval');
});
