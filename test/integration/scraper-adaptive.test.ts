/**
 * The adaptive /metrics scraper against a real HTTP endpoint: it backs off while the endpoint's
 * routing metrics do not change, returns to the base interval on a change, refuses pages over
 * the byte cap, and exports its per-endpoint cost.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock } from '../../src/core/clock.js';
import { EndpointPool, parseEndpointList } from '../../src/datalayer/endpoint-pool.js';
import { EndpointScraper } from '../../src/datalayer/endpoint-scraper.js';
import { RouterMetrics } from '../../src/metrics/router-metrics.js';

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('adaptive scraping: backs off while nothing changes, resets on change, caps page bytes, exports cost', async () => {
  let running = 0;
  let pad = 0;
  let hits = 0;
  const page = () =>
    [
      '# HELP vllm:num_requests_running running',
      '# TYPE vllm:num_requests_running gauge',
      `vllm:num_requests_running{model_name="m"} ${running}`,
      'vllm:num_requests_waiting{model_name="m"} 0',
      'vllm:kv_cache_usage_perc{model_name="m"} 0.25',
      // a family the router does not read: skipped unparsed
      ...Array.from({ length: 50 }, (_, i) => `vllm:request_latency_bucket{le="${i}"} ${i}`),
      'x'.repeat(pad),
      '',
    ].join('\n');
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      hits++;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(page());
    } else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: [{ id: 'm' }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const pool = new EndpointPool(parseEndpointList(`127.0.0.1:${port}`));
  const ep = pool.all()[0];
  const metrics = new RouterMetrics({ processMetrics: false });
  const scraper = new EndpointScraper(pool, { clock: systemClock, intervalMs: 10, maxIntervalMs: 80, staleAfterMs: 5000, maxPageBytes: 4096, metrics });
  try {
    await scraper.start();
    assert.equal(ep.healthy, true);
    await waitFor(() => scraper.intervalOf(ep) === 80, 'the interval to back off to the maximum');
    const h0 = hits;
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(hits - h0 <= 8, `backed off: ${hits - h0} scrapes in 400 ms at an 80 ms interval (10 ms base would be ~40)`);
    scraper.touch(ep); // the router served a request there
    assert.equal(scraper.intervalOf(ep), 10, 'traffic on the endpoint resets the interval to the base');
    await waitFor(() => scraper.intervalOf(ep) === 80, 'the interval to back off again');
    running = 3;
    await waitFor(() => ep.metrics?.running === 3, 'the change to be seen');
    assert.equal(scraper.intervalOf(ep), 10, 'a change resets the interval to the base');
    const text = await metrics.registry.metrics();
    assert.match(text, new RegExp(`kvroute_endpoint_scrape_bytes_total\\{endpoint="${ep.id}"\\} [1-9]`));
    assert.match(text, new RegExp(`kvroute_endpoint_scrape_cost_seconds_total\\{endpoint="${ep.id}"\\} `));
    assert.match(text, new RegExp(`kvroute_endpoint_scrape_interval_seconds\\{endpoint="${ep.id}"\\} 0\\.0[1-8]`));
    // over the byte cap: a scrape error, never a partial parse
    pad = 8192;
    const errors = async () => Number(/kvroute_endpoint_scrape_errors_total\{[^}]*\} (\d+)/.exec(await metrics.registry.metrics())?.[1] ?? 0);
    const until = Date.now() + 5000;
    while ((await errors()) === 0) {
      if (Date.now() > until) throw new Error('a page over the byte cap was not counted as a scrape error');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(scraper.intervalOf(ep), 10, 'a failure resets the interval to the base');
  } finally {
    scraper.stop();
    server.close();
  }
});
