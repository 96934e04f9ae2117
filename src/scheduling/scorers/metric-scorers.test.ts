import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeEndpoint, fakeRequest } from '../testing/fakes.js';
import { KvCacheUtilizationScorer } from './kv-cache-utilization-scorer.js';
import { LoadAwareScorer } from './load-aware-scorer.js';
import { QueueScorer } from './queue-scorer.js';
import type { Scorer } from '../types.js';

function scores(s: Scorer, metrics: { waiting?: number; kvUsage?: number }[]): number[] {
  const eps = metrics.map((m, i) => fakeEndpoint(i, m));
  const out = new Float64Array(eps.length);
  void s.score({ request: fakeRequest('x'), now: 0 }, eps, out);
  return [...out].map((v) => Math.round(v * 1e6) / 1e6);
}

test('queue-scorer: (max-q)/(max-min), 1 when all equal', () => {
  const s = new QueueScorer();
  const cases: [number[], number[]][] = [
    [[0, 5, 10], [1, 0.5, 0]],
    [[3, 3, 3], [1, 1, 1]],
    [[2, 6], [1, 0]],
    [[0], [1]],
    [[4, 0, 0, 4], [0, 1, 1, 0]],
  ];
  for (const [qs, want] of cases) assert.deepEqual(scores(s, qs.map((waiting) => ({ waiting }))), want, `queues ${qs}`);
});

test('kv-cache-utilization-scorer: 1 - kvUsage, clamped', () => {
  const s = new KvCacheUtilizationScorer();
  assert.deepEqual(scores(s, [{ kvUsage: 0 }, { kvUsage: 0.25 }, { kvUsage: 1 }, { kvUsage: 1.3 }, { kvUsage: -0.1 }]), [1, 0.75, 0, 0, 1]);
});

test('load-aware-scorer: 0.5 on empty queue, else 0.5*(1-min(q,128)/128)', () => {
  const s = new LoadAwareScorer();
  assert.deepEqual(scores(s, [{ waiting: 0 }, { waiting: 64 }, { waiting: 128 }, { waiting: 500 }, { waiting: 1 }]), [0.5, 0.25, 0, 0, 0.496094]);
  assert.deepEqual(scores(new LoadAwareScorer('x', 10), [{ waiting: 5 }]), [0.25]);
});
