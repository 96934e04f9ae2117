import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { loadConfig } from '../config/load-config.js';
import { seededRng } from '../core/rng.js';
import { RouterMetrics } from '../metrics/router-metrics.js';
import { createScheduler, type KvrouteScheduler } from '../scheduling/scheduler.js';
import { fakeEndpoints, fakeRequest } from '../scheduling/testing/fakes.js';
import type { Endpoint } from '../core/endpoint.js';
import type { InferenceRequest } from '../core/request.js';
import type { RequestOutcome } from '../scheduling/types.js';
import { OutlierDetector } from './outlier-detector.js';
import { RetryBudget } from './retry-budget.js';
import { RequestLifecycles } from './request-lifecycle.js';
import type { LifecycleSummary } from './types.js';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { buildInferenceRequest } from '../server/openai/parse-request.js';

/** A real scheduler whose hooks are counted. */
function counted(clock: ManualClock): { sched: KvrouteScheduler; calls: string[] } {
  const sched = createScheduler(loadConfig(), { clock, rng: seededRng(3) });
  const calls: string[] = [];
  const orig = { first: sched.onFirstToken.bind(sched), done: sched.onComplete.bind(sched), re: sched.reassign.bind(sched) };
  sched.onFirstToken = (r: InferenceRequest, e: Endpoint) => (calls.push(`first:${e.id}`), orig.first(r, e));
  sched.onComplete = (r: InferenceRequest, e: Endpoint, o: RequestOutcome) => (calls.push(`complete:${e.id}:${o.status}`), orig.done(r, e, o));
  sched.reassign = (r: InferenceRequest, a: Endpoint, b: Endpoint) => (calls.push(`reassign:${a.id}->${b.id}`), orig.re(r, a, b));
  return { sched, calls };
}

function setup(extra: { ttfbTimeoutMs?: number; maxRetries?: number } = {}) {
  const clock = new ManualClock(1000);
  const { sched, calls } = counted(clock);
  const metrics = new RouterMetrics({ clock });
  const ends: LifecycleSummary[] = [];
  const outliers = new OutlierDetector(clock, { consecutiveFailures: 2, baseEjectionMs: 1000 });
  const lcs = new RequestLifecycles({ scheduler: sched, clock, metrics, outliers, retryBudget: new RetryBudget(clock), onEnd: (s) => ends.push(s), upstreamTimeoutMs: 10_000, ...extra });
  const eps = fakeEndpoints(3);
  const inflight = () => eps.reduce((n, e) => n + sched.load.load(e).inflight, 0);
  return { clock, sched, calls, metrics, ends, outliers, lcs, eps, inflight };
}

test('decide-only front end (ext_proc style): decide, dispatch, first token, end — each hook once', async () => {
  const { lcs, eps, calls, ends, inflight, metrics, clock } = setup();
  const lc = lcs.begin({ id: 'r1' });
  const d = await lc.decide(fakeRequest('hello world'), eps);
  assert.equal(inflight(), 1);
  const att = lc.dispatch();
  assert.equal(att.endpoint.id, d.result.endpoint.id);
  clock.advance(40);
  att.firstToken();
  att.firstToken();
  att.chunk();
  clock.advance(60);
  att.end({ status: 200, usage: { promptTokens: 3, cachedTokens: 0, completionTokens: 5 } });
  att.end({ status: 200 });
  lc.abort();
  assert.deepEqual(calls, [`first:${att.endpoint.id}`, `complete:${att.endpoint.id}:200`]);
  assert.equal(ends.length, 1);
  assert.equal(ends[0].outcome, 'ok');
  assert.equal(ends[0].ttftMs, 40);
  assert.equal(ends[0].durationMs, 100);
  assert.equal(inflight(), 0);
  assert.equal(lcs.active, 0);
  assert.match(await metrics.registry.metrics(), /kvroute_inflight_requests\{endpoint="ep-\d"\} 0/);
  assert.deepEqual(await lc.done, ends[0]);
});

test('abort while scheduling: ends at once as 499; the late pick is completed, nothing stays assigned', async () => {
  const { lcs, eps, ends, inflight, sched } = setup();
  const lc = lcs.begin({ id: 'r2' });
  const req = fakeRequest('abort me while scheduling');
  const p = lc.decide(req, eps);
  lc.abort('client closed');
  await assert.rejects(p, /client closed/);
  await new Promise((r) => setImmediate(r));
  assert.equal(ends.length, 1);
  assert.equal(ends[0].status, 499);
  assert.equal(ends[0].outcome, 'aborted');
  assert.equal(inflight(), 0);
  assert.equal(req.signal?.aborted, true, 'the request carries the abort signal to plugins');
  assert.throws(() => lc.dispatch(), /client closed/);
  void sched;
});

test('a retriable failure before any byte moves the request (reassign) and load follows; a failure after a byte is final', async () => {
  const { lcs, eps, calls, ends, inflight, sched } = setup();
  const lc = lcs.begin({ id: 'r3' });
  await lc.decide(fakeRequest('retry me'), eps);
  const a1 = lc.dispatch();
  const a2 = a1.fail({ kind: 'reset', message: 'socket closed' });
  assert.ok(a2 !== undefined);
  assert.notEqual(a2.endpoint.id, a1.endpoint.id);
  assert.equal(a1.signal.aborted, true, 'the failed attempt is closed');
  assert.equal(inflight(), 1);
  assert.equal(sched.load.load(a2.endpoint).inflight, 1);
  a2.firstToken();
  a2.chunk();
  assert.equal(a2.fail({ kind: 'midstream', message: 'died' }), undefined, 'no retry once bytes reached the client');
  assert.equal(ends.length, 1);
  assert.equal(ends[0].outcome, 'upstream-failed');
  assert.equal(ends[0].retries, 1);
  assert.equal(ends[0].error?.code, 'KVR_ERR_UPSTREAM');
  assert.equal(inflight(), 0);
  assert.deepEqual(calls.filter((c) => c.startsWith('complete')).length, 1);
});

test('a 5xx answer before any byte is retried; a 4xx is passed through', async () => {
  const { lcs, eps, ends } = setup();
  const lc = lcs.begin({ id: 'r4' });
  await lc.decide(fakeRequest('status'), eps);
  const a1 = lc.dispatch();
  const a2 = a1.responded(503);
  assert.ok(a2 !== null);
  assert.equal(a2.responded(400), null);
  a2.end({ status: 400 });
  assert.equal(ends[0].outcome, 'upstream-status');
  assert.equal(ends[0].status, 400);
});

test('the time-to-first-byte timer aborts the attempt; classify says ttfb-timeout; the retry gets a fresh timer', async () => {
  const { lcs, eps, clock, ends } = setup({ ttfbTimeoutMs: 500 });
  const lc = lcs.begin({ id: 'r5' });
  await lc.decide(fakeRequest('slow'), eps);
  const a1 = lc.dispatch();
  clock.advance(499);
  assert.equal(a1.signal.aborted, false);
  clock.advance(1);
  assert.equal(a1.signal.aborted, true);
  const f = a1.classify(a1.signal.reason);
  assert.equal(f.kind, 'ttfb-timeout');
  const a2 = a1.fail(f)!;
  clock.advance(300);
  a2.firstToken();
  clock.advance(10_000);
  assert.equal(a2.signal.aborted, true, 'the request timer (10 s) still bounds the whole exchange');
  assert.equal(a2.classify(new Error('aborted')).kind, 'timeout');
  a2.fail(a2.classify(new Error('aborted')));
  assert.equal(ends[0].error?.code, 'KVR_ERR_UPSTREAM_TIMEOUT');
});

test('consecutive failures eject a replica from the candidates of the next decisions', async () => {
  const { lcs, eps, outliers } = setup({ maxRetries: 0 });
  for (let i = 0; i < 2; i++) {
    const lc = lcs.begin({ id: `f${i}` });
    await lc.decide(fakeRequest(`x${i}`, { headers: {} }), [eps[0]]);
    lc.dispatch().fail({ kind: 'connect', message: 'refused' });
  }
  assert.equal(outliers.isEjected(eps[0].id), true);
  const lc = lcs.begin({ id: 'after' });
  const d = await lc.decide(fakeRequest('after'), eps);
  assert.notEqual(d.result.endpoint.id, eps[0].id);
  lc.reject(new Error('done'));
});

test('run(): pre-upstream work is raced against the abort', async () => {
  const { lcs, ends } = setup();
  const lc = lcs.begin({ id: 'r6' });
  const never = new Promise<string>(() => undefined);
  const p = lc.run('tokenize', never);
  lc.abort();
  await assert.rejects(p, (e: Error & { code?: string }) => e.code === 'KVR_ERR_CLIENT_CLOSED');
  assert.equal(ends[0].stage, 'tokenize');
});

test('multi-leg requests (P/D): nextLeg moves the request to the decode endpoint without a retry', async () => {
  const { lcs, eps, ends, inflight, sched } = setup();
  const lc = lcs.begin({ id: 'pd' });
  const d = await lc.decide(fakeRequest('prefill then decode'), eps);
  const prefill = lc.dispatch();
  prefill.firstToken();
  const decodeEp = eps.find((e) => e.id !== d.result.endpoint.id)!;
  const decode = lc.nextLeg(decodeEp);
  assert.equal(prefill.signal.aborted, false, 'a finished leg is not cancelled');
  assert.equal(decode.endpoint.id, decodeEp.id);
  assert.equal(sched.load.load(decodeEp).inflight, 1);
  assert.equal(inflight(), 1);
  decode.firstToken();
  decode.end({ status: 200 });
  assert.equal(ends[0].outcome, 'ok');
  assert.equal(ends[0].retries, 0);
  assert.equal(ends[0].endpoint?.id, decodeEp.id);
  assert.equal(inflight(), 0);
});

test('a request built by the gateway reads its signal from the lifecycle; the request logger is made only when something logs', async () => {
  const { sched, eps, clock, metrics } = setup();
  const made: string[] = [];
  const base = pino({ level: 'warn' }, new Writable({ write: (_c, _e, cb) => cb() }));
  const lcs = new RequestLifecycles({ scheduler: sched, clock, metrics, logger: base });
  const lc = lcs.begin({ id: 'r-sig', log: () => (made.push('log'), base.child({ reqId: 'r-sig' })) });
  const req = buildInferenceRequest('chat', Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })), {}, { id: 'r-sig', clientIp: '1', arrivedAt: 0, defaultMaxTokens: 16 });
  assert.ok(req.signal === undefined, 'no signal before the request is decided');
  await lc.decide(req, eps);
  const sig = req.signal as AbortSignal | undefined;
  assert.equal(req.signal, lc.signal, 'the lifecycle signal, through the prototype getter');
  assert.equal(Object.getOwnPropertyDescriptor(req, 'signal'), undefined, 'no per-request property');
  const att = lc.dispatch();
  att.end({ status: 200 });
  assert.equal(made.length, 0, 'nothing logged at warn: no request logger made');
  const lc2 = lcs.begin({ id: 'r-log', log: () => (made.push('log'), base.child({ reqId: 'r-log' })) });
  await lc2.decide(buildInferenceRequest('chat', Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] })), {}, { id: 'r-log', clientIp: '1', arrivedAt: 0, defaultMaxTokens: 16 }), eps);
  const a = lc2.dispatch();
  assert.ok(a.fail({ kind: 'connect', message: 'refused' }) !== undefined, 'retried (a warning is logged)');
  assert.equal(made.join(), 'log', 'made once, on the first warning');
  lc2.abort();
  lc.abort();
  assert.equal(sig?.aborted, false, 'an ended request is not aborted after the fact');
});
