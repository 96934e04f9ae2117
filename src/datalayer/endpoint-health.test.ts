import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endpointHealth, type HealthInputs } from './endpoint-health.js';

const base: HealthInputs = { lastLive: 1000, lastMetricsOk: 1000, refused: false, healthProblem: '', metricsProblem: '', engineProblem: '', override: false, detected: true, restarts: 0 };
const B = { deadAfterMs: 2000, staleAfterMs: 500 };

test('live and fresh: healthy, no reason; stale load keeps it healthy with the load unknown', () => {
  assert.deepEqual(endpointHealth(base, 1200, 'http://a', B), { healthy: true, state: { live: true, loadFresh: true, reason: '', engineSource: 'detected', restarts: 0 } });
  const stale = endpointHealth(base, 1800, 'http://a', B);
  assert.equal(stale.healthy, true);
  assert.equal(stale.state.loadFresh, false);
  assert.match(stale.state.reason, /load data stale \(last good scrape 800 ms ago\)/);
});

test('silent only when it answered before and still accepts connections; refused and misconfigured never are', () => {
  const silent = endpointHealth(base, 3500, 'http://a', B);
  assert.equal(silent.healthy, false);
  assert.equal(silent.state.silent, true);
  assert.match(silent.state.reason, /no answer on \/health or \/metrics for 2500 ms/);
  const refused = endpointHealth({ ...base, refused: true }, 3500, 'http://a', B);
  assert.equal(refused.state.silent, undefined);
  assert.equal(refused.state.reason, 'connection refused at http://a');
  assert.equal(endpointHealth({ ...base, lastLive: 0 }, 3500, 'http://a', B).state.silent, undefined, 'never answered: not silent');
  assert.equal(endpointHealth({ ...base, engineProblem: 'wrong engine' }, 3500, 'http://a', B).state.silent, undefined);
  assert.equal(endpointHealth({ ...base, engineProblem: 'wrong engine' }, 1200, 'http://a', B).state.reason, 'wrong engine');
});
