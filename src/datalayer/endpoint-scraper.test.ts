import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../core/clock.js';
import { EndpointPool } from './endpoint-pool.js';
import { EndpointScraper } from './endpoint-scraper.js';

test('options passed as undefined keep their defaults (the router used to erase staleAfterMs and the interval)', () => {
  const pool = new EndpointPool([{ url: '127.0.0.1:1' }]);
  const s = new EndpointScraper(pool, { clock: systemClock, intervalMs: undefined, staleAfterMs: undefined, deadAfterMs: undefined });
  assert.deepEqual(s.settings, { intervalMs: 50, staleAfterMs: 2000, timeoutMs: 1000, modelsIntervalMs: 5000, healthIntervalMs: 250, healthTimeoutMs: 750, deadAfterMs: 2000 });
  assert.equal(new EndpointScraper(pool, { clock: systemClock, staleAfterMs: 500 }).settings.staleAfterMs, 500);
  assert.throws(() => new EndpointScraper(pool, { clock: systemClock, intervalMs: 0 }), /intervalMs must be a positive number/);
});

test('unhealthyReasons names each endpoint that is not usable, with its reason', () => {
  const pool = new EndpointPool([{ url: '127.0.0.1:1' }, { url: '127.0.0.1:2', engine: 'llamacpp' }]);
  assert.equal(pool.all()[1].health?.engineSource, 'override');
  assert.equal(pool.all()[0].health?.engineSource, 'default');
  pool.all()[0].healthy = true;
  assert.equal(pool.unhealthyReasons(), '127.0.0.1:2: not probed yet');
});
