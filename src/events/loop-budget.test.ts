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

test('measure() charges an async piece the smaller of its wall time and the CPU time spent meanwhile', async () => {
  const clock = new ManualClock(0);
  let cpu = 0;
  const b = new LoopBudget(clock, 0.2, 10, () => cpu);
  // A Redis round trip while the router is idle: 50 ms of wall, 2 ms of CPU.
  const v = await b.measure(async () => {
    clock.advance(50);
    cpu += 2;
    return 'applied';
  });
  assert.equal(v, 'applied');
  assert.equal(b.debtMs(), 0, 'only the 2 ms of CPU were charged (10 + 0.2 x 50 capped at 10, minus 2)');
  // The same call while the process is busy: CPU time (all threads) above the wall time -> the wall time.
  await b.measure(async () => {
    clock.advance(50);
    cpu += 120;
  });
  assert.equal(b.debtMs(), 200, 'refilled to the 10 ms burst, minus 50 = -40 tokens -> 40 / 0.2 = 200 ms of debt');
  // A piece that fails is charged too.
  await assert.rejects(b.measure(async () => {
    cpu += 5;
    throw new Error('sink down');
  }), /sink down/);
  assert.equal(b.debtMs(), 200, 'no wall time passed: min(0, 5) = 0 charged');
});
