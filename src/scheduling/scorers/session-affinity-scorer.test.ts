import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/clock.js';
import { InMemorySessionStore } from '../session-store.js';
import { fakeEndpoints, fakeRequest } from '../testing/fakes.js';
import { SessionAffinityScorer, sessionTokenFor } from './session-affinity-scorer.js';

function setup(params: ConstructorParameters<typeof SessionAffinityScorer>[2] = {}) {
  const clock = new ManualClock(0);
  const store = new InMemorySessionStore(clock);
  const s = new SessionAffinityScorer('s', store, params);
  const eps = fakeEndpoints(3);
  const score = (req: ReturnType<typeof fakeRequest>) => {
    const out = new Float64Array(3);
    void s.score({ request: req, now: clock.now() }, eps, out);
    return [...out];
  };
  return { clock, store, s, eps, score };
}

test('session-affinity: x-session-token (base64 endpoint id) wins', () => {
  const { score } = setup();
  assert.deepEqual(score(fakeRequest('x', { headers: { 'x-session-token': sessionTokenFor('ep-2') } })), [0, 0, 1]);
  assert.deepEqual(score(fakeRequest('x', { headers: { 'x-session-token': sessionTokenFor('gone') } })), [0, 0, 0]);
});

test('session-affinity: explicit session header binds on pick, refreshed, expires after ttl', () => {
  const { clock, s, eps, score } = setup({ ttlSeconds: 10 });
  const req = fakeRequest('x', { headers: { 'x-session-id': 'abc' } });
  assert.deepEqual(score(req), [0, 0, 0]);
  s.onPicked({ request: req, now: 0 }, eps[1]);
  assert.deepEqual(score(fakeRequest('x', { headers: { 'x-session-id': 'abc' } })), [0, 1, 0]);
  clock.advance(9_000);
  s.onPicked({ request: req, now: clock.now() }, eps[1]); // refresh
  clock.advance(9_000);
  assert.deepEqual(score(fakeRequest('x', { headers: { 'x-session-id': 'abc' } })), [0, 1, 0]);
  clock.advance(1_001);
  assert.deepEqual(score(fakeRequest('x', { headers: { 'x-session-id': 'abc' } })), [0, 0, 0]);
});

test('session-affinity: token takes precedence over the session header', () => {
  const { s, eps, score } = setup();
  s.onPicked({ request: fakeRequest('x', { headers: { 'x-session-id': 'a' } }), now: 0 }, eps[0]);
  assert.deepEqual(score(fakeRequest('x', { headers: { 'x-session-id': 'a', 'x-session-token': sessionTokenFor('ep-1') } })), [0, 1, 0]);
});

test('session-affinity: client IP is off by default, on with clientIp: true', () => {
  const off = setup();
  off.s.onPicked({ request: fakeRequest('x', { clientIp: '198.51.100.7' }), now: 0 }, off.eps[2]);
  assert.deepEqual(off.score(fakeRequest('x', { clientIp: '198.51.100.7' })), [0, 0, 0]);
  const on = setup({ clientIp: true, sessionHeader: 'x-conversation' });
  on.s.onPicked({ request: fakeRequest('x', { clientIp: '198.51.100.7' }), now: 0 }, on.eps[2]);
  assert.deepEqual(on.score(fakeRequest('x', { clientIp: '198.51.100.7' })), [0, 0, 1]);
  on.s.onPicked({ request: fakeRequest('x', { headers: { 'x-conversation': 'c' } }), now: 0 }, on.eps[0]);
  assert.deepEqual(on.score(fakeRequest('x', { headers: { 'x-conversation': 'c' }, clientIp: '198.51.100.7' })), [1, 0, 0]);
});
