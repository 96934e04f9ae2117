/**
 * Backpressure through the gateway over real sockets: a client that stops reading a long SSE
 * answer must stop the upstream too (the router pauses its upstream exchange while the client's
 * socket is full) instead of buffering the whole answer in memory; once the client reads again,
 * every byte arrives and the request ends once, as a success.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { startRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';

const MODEL = 'm';
/**
 * One SSE event of ~1 KB; 150,000 of them: ~165 MB. Loopback sockets autotune their buffers (Linux
 * tcp_rmem up to 32 MB, tcp_wmem 4 MB), so the two hops (upstream -> router, router -> client) can
 * hold ~72 MB between them: the answer must be well above twice that for "stalled before half" to
 * mean the router stopped reading, not that the kernel buffered it.
 */
const EVENTS = 150_000;
const event = (i: number): string => `data: {"choices":[{"index":0,"delta":{"content":"${String(i).padStart(6, '0')}${'x'.repeat(1000)}"},"finish_reason":null}]}\n\n`;
const USAGE = 'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":20000}}\n\n';

/** An upstream that writes the long stream as fast as its socket takes it, recording how far it got. */
function longStreamUpstream(progress: { written: number; finished: boolean }): Server {
  return createServer((req, res) => {
    if (req.url === '/health') return res.end();
    if (req.url === '/metrics') return res.end('vllm:num_requests_running 0\nvllm:num_requests_waiting 0\n');
    if (req.url === '/v1/models') return res.end(JSON.stringify({ object: 'list', data: [{ id: MODEL, object: 'model' }] }));
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const pump = (): void => {
        while (i < EVENTS) {
          const s = event(i++);
          progress.written += s.length;
          if (!res.write(s)) return void res.once('drain', pump);
        }
        progress.finished = true;
        res.end(USAGE + 'data: [DONE]\n\n');
      };
      pump();
    });
  });
}

test('a client that stops reading stops the upstream (no unbounded buffering); reading again gets every byte', async () => {
  const progress = { written: 0, finished: false };
  const upstream = longStreamUpstream(progress);
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const addr = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const router = await startRouter({ endpoints: [{ url: addr }], scheduler: buildScheduler(), port: 0, adminPort: 0, processMetrics: false });
  const active = (): number => router.lifecycles.active;
  const port = Number(new URL(router.url).port);
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'long' }], stream: true, max_tokens: EVENTS });
  const sock = connect(port, '127.0.0.1');
  try {
    await new Promise<void>((r) => sock.once('connect', r));
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    // Read nothing: wait until the upstream's writes stall (no progress for 300 ms).
    let last = -1;
    for (let k = 0; k < 100 && progress.written !== last; k++) {
      last = progress.written;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(progress.finished, false, 'the upstream could not write the whole answer while the client read nothing');
    assert.ok(progress.written < (EVENTS * event(0).length) / 2, `the upstream stalled early (wrote ${progress.written} bytes of ~${EVENTS * event(0).length})`);
    assert.equal(active(), 1, 'the request is still in flight');
    // Read everything now.
    // Scan the answer as it arrives (it is too big to keep); `carry` covers markers split across chunks.
    const markers = [0, 1, EVENTS / 2, EVENTS - 1].map((i) => `"content":"${String(i).padStart(6, '0')}`);
    const seen = new Set<string>();
    let head = '';
    let carry = '';
    let sawDone = false;
    let sawUsage = false;
    sock.on('data', (c: Buffer) => {
      const text = carry + c.toString('latin1');
      if (head.length < 16) head += text.slice(0, 16);
      for (const m of markers) if (text.includes(m)) seen.add(m);
      if (text.includes('data: [DONE]')) sawDone = true;
      if (text.includes('"usage":{')) sawUsage = true;
      carry = text.slice(-64);
    });
    await new Promise<void>((r) => sock.once('end', r));
    assert.match(head, /^HTTP\/1.1 200/);
    for (const m of markers) assert.ok(seen.has(m), `event ${m} arrived`);
    assert.ok(sawDone, 'the stream ended normally');
    assert.ok(!sawUsage, 'the usage chunk the router asked for was stripped');
    assert.equal(progress.finished, true);
    for (let k = 0; k < 50 && active() !== 0; k++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(active(), 0, 'the lifecycle ended');
    const metrics = await (await fetch(`${router.adminUrl}/metrics`)).text();
    assert.match(metrics, /kvroute_requests_total\{[^}]*status="200"[^}]*\} 1\n/, 'counted once, as a 200');
  } finally {
    sock.destroy();
    await router.close();
    await new Promise<void>((r) => upstream.close(() => r()));
  }
});
