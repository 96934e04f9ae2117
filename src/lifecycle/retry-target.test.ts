import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint } from '../core/endpoint.js';
import { retriableFailure, retryTarget } from './retry-target.js';

const ep = (id: string, healthy: boolean, silent = false): Endpoint => ({ id, healthy, health: { silent } }) as unknown as Endpoint;

test('retriable: connection failures, time-to-first-byte timeouts and the listed statuses only', () => {
  const statuses = new Set([500, 502, 503, 504]);
  for (const kind of ['connect', 'reset', 'ttfb-timeout'] as const) assert.equal(retriableFailure({ kind, message: '' }, statuses), true, kind);
  assert.equal(retriableFailure({ kind: 'status', status: 503, message: '' }, statuses), true);
  assert.equal(retriableFailure({ kind: 'status', status: 400, message: '' }, statuses), false, 'a client error is the client\'s');
  for (const kind of ['timeout', 'midstream', 'request'] as const) assert.equal(retriableFailure({ kind, message: '' }, statuses), false, kind);
});

test('target: the best-ranked healthy candidate not tried and not ejected; a silent one only when no healthy one is left', () => {
  const ranked = [ep('a', true), ep('s', false, true), ep('b', true), ep('dead', false)];
  const none = () => false;
  assert.equal(retryTarget(ranked, new Set(['a']), none)?.id, 'b', 'healthy b before silent s, though s ranks higher');
  assert.equal(retryTarget(ranked, new Set(['a']), (id) => id === 'b')?.id, 's', 'b ejected: the silent one');
  assert.equal(retryTarget(ranked, new Set(['a', 'b', 's']), none), undefined, 'an unhealthy, non-silent endpoint never');
  assert.equal(retryTarget([], new Set(), none), undefined);
});
