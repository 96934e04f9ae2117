import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { InMemorySessionStore } from './session-store.js';

test('InMemorySessionStore: TTL through the injected clock', () => {
  const clock = new ManualClock(100);
  const s = new InMemorySessionStore(clock);
  s.set('k', 'ep-1', 1000);
  assert.equal(s.get('k'), 'ep-1');
  clock.advance(999);
  assert.equal(s.get('k'), 'ep-1');
  clock.advance(1);
  assert.equal(s.get('k'), undefined);
  assert.equal(s.size, 0);
});

test('InMemorySessionStore: set refreshes; bounded size; delete', () => {
  const clock = new ManualClock(0);
  const s = new InMemorySessionStore(clock, 2);
  s.set('a', 'x', 100);
  clock.advance(90);
  s.set('a', 'y', 100);
  clock.advance(90);
  assert.equal(s.get('a'), 'y');
  s.set('b', 'x', 100);
  s.set('c', 'x', 100);
  assert.equal(s.size, 2);
  assert.equal(s.get('a'), undefined);
  s.delete('b');
  assert.equal(s.get('b'), undefined);
});
