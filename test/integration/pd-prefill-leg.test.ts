import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock } from '../../src/core/clock.js';
import { runPrefillLeg } from '../../src/pd/prefill-leg.js';
import { buildPrefillBody } from '../../src/pd/prefill-request.js';

async function serve(statuses: number[], seen: Record<string, unknown>[]): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let b = '';
    req.on('data', (c) => (b += c));
    req.on('end', () => {
      seen.push({ ...JSON.parse(b), _rid: req.headers['x-request-id'] });
      const status = statuses.shift() ?? 200;
      const body = status === 200 ? { usage: { prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 4 } }, kv_transfer_params: { do_remote_prefill: true } } : { error: { message: 'x' } };
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('prefill leg: retried on 502/503/504 only, with a new x-request-id and every token limit 1', async () => {
  const seen: Record<string, unknown>[] = [];
  const { server, url } = await serve([503, 502], seen);
  try {
    const r = await runPrefillLeg({ url, path: '/v1/chat/completions', body: { messages: [], stream: true, stream_options: { include_usage: true }, max_completion_tokens: 50 }, clock: systemClock, backoffMs: 1 });
    assert.equal(r.kind, 'ok');
    assert.equal(r.kind === 'ok' && r.cachedTokens, 4);
    assert.equal(r.attempts, 3);
    assert.equal(seen[0].stream, false);
    assert.equal(seen[0].stream_options, undefined);
    assert.equal(seen[0].max_tokens, 1);
    assert.equal(seen[0].max_completion_tokens, 1);
    assert.deepEqual(seen[0].kv_transfer_params, { do_remote_decode: true, do_remote_prefill: false, remote_engine_id: null, remote_block_ids: null, remote_host: null, remote_port: null });
    assert.match(String(seen[0]._rid), /^[0-9a-f-]{36}$/);
  } finally {
    server.close();
  }
  const seen2: Record<string, unknown>[] = [];
  const s2 = await serve([500], seen2);
  try {
    const r = await runPrefillLeg({ url: s2.url, path: '/v1/completions', body: { prompt: 'x' }, clock: systemClock, backoffMs: 1 });
    assert.deepEqual([r.kind, r.kind === 'fallback' && r.reason, r.attempts], ['fallback', 'status', 1], '500 is not retried');
  } finally {
    s2.server.close();
  }
  const seen3: Record<string, unknown>[] = [];
  const s3 = await serve([400], seen3);
  try {
    const r = await runPrefillLeg({ url: s3.url, path: '/v1/completions', body: { prompt: 'x' }, clock: systemClock });
    assert.equal(r.kind, 'error', 'a 4xx goes back to the client');
  } finally {
    s3.server.close();
  }
  const s4 = await serve([503, 503, 503, 503, 503], []);
  try {
    const r = await runPrefillLeg({ url: s4.url, path: '/v1/completions', body: { prompt: 'x' }, clock: systemClock, maxRetries: 2, backoffMs: 1 });
    assert.deepEqual([r.kind, r.attempts], ['fallback', 3]);
  } finally {
    s4.server.close();
  }
});

test('prefill body for the generate and responses APIs', () => {
  const g = buildPrefillBody({ sampling_params: { max_tokens: 100, temperature: 0 } }, '/inference/v1/generate');
  assert.deepEqual(g.sampling_params, { max_tokens: 1, temperature: 0 });
  assert.equal(g.max_tokens, undefined);
  const r = buildPrefillBody({ input: 'x', max_output_tokens: 300 }, '/v1/responses');
  assert.equal(r.max_output_tokens, 1);
  assert.equal(r.max_tokens, undefined);
});
