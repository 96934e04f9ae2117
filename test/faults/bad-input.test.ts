/**
 * Hostile or sloppy input that must cost little and get a clear answer (issue 10 defect 7,
 * issue 11 item 9): long session ids are stored hashed and bounded, `/debug/decisions` rejects an
 * unknown cache filter, a request without `model` gets the only served model, an unknown model is
 * refused before any heavy validation, and a request with 500,000 messages is refused with a
 * clear 400. Each failed on the code before (ids stored verbatim, cache=zzz -> 200, no model ->
 * 400, no bound on messages).
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { ManualClock } from '../../src/core/clock.js';
import { KvrError } from '../../src/core/errors.js';
import { InMemorySessionStore, MAX_SESSION_ID_LENGTH, type SessionStore } from '../../src/scheduling/session-store.js';
import { SessionAffinityScorer } from '../../src/scheduling/scorers/session-affinity-scorer.js';
import { fakeEndpoints, fakeRequest } from '../../src/scheduling/testing/fakes.js';
import { buildInferenceRequest, knownModels, MAX_REQUEST_ITEMS } from '../../src/server/openai/parse-request.js';
import { startSimRouter, SIM_MODEL, type SimRouter } from '../helpers/sim-router.js';

let sim: SimRouter;
before(async () => {
  sim = await startSimRouter(21);
});
after(() => sim.close());

/** A session store that records the keys it is given. */
class RecordingStore implements SessionStore {
  readonly inner = new InMemorySessionStore(new ManualClock(0));
  readonly keys: string[] = [];
  get(key: string) {
    return this.inner.get(key);
  }
  set(key: string, id: string, ttl: number) {
    this.keys.push(key);
    this.inner.set(key, id, ttl);
  }
  delete(key: string) {
    this.inner.delete(key);
  }
}

test('session ids are stored as fixed-size hashes; over-long ids are not bound', () => {
  const store = new RecordingStore();
  const s = new SessionAffinityScorer('s', store);
  const eps = fakeEndpoints(3);
  const long = 'x'.repeat(1_000) + 'tail';
  const req = fakeRequest('p', { headers: { 'x-session-id': long } });
  s.onPicked({ request: req, now: 0 }, eps[2]);
  assert.equal(store.keys.length, 1);
  assert.ok(store.keys[0].length <= 32, `key of ${store.keys[0].length} characters stored for a ${long.length}-character id`);
  assert.ok(!store.keys[0].includes('xxxx'));
  const out = new Float64Array(3);
  void s.score({ request: fakeRequest('p', { headers: { 'x-session-id': long } }), now: 0 }, eps, out);
  assert.deepEqual([...out], [0, 0, 1], 'the hashed binding is found again');
  const out2 = new Float64Array(3);
  void s.score({ request: fakeRequest('p', { headers: { 'x-session-id': 'x'.repeat(1_000) + 'tai1' } }), now: 0 }, eps, out2);
  assert.deepEqual([...out2], [0, 0, 0], 'a different id does not collide');
  const huge = 'y'.repeat(15_000);
  s.onPicked({ request: fakeRequest('p', { headers: { 'x-session-id': huge } }), now: 0 }, eps[1]);
  assert.equal(store.keys.length, 1, `an id over ${MAX_SESSION_ID_LENGTH} characters is not bound`);
});

test('/debug/decisions?cache=zzz is a 400 naming the allowed values', async () => {
  const bad = await request(`${sim.router.adminUrl}/debug/decisions?cache=zzz`);
  const body = (await bad.body.json()) as { error: string };
  assert.equal(bad.statusCode, 400);
  assert.match(body.error, /hit, partial, miss, unknown/);
  const ok = await request(`${sim.router.adminUrl}/debug/decisions?cache=miss`);
  assert.equal(ok.statusCode, 200);
  await ok.body.text();
});

const opts = (models?: string[]) => ({ id: 'r', clientIp: '1.2.3.4', arrivedAt: 0, defaultMaxTokens: 16, ...(models ? { models } : {}) });

test('a request without "model" gets the only served model; with several served, a 400 that lists them', () => {
  const raw = Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }));
  const r = buildInferenceRequest('chat', raw, {}, opts(['only-model']));
  assert.equal(r.model, 'only-model');
  assert.equal(r.body.model, 'only-model', 'the forwarded body names the model');
  assert.throws(
    () => buildInferenceRequest('chat', raw, {}, opts(['a', 'b'])),
    (e: KvrError) => e.status === 400 && e.param === 'model' && /a, b/.test(e.message),
  );
});

test('knownModels: only when every endpoint reported its list', () => {
  assert.deepEqual(knownModels({ all: () => [{ models: ['b', 'a'] }, { models: ['a'] }] }), ['a', 'b']);
  assert.equal(knownModels({ all: () => [{ models: ['a'] }, { models: [] }] }), undefined, 'an endpoint with an unknown list accepts any model');
  const raw = Buffer.from(JSON.stringify({ model: 'anything', messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(buildInferenceRequest('chat', raw, {}, opts([])).model, 'anything', 'no known models: no check');
});

test('an unknown model is refused before the messages are validated or rendered', () => {
  const many = { model: 'nope', messages: Array.from({ length: 500_000 }, () => ({ role: 'user', content: 'a' })) };
  const raw = Buffer.from(JSON.stringify(many));
  assert.throws(() => buildInferenceRequest('chat', raw, {}, opts([SIM_MODEL])), (e: KvrError) => e.code === 'KVR_ERR_UNKNOWN_MODEL' && e.status === 404);
});

test('500,000 tiny messages through the gateway get a clear 400, and the gateway keeps serving', async () => {
  const many = { model: SIM_MODEL, messages: Array.from({ length: 500_000 }, () => ({ role: 'user', content: 'a' })) };
  const res = await request(`${sim.router.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(many), headers: { 'content-type': 'application/json' } });
  const body = (await res.body.json()) as { error: { message: string; param: string } };
  assert.equal(res.statusCode, 400);
  assert.match(body.error.message, new RegExp(`too many messages \\(500000\\); at most ${MAX_REQUEST_ITEMS}`));
  assert.equal(body.error.param, 'messages');
  const ok = await request(`${sim.router.url}/v1/chat/completions`, {
    method: 'POST',
    body: JSON.stringify({ model: SIM_MODEL, messages: Array.from({ length: 50 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `m${i}` })), max_tokens: 2 }),
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(ok.statusCode, 200);
  await ok.body.text();
});
