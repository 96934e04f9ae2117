import test from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './clock.js';
import { RingBuffer } from './ring-buffer.js';
import { seededRng } from './rng.js';
import { KvrError, toKvrError } from './errors.js';

test('ManualClock fires timers in time order, FIFO on ties, and honours cancel', () => {
  const c = new ManualClock(100);
  const seen: string[] = [];
  c.setTimeout(() => seen.push('b'), 20);
  c.setTimeout(() => seen.push('a'), 10);
  c.setTimeout(() => seen.push('a2'), 10);
  const t = c.setTimeout(() => seen.push('never'), 15);
  t.cancel();
  c.advance(15);
  assert.deepEqual(seen, ['a', 'a2']);
  assert.equal(c.now(), 115);
  c.setTimeout(() => c.setTimeout(() => seen.push('nested'), 0), 1);
  c.runUntilIdle();
  assert.deepEqual(seen, ['a', 'a2', 'nested', 'b'], 'nested timer due at 116 fires before b at 120');
  assert.equal(c.pending, 0);
});

test('RingBuffer keeps the newest items in order', () => {
  const r = new RingBuffer<number>(3);
  for (let i = 1; i <= 5; i++) r.push(i);
  assert.deepEqual(r.toArray(), [3, 4, 5]);
  assert.equal(r.size, 3);
  assert.throws(() => new RingBuffer(0));
});

test('seededRng is deterministic per seed and different across seeds', () => {
  const a = seededRng(1), b = seededRng(1), c = seededRng(2);
  const xs = [a.next(), a.next(), a.next()];
  assert.deepEqual(xs, [b.next(), b.next(), b.next()]);
  assert.notDeepEqual(xs, [c.next(), c.next(), c.next()]);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
});

test('KvrError maps codes to statuses and OpenAI bodies', () => {
  const e = new KvrError('KVR_ERR_NO_ENDPOINT', 'none');
  assert.equal(e.status, 503);
  assert.equal(e.toOpenAI().error.type, 'service_unavailable');
  const w = toKvrError(new TypeError('boom'));
  assert.equal(w.code, 'KVR_ERR_INTERNAL');
  assert.equal(w.status, 500);
  assert.equal(toKvrError(e), e);
});
