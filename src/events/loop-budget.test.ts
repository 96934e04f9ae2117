import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../core/clock.js';
import { LoopBudget } from './loop-budget.js';

test('work within the share goes on at once; past it, turn() waits until the debt is paid back', async () => {
  const clock = new ManualClock(1000);
  const b = new LoopBudget(clock, 0.2, 20);
  b.charge(15);
  assert.equal(b.debtMs(), 0, 'within the burst');
  b.charge(45); // 60 ms of work: 40 ms over
  assert.equal(b.debtMs(), 200, '40 ms of debt at 0.2 ms per ms = 200 ms');
  let done = false;
  const t = b.turn().then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  clock.advance(199);
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false, 'still waiting');
  clock.advance(1);
  await t;
  assert.equal(done, true);
  assert.equal(b.debtMs(), 0);
  assert.equal(b.throttledMs, 200);
});

test('run() charges the time a synchronous piece took; tokens refill up to the burst only', () => {
  const clock = new ManualClock(0);
  const b = new LoopBudget(clock, 0.5, 10);
  const v = b.run(() => {
    clock.advance(30);
    return 7;
  });
  assert.equal(v, 7);
  // A share of wall time: 10 tokens - 30 ms of work + 0.5 x 30 accrued while it ran = -5 -> 10 ms at 0.5.
  assert.equal(b.debtMs(), 10);
  clock.advance(10_000);
  b.charge(15);
  assert.equal(b.debtMs(), 10, 'a long idle period refills to the burst, not beyond');
  assert.throws(() => b.run(() => {
    clock.advance(4);
    throw new Error('boom');
  }), /boom/);
  assert.equal(b.debtMs(), 14, 'a piece that throws is charged too (-5 - 4 + 0.5 x 4 = -7)');
});

test('the share must be in (0, 1]', () => {
  const clock = new ManualClock(0);
  assert.throws(() => new LoopBudget(clock, 0), /share must be in \(0, 1\]/);
  assert.throws(() => new LoopBudget(clock, 1.5), /share must be in \(0, 1\]/);
  assert.throws(() => new LoopBudget(clock, Number.NaN), /share/);
});
