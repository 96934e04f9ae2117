/**
 * Public port hygiene over real sockets (issue 10, defects 3 and 7): silent and slow clients are
 * timed out with 408, malformed requests get 400 and oversized headers 431 (never a dropped
 * socket), a body over the limit gets 413 every time and the connection is closed instead of
 * reading the rest of the upload, connection caps answer 503 and keep the port usable for others,
 * and the admin port stays on loopback when the gateway listens elsewhere. Each case failed on
 * the code before (requestTimeout 0, a clientError handler that destroyed the socket, keep-alive
 * after 413, admin bound to the gateway's host).
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { request as httpRequest } from 'node:http';
import { startSimRouter, SIM_MODEL, type SimRouter } from '../helpers/sim-router.js';
import { openRaw, outcome, rawBody, stillOpen } from '../helpers/raw-http.js';

const HEADERS_TIMEOUT = 600;
const REQUEST_TIMEOUT = 1_500;
const MAX_BODY = 1024 * 1024;
let sim: SimRouter;

before(async () => {
  sim = await startSimRouter(11, {
    maxBodyBytes: MAX_BODY,
    publicPort: { headersTimeoutMs: HEADERS_TIMEOUT, requestTimeoutMs: REQUEST_TIMEOUT, keepAliveTimeoutMs: 1_000, maxHeaderBytes: 8 * 1024 },
  });
});
after(() => sim.close());

const chatBody = (content: string) => JSON.stringify({ model: SIM_MODEL, messages: [{ role: 'user', content }], max_tokens: 2 });

async function legitRequest(): Promise<number> {
  const res = await request(`${sim.router.url}/v1/chat/completions`, { method: 'POST', body: chatBody('hello'), headers: { 'content-type': 'application/json' } });
  await res.body.text();
  return res.statusCode;
}

/** POST with node:http from a given local address (undici ignores localAddress). */
function postFrom(url: string, body: string, localAddress: string): Promise<{ statusCode: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', localAddress, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function errorCode(text: string): string {
  return (rawBody(text) as { error: { code: string } }).error.code;
}

test('a connection that never sends a byte gets 408 and is closed after the headers timeout', async () => {
  const s = await openRaw(sim.router.url);
  const o = await outcome(s, 30_000);
  assert.equal(o.status, 408, `got: ${o.text.slice(0, 80) || '(nothing)'}`);
  assert.equal(errorCode(o.text), 'KVR_ERR_REQUEST_TIMEOUT');
  assert.ok(o.closedAfterMs < HEADERS_TIMEOUT + 10_000, `closed after ${o.closedAfterMs} ms`);
});

test('slowloris: headers trickled a byte at a time are cut at the headers timeout with 408', async () => {
  const s = await openRaw(sim.router.url);
  s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n');
  const trickle = setInterval(() => {
    if (!s.destroyed) s.write('X');
  }, 50);
  const o = await outcome(s, 30_000);
  clearInterval(trickle);
  assert.equal(o.status, 408);
  assert.ok(o.closedAfterMs < HEADERS_TIMEOUT + 10_000, `closed after ${o.closedAfterMs} ms`);
});

test('a body sent slower than the request timeout gets 408, and the port serves others meanwhile', async () => {
  const s = await openRaw(sim.router.url);
  s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":`);
  const trickle = setInterval(() => {
    if (!s.destroyed) s.write(' ');
  }, 100);
  const pending = outcome(s, 30_000);
  assert.equal(await legitRequest(), 200);
  const o = await pending;
  clearInterval(trickle);
  assert.equal(o.status, 408, `got: ${o.text.slice(0, 120)}`);
  assert.ok(o.closedAfterMs < REQUEST_TIMEOUT + 10_000, `closed after ${o.closedAfterMs} ms`);
});

test('headers over the limit get 431 with an OpenAI-shaped body, not a dropped socket', async () => {
  const s = await openRaw(sim.router.url);
  s.write(`GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  const o = await outcome(s, 5_000);
  assert.equal(o.status, 431, `got: ${o.text.slice(0, 80) || '(nothing)'} ${o.error ?? ''}`);
  assert.equal(errorCode(o.text), 'KVR_ERR_HEADERS_TOO_LARGE');
  assert.match(o.text, /connection: close/i);
});

test('malformed requests get 400, not a dropped socket', async () => {
  for (const garbage of ['GARBAGE\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n', 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 'GET /\x01 HTTP/1.1\r\n\r\n']) {
    const s = await openRaw(sim.router.url);
    s.write(garbage);
    const o = await outcome(s, 5_000);
    assert.equal(o.status, 400, `${JSON.stringify(garbage)} -> ${o.text.slice(0, 80) || '(nothing)'}`);
    assert.equal(errorCode(o.text), 'KVR_ERR_BAD_REQUEST');
  }
});

test('a 10 MB body gets 413 every time (20 of 20) and the connection is closed after it', async () => {
  const big = Buffer.alloc(10 * 1024 * 1024, 0x61);
  for (let i = 0; i < 20; i++) {
    const res = await request(`${sim.router.url}/v1/chat/completions`, { method: 'POST', body: big, headers: { 'content-type': 'application/json' } });
    const body = (await res.body.json()) as { error: { code: string } };
    assert.equal(res.statusCode, 413, `attempt ${i}`);
    assert.equal(body.error.code, 'KVR_ERR_BODY_TOO_LARGE');
    assert.equal(res.headers.connection, 'close', `attempt ${i}`);
  }
  assert.equal(await legitRequest(), 200);
});

test('a chunked body over the limit gets 413 and the connection is closed', async () => {
  const s = await openRaw(sim.router.url);
  s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  const o = outcome(s, 10_000);
  for (let i = 0; i < 8 && !s.destroyed; i++) s.write(`${chunk.length.toString(16)}\r\n${chunk.toString('latin1')}\r\n`);
  const r = await o;
  assert.equal(r.status, 413, `got: ${r.text.slice(0, 80)}`);
  assert.match(r.text, /connection: close/i);
});

test('after a 413 the server does not read a 250 MB upload to its end: it closes within the linger time', async () => {
  const s = await openRaw(sim.router.url);
  s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${250 * 1024 * 1024}\r\n\r\n`);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  const done = outcome(s, 30_000);
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (!s.destroyed && sent < 250 * 1024 * 1024) {
        sent += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
      resolve();
    };
    s.once('close', () => resolve());
    pump();
  });
  const o = await done;
  assert.equal(o.status, 413);
  assert.ok(sent < 250 * 1024 * 1024, `the client could send all ${sent} bytes: the server kept reading`);
  assert.ok(o.closedAfterMs < 15_000, `closed after ${o.closedAfterMs} ms`);
});

test('Expect: 100-continue with a Content-Length over the limit gets 413 before any body is sent', async () => {
  const s = await openRaw(sim.router.url);
  s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`);
  const o = await outcome(s, 5_000);
  assert.equal(o.status, 413, `got: ${o.text.slice(0, 80)}`);
  assert.doesNotMatch(o.text, /100 Continue/);
});

test('hundreds of idle connections are closed by the timeouts and the cap; legitimate requests keep working', async () => {
  // Its own router: a headers timeout long enough that all sockets are open at once even on a
  // loaded machine, and a cap of 100.
  const capped = await startSimRouter(14, { publicPort: { headersTimeoutMs: 4_000, requestTimeoutMs: 4_000, maxConnections: 100 } });
  try {
    const sockets = await Promise.all(Array.from({ length: 150 }, () => openRaw(capped.router.url)));
    const all = await Promise.all(sockets.map((s) => outcome(s, 30_000)));
    const count = (st: number) => all.filter((o) => o.status === st).length;
    assert.equal(count(408) + count(503), all.length, 'every idle connection is answered (408 or 503), none dropped');
    assert.ok(count(503) >= 40, `${count(503)} connections over the cap of 100 answered 503`);
    assert.ok(count(408) >= 90, `${count(408)} timed out with 408`);
    for (const o of all.filter((x) => x.status === 503)) assert.equal(errorCode(o.text), 'KVR_ERR_TOO_MANY_CONNECTIONS');
    await new Promise((r) => setTimeout(r, 300));
    const res = await request(`${capped.router.url}/v1/chat/completions`, { method: 'POST', body: chatBody('after the flood'), headers: { 'content-type': 'application/json' } });
    await res.body.text();
    assert.equal(res.statusCode, 200);
    const metrics = await (await request(`${capped.router.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /kvroute_client_errors_total\{kind="connection-limit"\} \d+/);
    assert.match(metrics, /kvroute_client_errors_total\{kind="request-timeout"\} \d+/);
    assert.match(metrics, /kvroute_open_connections \d/);
  } finally {
    await capped.close();
  }
});

test('per-client cap: a client holding its quota of idle connections does not starve another client', async () => {
  const capped = await startSimRouter(12, { publicPort: { headersTimeoutMs: 5_000, requestTimeoutMs: 5_000, maxConnectionsPerClient: 10 } });
  try {
    const mine = await Promise.all(Array.from({ length: 10 }, () => openRaw(capped.router.url, '127.0.0.1')));
    const extra = await openRaw(capped.router.url, '127.0.0.1');
    const o = await outcome(extra, 3_000);
    assert.equal(o.status, 503, 'the 11th connection of one client is refused with 503');
    const res = await postFrom(`${capped.router.url}/v1/chat/completions`, chatBody('other client'), '127.0.0.2');
    assert.equal(res.statusCode, 200, 'a client from another address is served');
    assert.ok(await stillOpen(mine[0], 10), 'the first client keeps its connections');
    for (const s of mine) s.destroy();
  } finally {
    await capped.close();
  }
});

test('the admin port stays on loopback when the gateway listens on another address', async () => {
  const r = await startSimRouter(13, { host: '127.0.0.2' });
  try {
    assert.equal(new URL(r.router.url).hostname, '127.0.0.2');
    assert.equal(new URL(r.router.adminUrl).hostname, '127.0.0.1');
    const port = new URL(r.router.adminUrl).port;
    await assert.rejects(openRaw(`http://127.0.0.2:${port}`), /ECONNREFUSED/);
    const res = await request(`${r.router.adminUrl}/healthz`);
    assert.equal(res.statusCode, 200);
    await res.body.text();
  } finally {
    await r.close();
  }
});
