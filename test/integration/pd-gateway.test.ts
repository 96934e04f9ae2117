/**
 * In-gateway P/D orchestration (no sidecar): OpenAI client -> kvroute gateway, which runs the
 * prefill leg on the prefill replica and sends the decode replica the returned
 * kv_transfer_params. Same proofs as pd-sidecar.test.ts: the client sees the prefill replica's
 * cached tokens, pins come back to 0 by pull (not expiry), a client gone between the legs frees
 * them, a dead prefill replica falls back to local prefill and is counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { longPrompt, PD_MODEL, startPdFleet, waitFor } from '../helpers/pd-fleet.js';

async function counter(url: string, name: string, label = ''): Promise<number> {
  const text = await (await fetch(url)).text();
  const line = text.split('\n').find((l) => l.startsWith(name) && l.includes(label));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('gateway runs both legs: non-streaming and streaming, usage shows the prefill cached tokens', async () => {
  const pd = await startPdFleet({ gateway: 'orchestrate', sidecars: false });
  try {
    const [P] = pd.prefill;
    const [D] = pd.decode;
    const client = new OpenAI({ baseURL: `${pd.router!.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const prompt = longPrompt(11);
    const r1 = await client.chat.completions.create({ model: PD_MODEL, messages: [{ role: 'user', content: prompt }], max_tokens: 6 });
    assert.equal(r1.usage!.prompt_tokens_details?.cached_tokens, 0);
    assert.equal(D.pd!.stats().pulls.ok, 1);
    assert.ok(D.engine.stats().prefixCacheHits >= r1.usage!.prompt_tokens - 16);
    const stream = await client.chat.completions.create({ model: PD_MODEL, messages: [{ role: 'user', content: prompt + ' ' + longPrompt(12, 300) }], max_tokens: 6, stream: true, stream_options: { include_usage: true } });
    let usage: OpenAI.Completions.CompletionUsage | undefined;
    for await (const c of stream) if (c.usage) usage = c.usage;
    const pCached = P.engine.stats().prefixCacheHits;
    assert.ok(pCached >= 500);
    assert.equal(usage?.prompt_tokens_details?.cached_tokens, pCached);
    await waitFor(() => P.pd!.stats().pinnedBlocks === 0, 'pins released');
    assert.equal(P.pd!.stats().pinsExpired, 0);
    const m = `${pd.router!.adminUrl}/metrics`;
    assert.equal(await counter(m, 'kvroute_pd_prefill_requests_total', 'result="ok"'), 2);
    // Every request's life ended: nothing left in flight on either endpoint (gateway gauge and
    // the scheduler's load tracker, prefill assignment included).
    const text = await (await fetch(m)).text();
    const inflight = text.split('\n').filter((l) => l.startsWith('kvroute_inflight_requests{'));
    assert.ok(inflight.length >= 1, 'the in-flight gauge is exported');
    assert.ok(inflight.every((l) => l.endsWith(' 0')), inflight.join('\n'));
    for (const e of pd.router!.pool.all()) assert.equal(pd.scheduler!.load.load(e).inflight, 0, `load tracker on ${e.id}`);
  } finally {
    await pd.close();
  }
});

test('gateway: a client that leaves between the legs frees the prefill pins; a dead prefill replica falls back, counted', async () => {
  const pd = await startPdFleet({ gateway: 'orchestrate', sidecars: false });
  try {
    const [P] = pd.prefill;
    const [D] = pd.decode;
    await D.setFaults({ addedLatencyMs: 60_000 });
    const ac = new AbortController();
    const pending = fetch(`${pd.router!.url}/v1/completions`, {
      method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: PD_MODEL, prompt: longPrompt(13), max_tokens: 4 }),
    }).catch((e: unknown) => e);
    await waitFor(() => P.pd!.stats().pinnedBlocks > 0, 'prefill leg done, blocks pinned');
    ac.abort();
    await pending;
    await waitFor(() => P.pd!.stats().pinnedBlocks === 0, 'pins freed');
    assert.equal(P.pd!.stats().pinsExpired, 0);
    const m = `${pd.router!.adminUrl}/metrics`;
    assert.equal(await counter(m, 'kvroute_pd_prefill_releases_total', 'result="ok"'), 1);
    await D.setFaults({ addedLatencyMs: 0 });
    await P.setDown(true);
    const res = await fetch(`${pd.router!.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: PD_MODEL, prompt: longPrompt(14), max_tokens: 4 }),
    });
    assert.equal(res.status, 200);
    const fallbacks = await counter(m, 'kvroute_pd_prefill_fallbacks_total', 'reason="unreachable"');
    const decisions = await counter(m, 'kvroute_pd_decisions_total', 'decision="disaggregated"');
    assert.equal(decisions, 2, 'the second request was disaggregated too (scrapes are 60 s apart: the router still believes the prefill replica up)');
    assert.equal(fallbacks, 1);
    assert.equal(D.pd!.stats().pulls.ok, 0);
  } finally {
    await pd.close();
  }
});

test('kvroute serve with the seeds\' PD_ENABLED=true: the default profile split in two, requests disaggregated for real', async () => {
  const { runServe } = await import('../../src/app/serve.js');
  const { silentLogger } = await import('../../src/core/logger.js');
  const pd = await startPdFleet({ sidecars: false });
  const [P] = pd.prefill;
  const [D] = pd.decode;
  const router = await runServe({
    endpoints: `${P.host}:${P.port};role=prefill,${D.host}:${D.port};role=decode`,
    host: '127.0.0.1', port: 0, adminPort: 0, engine: 'vllm', maxBodyBytes: 1 << 24, trustForwardedFor: false, scrapeIntervalMs: 60_000,
    kvEvents: 'off', env: { PD_ENABLED: 'true', PD_PROMPT_LEN_THRESHOLD: '100' }, logger: silentLogger,
  });
  try {
    const short = await fetch(`${router.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: PD_MODEL, prompt: 'a short prompt', max_tokens: 2 }) });
    assert.equal(short.status, 200);
    assert.equal(P.pd!.stats().pinsTotal, 0, 'under PD_PROMPT_LEN_THRESHOLD: decode only');
    const long = await fetch(`${router.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: PD_MODEL, prompt: longPrompt(31), max_tokens: 2 }) });
    assert.equal(long.status, 200);
    assert.equal(P.pd!.stats().pinsTotal, 1);
    assert.equal(D.pd!.stats().pulls.ok, 1);
  } finally {
    await router.close();
    await pd.close();
  }
});

test('kvroute serve --ext-proc with PD_ENABLED=true: the endpoint picker names the prefill pod in x-prefiller-host-port (llm-d header mode)', async () => {
  const grpc = await import('@grpc/grpc-js');
  const { runServeExtProc } = await import('../../src/app/serve.js');
  const { silentLogger } = await import('../../src/core/logger.js');
  const { FakeEnvoyStream, envoyProtos } = await import('../helpers/envoy.js');
  const pd = await startPdFleet({ sidecars: false });
  const [P] = pd.prefill;
  const [D] = pd.decode;
  const epp = await runServeExtProc({
    endpoints: `${P.host}:${P.port};role=prefill,${D.host}:${D.port};role=decode`,
    host: '127.0.0.1', adminPort: 0, extProcPort: 0, healthPort: 0, drainTimeoutMs: 1000, maxDestinations: 1,
    engine: 'vllm', maxBodyBytes: 1 << 24, scrapeIntervalMs: 60_000,
    kvEvents: 'off', env: { PD_ENABLED: 'true', PD_PROMPT_LEN_THRESHOLD: '100' }, logger: silentLogger,
  });
  const pkg = grpc.loadPackageDefinition(envoyProtos()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  const client = new pkg.envoy.service.ext_proc.v3.ExternalProcessor(epp.extProcAddress, grpc.credentials.createInsecure());
  try {
    const headersFor = async (prompt: string): Promise<Map<string, string>> => {
      const s = new FakeEnvoyStream(client);
      s.send({
        request_headers: { headers: { headers: [[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gw'], ['content-type', 'application/json']].map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) }, end_of_stream: false },
        protocol_config: { request_body_mode: 'FULL_DUPLEX_STREAMED', response_body_mode: 'FULL_DUPLEX_STREAMED' },
      });
      s.send({ request_body: { body: Buffer.from(JSON.stringify({ model: PD_MODEL, prompt, max_tokens: 2 })), end_of_stream: true } });
      const [first] = await s.waitFor(1);
      s.close();
      const m = new Map<string, string>();
      for (const o of first.request_headers?.response.header_mutation?.set_headers ?? []) m.set(o.header.key, Buffer.from(o.header.raw_value ?? '').toString() || (o.header.value ?? ''));
      return m;
    };
    const long = await headersFor(longPrompt(31));
    assert.equal(long.get('x-gateway-destination-endpoint'), `${D.host}:${D.port}`, 'the decode pod serves');
    assert.equal(long.get('x-prefiller-host-port'), `${P.host}:${P.port}`, 'its sidecar is told the prefill pod');
    const short = await headersFor('a short prompt');
    assert.equal(short.get('x-prefiller-host-port'), undefined, 'under PD_PROMPT_LEN_THRESHOLD: decode only');
  } finally {
    client.close();
    await epp.close();
    await pd.close();
  }
});
