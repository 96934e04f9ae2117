import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointMetrics } from '../../core/endpoint.js';
import { fakeEndpoint, fakeRequest } from '../testing/fakes.js';
import { KvCacheUtilizationScorer } from './kv-cache-utilization-scorer.js';
import { LoadAwareScorer } from './load-aware-scorer.js';
import { QueueScorer } from './queue-scorer.js';
import type { Scorer } from '../types.js';

function scores(s: Scorer, metrics: Partial<EndpointMetrics>[]): number[] {
  const eps = metrics.map((m, i) => fakeEndpoint(i, m));
  const out = new Float64Array(eps.length);
  void s.score({ request: fakeRequest('x'), now: 0 }, eps, out);
  return [...out].map((v) => Math.round(v * 1e6) / 1e6);
}

test('kv-utilization: unknown usage (llama.cpp) is neutral, not 0 or 1', () => {
  const s = new KvCacheUtilizationScorer();
  // The llama.cpp server holding the cache reports a "full" cache: before, it scored 0.07 vs 1.
  assert.deepEqual(scores(s, [{ kvUsage: 0, kvUsageUnknown: true }, { kvUsage: 0, kvUsageUnknown: true }]), [1, 1]);
  assert.deepEqual(scores(s, [{ kvUsage: 0.2 }, { kvUsage: 0.6 }, { kvUsage: 0, kvUsageUnknown: true }]), [0.8, 0.4, 0.6]);
});

test('load scorers: a stale snapshot scores the mean of the fresh ones', () => {
  assert.deepEqual(scores(new QueueScorer(), [{ waiting: 0 }, { waiting: 10 }, { waiting: 99, stale: true }]), [1, 0, 0.5]);
  assert.deepEqual(scores(new QueueScorer(), [{ waiting: 5, stale: true }, { waiting: 9, stale: true }]), [1, 1]);
  assert.deepEqual(scores(new LoadAwareScorer(), [{ waiting: 0 }, { waiting: 500, stale: true }]), [0.5, 0.5]);
  assert.deepEqual(scores(new KvCacheUtilizationScorer(), [{ kvUsage: 0.5 }, { kvUsage: 0.99, stale: true }]), [0.5, 0.5]);
});
