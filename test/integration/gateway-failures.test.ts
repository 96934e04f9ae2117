/**
 * Gateway failure paths over real sockets: a replica refusing connections (retried on the next
 * candidate), an endpoint dying mid-stream, no healthy endpoint, and a client going away.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startFleet } from '../../src/sim/index.js';
import { startRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';

const MODEL = 'm';
const chat = (content: string, extra: Record<string, unknown> = {}) => JSON.stringify({ model: MODEL, messages: [{ role: 'user', content }], max_tokens: 4, ...extra });

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An upstream that serves vLLM metrics (and /health) but dies after the first SSE chunk / mid-body. */
function dyingUpstream(): Server {
  return createServer((req, res) => {
    if (req.url === '/health') return res.end();
    if (req.url === '/metrics') return res.end('vllm:num_requests_running 0\nvllm:num_requests_waiting 0\n');
    if (req.url === '/v1/models') return res.end(JSON.stringify({ object: 'list', data: [{ id: MODEL, object: 'model' }] }));
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const stream = JSON.parse(body).stream === true;
      res.writeHead(200, { 'content-type': stream ? 'text/event-stream' : 'application/json' });
      res.write(stream ? 'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n' : '{"id":"x","choi');
      setImmediate(() => res.socket?.destroy());
    });
  });
}

test('a replica refusing connections is skipped: the request is retried on the next candidate', async () => {
  const fleet = await startFleet({ replicas: 2, basePort: 0, model: MODEL, profile: 'llama-3.2-1b', timeScale: 0.05 });
  // A long scrape interval, so the router has not yet noticed the replica went down.
  const router = await startRouter({ endpoints: fleet.replicas.map((r) => ({ url: r.url })), scheduler: buildScheduler(), port: 0, adminPort: 0, scrapeIntervalMs: 60_000, processMetrics: false });
  try {
    const target = fleet.replicas[0];
    const targetId = target.url.replace('http://', '');
    await target.setDown(true);
    // The echoed session token pins the request to the replica that is down.
    const res = await request(`${router.url}/v1/chat/completions`, {
      method: 'POST',
      body: chat('retry me'),
      headers: { 'content-type': 'application/json', 'x-session-token': Buffer.from(targetId).toString('base64') },
    });
    const body = (await res.body.json()) as { choices: unknown[] };
    assert.equal(res.statusCode, 200);
    assert.equal(body.choices.length, 1);
    assert.equal(res.headers['x-kvroute-endpoint'], fleet.replicas[1].url.replace('http://', ''));
    const metrics = await (await request(`${router.adminUrl}/metrics`)).body.text();
    assert.match(metrics, new RegExp(`kvroute_upstream_retries_total\\{endpoint="${targetId}"\\} 1`));
    assert.equal(router.pool.get(targetId)?.healthy, false, 'the refusing replica is marked down at once');
  } finally {
    await router.close();
    await fleet.close();
  }
});

test('an endpoint dying mid-stream ends the SSE stream with an error event; the gateway keeps serving', async () => {
  const upstream = dyingUpstream();
  const addr = await listen(upstream);
  const router = await startRouter({ endpoints: [{ url: addr }], scheduler: buildScheduler(), port: 0, adminPort: 0, processMetrics: false });
  try {
    const res = await request(`${router.url}/v1/chat/completions`, { method: 'POST', body: chat('die', { stream: true }), headers: { 'content-type': 'application/json' } });
    assert.equal(res.statusCode, 200);
    const text = await res.body.text();
    assert.match(text, /"Hel"/, 'what arrived before the failure is passed on');
    assert.match(text, /data: \{"error":\{"message":"endpoint .* failed mid-stream/);

    // Non-streaming: the router streams it upstream and re-assembles the body, so nothing had
    // reached the client when the endpoint died: a clean OpenAI error (502), not a cut body.
    const res2 = await request(`${router.url}/v1/chat/completions`, { method: 'POST', body: chat('die again'), headers: { 'content-type': 'application/json' } });
    assert.equal(res2.statusCode, 502);
    assert.equal(((await res2.body.json()) as { error: { code: string } }).error.code, 'KVR_ERR_UPSTREAM');

    const models = await request(`${router.url}/v1/models`);
    assert.equal(models.statusCode, 200);
    await models.body.text();
    const metrics = await (await request(`${router.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /kvroute_upstream_errors_total\{endpoint="[^"]+",kind="midstream"\} 1/);
    assert.match(metrics, /kvroute_upstream_errors_total\{endpoint="[^"]+",kind="reset"\} 1/);
    assert.match(metrics, /kvroute_inflight_requests\{endpoint="[^"]+"\} 0/);
  } finally {
    await router.close();
    upstream.close();
  }
});

test('no healthy endpoint: 503 with an OpenAI error body and readyz not ready', async () => {
  const upstream = dyingUpstream();
  const addr = await listen(upstream);
  const router = await startRouter({ endpoints: [{ url: addr }], scheduler: buildScheduler(), port: 0, adminPort: 0, scrapeIntervalMs: 20, processMetrics: false });
  try {
    assert.equal(router.pool.healthyCount(), 1);
    upstream.closeAllConnections();
    await new Promise<void>((r) => upstream.close(() => r()));
    // The next scrape is refused and marks the endpoint down.
    while (router.pool.healthyCount() > 0) await new Promise((r) => setTimeout(r, 10));
    const res = await request(`${router.url}/v1/chat/completions`, { method: 'POST', body: chat('anyone?'), headers: { 'content-type': 'application/json' } });
    assert.equal(res.statusCode, 503);
    const body = (await res.body.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'KVR_ERR_NO_ENDPOINT');
    assert.match(body.error.message, /0\/1 healthy/);
    const ready = await request(`${router.adminUrl}/readyz`);
    assert.equal(ready.statusCode, 503);
    await ready.body.text();
  } finally {
    await router.close();
  }
});

test('a client going away mid-stream aborts the upstream request and frees the replica', async () => {
  const fleet = await startFleet({ replicas: 1, basePort: 0, model: MODEL, profile: 'llama-3.1-8b', timeScale: 1 });
  const router = await startRouter({ endpoints: [{ url: fleet.replicas[0].url }], scheduler: buildScheduler(), port: 0, adminPort: 0, processMetrics: false });
  try {
    const ac = new AbortController();
    const res = await request(`${router.url}/v1/chat/completions`, {
      method: 'POST',
      body: chat('a long answer please', { stream: true, max_tokens: 5000 }),
      headers: { 'content-type': 'application/json' },
      signal: ac.signal,
    });
    for await (const _chunk of res.body) break; // first token arrived
    ac.abort();
    const engine = fleet.replicas[0].engine;
    const deadline = Date.now() + 5000;
    while (engine.stats().running + engine.stats().waiting > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(engine.stats().running + engine.stats().waiting, 0, 'the replica stopped generating for the departed client');
  } finally {
    await router.close();
    await fleet.close();
  }
});
