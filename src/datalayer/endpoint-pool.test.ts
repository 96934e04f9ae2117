import test from 'node:test';
import assert from 'node:assert/strict';
import { EndpointPool, normaliseEndpointUrl, parseEndpointList } from './endpoint-pool.js';
import { KvrError } from '../core/errors.js';

test('normalises host:port and URLs', () => {
  assert.deepEqual(normaliseEndpointUrl('10.0.0.5:8000'), { url: 'http://10.0.0.5:8000', address: '10.0.0.5:8000' });
  assert.deepEqual(normaliseEndpointUrl('http://h:81/'), { url: 'http://h:81', address: 'h:81' });
  assert.throws(() => normaliseEndpointUrl('ftp://x:1'), /only http/);
  assert.throws(() => normaliseEndpointUrl('justahost'), /no port/);
});

test('parses endpoint lists with options and rejects unknown ones', () => {
  const specs = parseEndpointList('127.0.0.1:8100, 127.0.0.1:8101;role=prefill;engine=sglang;id=p0');
  assert.deepEqual(specs, [{ url: '127.0.0.1:8100' }, { url: '127.0.0.1:8101', role: 'prefill', engine: 'sglang', id: 'p0' }]);
  assert.throws(() => parseEndpointList('a:1;role=boss'), (e: unknown) => e instanceof KvrError && /role must be one of/.test(e.message));
  assert.throws(() => parseEndpointList('a:1;colour=red'), /unknown option/);
});

test('pool: candidates are healthy endpoints serving the model', () => {
  const pool = new EndpointPool(parseEndpointList('a:1,b:2,c:3'));
  const [a, b, c] = pool.all();
  assert.equal(pool.candidatesFor('m').length, 0, 'endpoints start unhealthy until scraped');
  a.healthy = b.healthy = c.healthy = true;
  a.models = ['m'];
  b.models = ['other'];
  assert.deepEqual(pool.candidatesFor('m').map((e) => e.id), ['a:1', 'c:3']);
  assert.equal(pool.servesModel('nope'), true, 'c has unknown models, so any model may be served');
  c.models = ['m'];
  assert.equal(pool.servesModel('nope'), false);
  assert.deepEqual(pool.models(), ['m', 'other']);
  assert.deepEqual(pool.all().map((e) => e.index), [0, 1, 2]);
});

test('pool rejects an empty list and duplicates with a hint', () => {
  assert.throws(() => new EndpointPool([]), /--endpoints/);
  assert.throws(() => new EndpointPool(parseEndpointList('a:1,a:1')), /listed twice/);
});

test('panic routing: below the threshold, silent endpoints are candidates again; refusing ones never', () => {
  const pool = new EndpointPool(parseEndpointList('a:1,b:1,c:1,d:1'));
  const [a, b, c, d] = pool.all();
  const set = (ep: (typeof pool.all extends () => readonly (infer E)[] ? E : never), healthy: boolean, silent = false) => {
    ep.healthy = healthy;
    ep.health = { live: healthy, loadFresh: healthy, reason: healthy ? '' : 'x', engineSource: 'default', restarts: 0, ...(silent ? { silent } : {}) };
  };
  const events: string[] = [];
  pool.onPanic = (e, healthy, serving) => events.push(`${e} ${healthy}/${serving}`);
  const ids = () => pool.candidatesFor('m').map((e) => e.id);
  set(a, true); set(b, true); set(c, false, true); set(d, false);
  assert.deepEqual(ids(), ['a:1', 'b:1'], '2 of 4 healthy = 50 %: not below the 50 % threshold');
  set(b, false, true);
  assert.deepEqual(ids(), ['a:1', 'b:1', 'c:1'], '1 of 4 healthy: the silent b and c are candidates; d (refusing) is not');
  assert.deepEqual(events, ['entered 1/4', 'routed 1/4']);
  set(a, false, true);
  assert.deepEqual(ids(), ['a:1', 'b:1', 'c:1'], 'none healthy: the silent ones still get traffic instead of a 503');
  set(a, false); set(b, false); set(c, false);
  assert.deepEqual(ids(), [], 'nothing silent (all refuse): no candidates, the caller answers 503');
  assert.equal(events.at(-1), 'left 0/4');
  set(a, false, true);
  pool.panicThresholdPercent = 0;
  assert.deepEqual(ids(), [], 'threshold 0: panic routing off');
});
