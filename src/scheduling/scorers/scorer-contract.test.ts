/**
 * The Scorer contract, run by EVERY scorer of the default registry: scores in [0,1], one per
 * candidate, no mutation of the candidates, deterministic for the same state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/clock.js';
import { seededRng } from '../../core/rng.js';
import { createDefaultRegistry } from '../builtin-plugins.js';
import { LoadTracker } from '../load-tracker.js';
import { InMemorySessionStore } from '../session-store.js';
import { fakeEndpoint, fakeRequest, fakeText } from '../testing/fakes.js';
import type { Scorer } from '../types.js';

const registry = createDefaultRegistry();
const scorerTypes = registry.types().filter((t) => registry.get(t)?.kind === 'scorer');

function scenario() {
  const eps = [
    fakeEndpoint(0, { waiting: 0, kvUsage: 0.1 }),
    fakeEndpoint(3, { waiting: 7, kvUsage: 0.9, numGpuBlocks: 100 }),
    fakeEndpoint(1, { waiting: 200, kvUsage: 1.2 }),
    fakeEndpoint(2, { waiting: 2, kvUsage: 0.5 }),
  ];
  return eps;
}

test('registry exposes all built-in scorers', () => {
  assert.deepEqual(scorerTypes, [
    'inflight-load-scorer', 'kv-cache-utilization-scorer', 'least-request-scorer', 'load-aware-scorer', 'no-hit-lru-scorer', 'no-hit-recent-work-scorer',
    'precise-prefix-cache-scorer', 'prefill-cost-scorer', 'prefix-cache-scorer', 'queue-scorer', 'session-affinity-scorer',
  ]);
});

for (const type of scorerTypes) {
  test(`Scorer contract: ${type}`, async () => {
    const clock = new ManualClock(1000);
    const load = new LoadTracker();
    const deps = { clock, rng: seededRng(1), load, sessions: new InMemorySessionStore(clock) };
    const scorer = registry.create(type, type, {}, deps) as Scorer;
    assert.equal(scorer.type, type);
    assert.equal(scorer.name, type);
    const eps = scenario();
    // Give it some state: picks with work and history.
    const warm = fakeRequest(fakeText(2000, 1), { headers: { 'x-session-id': 's1' } });
    const obs = scorer as Partial<import('../types.js').RequestObserver>;
    for (const e of [eps[1], eps[2]]) {
      const ctx = { request: warm, now: clock.now() };
      load.onPicked(ctx, e);
      obs.onPicked?.(ctx, e);
    }
    const snapshot = JSON.stringify(eps);
    for (const n of [1, 2, 4]) {
      const cands = eps.slice(0, n);
      const req = fakeRequest(fakeText(2000, 1), { headers: { 'x-session-id': 's1' } });
      const out1 = new Float64Array(n);
      await scorer.score({ request: req, now: clock.now() }, cands, out1);
      const out2 = new Float64Array(n);
      await scorer.score({ request: req, now: clock.now() }, cands, out2);
      assert.equal(out1.length, n);
      for (let i = 0; i < n; i++) {
        assert.ok(out1[i] >= 0 && out1[i] <= 1, `${type}: score ${out1[i]} out of [0,1]`);
        assert.ok(Number.isFinite(out1[i]));
      }
      assert.deepEqual([...out2], [...out1], `${type}: not deterministic`);
    }
    assert.equal(JSON.stringify(eps), snapshot, `${type}: mutated its candidates`);
  });
}
