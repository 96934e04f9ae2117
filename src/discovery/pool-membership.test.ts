import test from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint } from '../core/endpoint.js';
import { EndpointPool } from '../datalayer/endpoint-pool.js';
import { PoolMembership } from './pool-membership.js';
import { podEndpoints } from './pod-endpoints.js';

test('pool add/remove/replace: dense indices reused, changed specs replaced, duplicates rejected whole', () => {
  const pool = new EndpointPool([], { allowEmpty: true, engine: 'sglang' });
  const a = pool.add({ url: '10.0.0.1:8000', id: 'a' });
  const b = pool.add({ url: '10.0.0.2:8000', id: 'b' });
  assert.deepEqual([a.index, b.index, a.engine], [0, 1, 'sglang']);
  assert.equal(pool.remove('a'), a);
  const c = pool.add({ url: '10.0.0.3:8000', id: 'c' });
  assert.equal(c.index, 0, 'freed index reused');
  assert.deepEqual(pool.all().map((e) => e.id), ['c', 'b'], 'all() in index order');
  const r = pool.replace([{ url: '10.0.0.2:8000', id: 'b' }, { url: '10.0.0.3:8000', id: 'c', role: 'decode' }, { url: '10.0.0.4:8000', id: 'd' }]);
  assert.deepEqual(r.removed.map((e) => e.id), ['c'], 'c changed role: replaced');
  assert.deepEqual(r.added.map((e) => e.id).sort(), ['c', 'd']);
  assert.equal(pool.get('b'), b, 'unchanged endpoint keeps its object (and its health, metrics)');
  assert.throws(() => pool.replace([{ url: '1.1.1.1:1', id: 'x' }, { url: '1.1.1.2:1', id: 'x' }]), /listed twice/);
  assert.equal(pool.all().length, 3, 'a rejected snapshot changes nothing');
  assert.throws(() => new EndpointPool([]), /no endpoints given/);
});

test('membership: removed endpoints are untracked, forgotten by the scheduler and the KV index; added ones tracked then subscribed', async () => {
  const pool = new EndpointPool([], { allowEmpty: true });
  const log: string[] = [];
  const m = new PoolMembership({
    pool,
    scraper: { track: async (ep: Endpoint) => void log.push(`track ${ep.id}`), untrack: (ep: Endpoint) => void log.push(`untrack ${ep.id}`) },
    scheduler: { removeEndpoint: (ep: Pick<Endpoint, 'id'>) => void log.push(`forget ${ep.id}`) },
    kvCache: { addEndpoint: (ep: Endpoint) => void log.push(`subscribe ${ep.id}`), removeEndpoint: async (id: string) => void log.push(`drop ${id}`) },
  });
  await m.apply([{ url: '10.0.0.1:8000', id: 'a' }]);
  const done = m.apply([{ url: '10.0.0.2:8000', id: 'b' }]);
  const again = m.apply([{ url: '10.0.0.2:8000', id: 'b' }]);
  await Promise.all([done, again]);
  assert.deepEqual(log, ['track a', 'subscribe a', 'untrack a', 'forget a', 'drop a', 'track b', 'subscribe b']);
  assert.equal(m.changes, 2, 'the repeated snapshot changed nothing');
  await assert.rejects(m.apply([{ url: 'nope' }]), /no port/);
  assert.deepEqual(pool.all().map((e) => e.id), ['b'], 'a bad snapshot leaves the pool as it was');
  await m.apply([]);
  assert.equal(pool.all().length, 0);
});

test('podEndpoints: only Ready pods with an IP and no deletionTimestamp; ranks; active-ports (and the legacy name); role label', () => {
  const pod = (over: object = {}) => ({ metadata: { name: 'p', namespace: 'ns', labels: { 'llm-d.ai/role': 'prefill' } }, status: { podIP: '10.0.0.9', conditions: [{ type: 'Ready', status: 'True' }] }, ...over });
  assert.deepEqual(podEndpoints(pod(), [8000, 8001], { port: 5557 }).map((s) => [s.id, s.url, s.role, s.kvEvents?.endpoint]), [
    ['ns/p-rank-0', 'http://10.0.0.9:8000', 'prefill', 'tcp://10.0.0.9:5557'],
    ['ns/p-rank-1', 'http://10.0.0.9:8001', 'prefill', 'tcp://10.0.0.9:5558'],
  ]);
  assert.deepEqual(podEndpoints(pod({ status: { podIP: '10.0.0.9', conditions: [{ type: 'Ready', status: 'False' }] } }), [8000]), []);
  assert.deepEqual(podEndpoints(pod({ status: { conditions: [{ type: 'Ready', status: 'True' }] } }), [8000]), []);
  assert.deepEqual(podEndpoints(pod({ metadata: { name: 'p', deletionTimestamp: '2026-01-01T00:00:00Z' } }), [8000]), []);
  assert.deepEqual(podEndpoints(pod({ metadata: { name: 'p', namespace: 'ns', annotations: { 'llm-d.ai/active-ports': '8001' } } }), [8000, 8001]).map((s) => s.id), ['ns/p-rank-1']);
  assert.deepEqual(podEndpoints(pod({ metadata: { name: 'p', namespace: 'ns', annotations: { 'inference.networking.k8s.io/active-ports': '8000' } } }), [8000, 8001]).map((s) => s.id), ['ns/p-rank-0']);
});
