/**
 * Plays Envoy message by message against `kvroute serve --ext-proc` (real gRPC on loopback, the
 * vendored Envoy protos, a simulated fleet behind the endpoint pool) and checks each rule of the
 * endpoint-picker protocol; every test is named after the rule it pins, so a regression names
 * the broken rule. Upstream responses are played by the test as Envoy would relay them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { startFleet, type SimFleet } from '../../src/sim/index.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { startEndpointPicker, type RunningEndpointPicker } from '../../src/server/ext-proc/start-endpoint-picker.js';
import { EXT_PROC_SERVICE } from '../../src/server/ext-proc/proto-loader.js';
import { FakeEnvoyStream, envoyProtos } from '../helpers/envoy.js';
import { fromProtoStruct, toProtoStruct } from '../../src/server/ext-proc/struct-value.js';
import type { ProcessingResponse } from '../../src/server/ext-proc/ext-proc-messages.js';

const MODEL = 'sim-model';
let fleet: SimFleet;
let epp: RunningEndpointPicker;
let addrs: string[];
let client: grpc.Client & { Process(): grpc.ClientDuplexStream<object, ProcessingResponse> };
let health: grpc.Client & { Check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void };

before(async () => {
  fleet = await startFleet({ replicas: 3, basePort: 0, model: MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, seed: 7, maxModelLen: 8192 });
  addrs = fleet.replicas.map((r) => new URL(r.url).host);
  epp = await startEndpointPicker({
    endpoints: fleet.replicas.map((r) => ({ url: r.url })),
    scheduler: buildScheduler({ preset: 'default' }),
    extProcPort: 0,
    healthPort: 0,
    adminPort: 0,
    processMetrics: false,
    maxBodyBytes: 1024 * 1024,
    drainTimeoutMs: 20_000,
    scrapeIntervalMs: 60_000, // one scrape at start; tests set saturation by hand
  });
  const pkg = grpc.loadPackageDefinition(envoyProtos()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  client = new pkg.envoy.service.ext_proc.v3.ExternalProcessor(epp.extProcAddress, grpc.credentials.createInsecure());
  const hpkg = grpc.loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String })) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  health = new hpkg.grpc.health.v1.Health(`127.0.0.1:${epp.healthPort}`, grpc.credentials.createInsecure());
});

after(async () => {
  client?.close();
  health?.close();
  await epp?.close();
  await fleet?.close();
});

/** One ext_proc stream on the shared client. */
class EnvoyStream extends FakeEnvoyStream {}

type Headers = Record<string, string>;
const hmap = (h: Headers) => ({ headers: Object.entries(h).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) });

function requestHeaders(extra: Headers = {}, eos = false, metadata?: Record<string, unknown>, path = '/v1/completions', method = 'POST'): object {
  return {
    request_headers: { headers: hmap({ ':method': method, ':path': path, ':authority': 'gw', 'content-type': 'application/json', ...extra }), end_of_stream: eos },
    ...(metadata !== undefined ? { metadata_context: { filter_metadata: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, toProtoStruct(v as Record<string, unknown>)])) } } : {}),
    protocol_config: { request_body_mode: 'FULL_DUPLEX_STREAMED', response_body_mode: 'FULL_DUPLEX_STREAMED' },
  };
}
const body = (b: Buffer | string, eos: boolean) => ({ request_body: { body: Buffer.from(b), end_of_stream: eos } });
const completion = (prompt: string, extra: object = {}) => Buffer.from(JSON.stringify({ model: MODEL, prompt, max_tokens: 4, ...extra }));

function setHeaders(r: ProcessingResponse | undefined): Map<string, string> {
  const m = new Map<string, string>();
  const hm = r?.request_headers?.response.header_mutation ?? r?.response_headers?.response.header_mutation ?? r?.immediate_response?.headers;
  for (const o of hm?.set_headers ?? []) m.set(o.header.key, Buffer.from(o.header.raw_value ?? '').toString() || (o.header.value ?? ''));
  return m;
}
const kind = (r: ProcessingResponse) => Object.keys(r).find((k) => k !== 'dynamic_metadata' && (r as Record<string, unknown>)[k] != null)!;
const streamed = (r: ProcessingResponse) => (r.request_body ?? r.response_body)!.response.body_mutation!.streamed_response!;

/** Runs a request phase to the pick and returns the stream and the replies so far. */
async function pickFor(payload: Buffer, headers: Headers = {}, metadata?: Record<string, unknown>): Promise<{ s: EnvoyStream; replies: ProcessingResponse[] }> {
  const s = new EnvoyStream(client);
  s.send(requestHeaders(headers, false, metadata));
  s.send(body(payload, true));
  const replies = await s.waitFor(2);
  return { s, replies };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 100 && epp.lifecycles.active > 0; i++) await new Promise((r) => setTimeout(r, 20));
}

test('rule: no reply on request headers; the headers reply comes before any body reply', async () => {
  const s = new EnvoyStream(client);
  const payload = completion('order matters '.repeat(20));
  s.send(requestHeaders());
  await s.expectQuiet(0);
  s.send(body(payload.subarray(0, 50), false));
  await s.expectQuiet(0);
  s.send(body(payload.subarray(50), true));
  const replies = await s.waitFor(2);
  assert.equal(kind(replies[0]), 'request_headers', 'first reply is the headers reply');
  assert.equal(replies[0].request_headers!.response.clear_route_cache, true, 'clear_route_cache');
  assert.equal(kind(replies[1]), 'request_body');
  s.close();
  await settle();
});

test('rule: body replies are streamed_response chunks <= 62,000 B, end_of_stream only on the last; multi-chunk body + Content-Length', async () => {
  const payload = completion('a long prompt with many words '.repeat(5000)); // ~150 kB
  const s = new EnvoyStream(client);
  s.send(requestHeaders());
  for (let at = 0; at < payload.length; at += 40_000) s.send(body(payload.subarray(at, at + 40_000), at + 40_000 >= payload.length));
  const n = 1 + Math.ceil(payload.length / 62_000);
  const replies = await s.waitFor(n);
  await s.expectQuiet(n);
  assert.equal(setHeaders(replies[0]).get('content-length'), String(payload.length));
  const chunks = replies.slice(1).map(streamed);
  for (const c of chunks) assert.ok(c.body.length > 0 && c.body.length <= 62_000, `chunk of ${c.body.length} B`);
  assert.deepEqual(chunks.map((c) => c.end_of_stream === true), chunks.map((_, i) => i === chunks.length - 1));
  assert.ok(Buffer.concat(chunks.map((c) => Buffer.from(c.body))).equals(payload), 'body re-sent byte for byte');
  s.close();
  await settle();
});

test('rule: destination header == envoy.lb metadata, primary then fallbacks in order, client destinations and control headers stripped', async () => {
  const { s, replies } = await pickFor(completion('fallback order '.repeat(30)), {
    'x-gateway-destination-endpoint': '6.6.6.6:1',
    'x-gateway-destination-endpoint-subset': '6.6.6.6:1',
    'x-llm-d-inference-objective': 'premium',
    'x-prefiller-host-port': '6.6.6.6:1',
  });
  const hdr = setHeaders(replies[0]).get('x-gateway-destination-endpoint')!;
  const meta = fromProtoStruct(replies[0].dynamic_metadata) as Record<string, Record<string, string>>;
  assert.equal(meta['envoy.lb']['x-gateway-destination-endpoint'], hdr, 'metadata holds the same string');
  const list = hdr.split(',');
  assert.equal(list.length, 3, 'primary + 2 fallbacks');
  assert.deepEqual([...list].sort(), [...addrs].sort(), 'distinct pool members, never the client-sent address');
  const removed = replies[0].request_headers!.response.header_mutation!.remove_headers ?? [];
  assert.ok(['x-gateway-destination-endpoint-subset', 'x-llm-d-inference-objective', 'x-prefiller-host-port'].every((h) => removed.includes(h)), `removed: ${removed}`);
  // The response phase confirms the primary is what the scheduler chose.
  s.send({ response_headers: { headers: hmap({ ':status': '200', 'content-type': 'application/json' }), end_of_stream: true }, metadata_context: { filter_metadata: { 'envoy.lb': toProtoStruct({ 'x-gateway-destination-endpoint-served': list[0] }) } } });
  await s.waitFor(3);
  s.close();
  await settle();
  const d = epp.decisions.toArray().at(-1)!;
  assert.equal(d.result.endpoint.address, list[0]);
  assert.deepEqual(d.result.ranked.slice(0, 3).map((e) => e.address), list, 'fallbacks in the scheduler\'s rank order');
});

test('rule: subset hint as a list restricts the pick to the list', async () => {
  const { s, replies } = await pickFor(completion('subset list '.repeat(10)), {}, { 'envoy.lb.subset_hint': { 'x-gateway-destination-endpoint-subset': [addrs[1]] } });
  assert.equal(setHeaders(replies[0]).get('x-gateway-destination-endpoint'), addrs[1]);
  s.close();
  await settle();
});

test('rule: subset hint as a comma-separated string restricts the pick to it', async () => {
  const { s, replies } = await pickFor(completion('subset csv '.repeat(10)), {}, { 'envoy.lb.subset_hint': { 'x-gateway-destination-endpoint-subset': `${addrs[0]}, ${addrs[2]}` } });
  const list = setHeaders(replies[0]).get('x-gateway-destination-endpoint')!.split(',');
  assert.deepEqual([...list].sort(), [addrs[0], addrs[2]].sort());
  s.close();
  await settle();
});

test('rule: a subset hint no endpoint qualifies for gives ImmediateResponse 503 rejected-no-endpoints', async () => {
  for (const subset of [[], '10.9.9.9:8000']) {
    const s = new EnvoyStream(client);
    s.send(requestHeaders({}, false, { 'envoy.lb.subset_hint': { 'x-gateway-destination-endpoint-subset': subset } }));
    s.send(body(completion('nobody '.repeat(5)), true));
    const [r] = await s.waitFor(1);
    assert.equal(r.immediate_response?.status.code, 503, JSON.stringify(r));
    assert.equal(setHeaders(r).get('x-llm-d-request-dropped-reason'), 'rejected-no-endpoints');
    s.close();
  }
  await settle();
  assert.equal(epp.lifecycles.active, 0, 'rejected lifecycles ended');
});

test('rule: every endpoint saturated gives ImmediateResponse 429 rejected-saturated', async () => {
  {
    const sat = await startEndpointPicker({ endpoints: fleet.replicas.map((r) => ({ url: r.url })), scheduler: buildScheduler({ preset: 'default' }), extProcPort: 0, healthPort: 0, adminPort: 0, processMetrics: false, scrapeIntervalMs: 60_000, saturation: { queueDepth: 8 } });
    try {
      for (const e of sat.pool.all()) e.metrics = { ...e.metrics, waiting: 9 };
      const pkg = grpc.loadPackageDefinition(envoyProtos()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
      const c = new pkg.envoy.service.ext_proc.v3.ExternalProcessor(sat.extProcAddress, grpc.credentials.createInsecure());
      const call = c.Process();
      call.on('error', () => undefined);
      const got = new Promise<ProcessingResponse>((res) => call.once('data', res));
      call.write(requestHeaders());
      call.write(body(completion('busy '.repeat(5)), true));
      const r = await got;
      assert.equal(r.immediate_response?.status.code, 429);
      assert.equal(setHeaders(r).get('x-llm-d-request-dropped-reason'), 'rejected-saturated');
      // One endpoint with room: no shedding.
      sat.pool.all()[0].metrics = { ...sat.pool.all()[0].metrics, waiting: 0 };
      const call2 = c.Process();
      call2.on('error', () => undefined); // cancelled when this picker closes
      const got2 = new Promise<ProcessingResponse>((res) => call2.once('data', res));
      call2.write(requestHeaders());
      call2.write(body(completion('busy '.repeat(5)), true));
      assert.ok((await got2).request_headers, 'picked once an endpoint has room');
      call.end();
      call2.end();
      c.close();
    } finally {
      await sat.close();
    }
  }
});

test('rule: malformed JSON -> 400, unknown model -> 404, body over the cap -> 413 (ImmediateResponse)', async () => {
  const cases: Array<[Buffer, number]> = [
    [Buffer.from('{"model":'), 400],
    [Buffer.from(JSON.stringify({ model: 'no-such-model', prompt: 'x' })), 404],
    [Buffer.alloc(1024 * 1024 + 10, 'a'), 413],
  ];
  for (const [payload, status] of cases) {
    const s = new EnvoyStream(client);
    s.send(requestHeaders());
    for (let at = 0; at < payload.length; at += 256 * 1024) s.send(body(payload.subarray(at, at + 256 * 1024), at + 256 * 1024 >= payload.length));
    const [r] = await s.waitFor(1);
    assert.equal(r.immediate_response?.status.code, status, `expected ${status}: ${JSON.stringify(r).slice(0, 300)}`);
    assert.match(Buffer.from(r.immediate_response!.body!).toString(), /"error"/);
    s.close();
  }
  await settle();
  assert.equal(epp.lifecycles.active, 0);
});

test('rule: a bodyless GET gets an endpoint at once (headers with end_of_stream)', async () => {
  const s = new EnvoyStream(client);
  s.send(requestHeaders({}, true, undefined, '/v1/models', 'GET'));
  const [r] = await s.waitFor(1);
  const h = setHeaders(r);
  assert.ok(addrs.includes(h.get('x-gateway-destination-endpoint')!), 'one pool member');
  assert.equal(h.has('content-length'), false);
  await s.expectQuiet(1);
  s.close();
});

test('rule: SSE pass-through: each chunk echoed at once, usage, first token and the -served endpoint reach the lifecycle', async () => {
  const { s, replies } = await pickFor(completion('stream me '.repeat(40), { stream: true }), { 'x-request-id': 'sse-served-1' });
  const list = setHeaders(replies[0]).get('x-gateway-destination-endpoint')!.split(',');
  const served = list[1]; // Envoy fell back to the first fallback
  s.send({ response_headers: { headers: hmap({ ':status': '200', 'content-type': 'text/event-stream' }), end_of_stream: false }, metadata_context: { filter_metadata: { 'envoy.lb': toProtoStruct({ 'x-gateway-destination-endpoint-served': served }) } } });
  const r3 = await s.waitFor(3);
  assert.equal(kind(r3[2]), 'response_headers');
  assert.equal(setHeaders(r3[2]).get('x-request-id'), 'sse-served-1');
  const c1 = Buffer.from('data: {"choices":[{"text":"hi"}]}\n\n');
  s.send({ response_body: { body: c1, end_of_stream: false } });
  const r4 = await s.waitFor(4);
  assert.ok(Buffer.from(streamed(r4[3]).body).equals(c1), 'first chunk echoed before the next arrives');
  assert.equal(streamed(r4[3]).end_of_stream, false);
  const c2 = Buffer.from('data: {"choices":[],"usage":{"prompt_tokens":120,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":96}}}\n\ndata: [DONE]\n\n');
  s.send({ response_body: { body: c2, end_of_stream: true } });
  const r5 = await s.waitFor(5);
  assert.ok(Buffer.from(streamed(r5[4]).body).equals(c2));
  assert.equal(streamed(r5[4]).end_of_stream, true);
  s.close();
  await settle();
  const d = epp.decisions.toArray().find((x) => x.requestId === 'sse-served-1')!;
  assert.equal(epp.pool.get(d.servedBy)!.address, served, 'the lifecycle followed Envoy to the fallback');
  assert.equal(d.status, 200);
  assert.equal(d.promptTokens, 120);
  assert.equal(d.cachedTokens, 96);
  assert.ok(d.ttftMs !== undefined && d.ttftMs >= 0, 'first token seen');
  assert.equal(epp.lifecycles.active, 0);
});

test('rule: a non-streaming response is buffered to the end and echoed in <= 62,000 B chunks', async () => {
  const { s } = await pickFor(completion('json please '.repeat(20)), { 'x-request-id': 'json-1' });
  s.send({ response_headers: { headers: hmap({ ':status': '200', 'content-type': 'application/json' }), end_of_stream: false } });
  await s.waitFor(3);
  const text = JSON.stringify({ choices: [{ text: 'x'.repeat(100_000) }], usage: { prompt_tokens: 50, completion_tokens: 9, prompt_tokens_details: { cached_tokens: 32 } } });
  const full = Buffer.from(text);
  s.send({ response_body: { body: full.subarray(0, 70_000), end_of_stream: false } });
  await s.expectQuiet(3);
  s.send({ response_body: { body: full.subarray(70_000), end_of_stream: true } });
  const n = 3 + Math.ceil(full.length / 62_000);
  const replies = await s.waitFor(n);
  await s.expectQuiet(n);
  const chunks = replies.slice(3).map(streamed);
  for (const c of chunks) assert.ok(c.body.length <= 62_000);
  assert.deepEqual(chunks.map((c) => c.end_of_stream === true), chunks.map((_, i) => i === chunks.length - 1));
  assert.ok(Buffer.concat(chunks.map((c) => Buffer.from(c.body))).equals(full));
  s.close();
  await settle();
  const d = epp.decisions.toArray().find((x) => x.requestId === 'json-1')!;
  assert.equal(d.cachedTokens, 32);
  assert.equal(d.promptTokens, 50);
});

test('rule: request trailers mark the end of the body (FULL_DUPLEX requires trailer mode SEND); answered with an empty TrailersResponse', async () => {
  const payload = completion('trailers end it '.repeat(10));
  const s = new EnvoyStream(client);
  s.send(requestHeaders());
  s.send(body(payload, false));
  await s.expectQuiet(0);
  s.send({ request_trailers: { trailers: hmap({ 'x-trailer': '1' }) } });
  const replies = await s.waitFor(3);
  assert.deepEqual(replies.map(kind), ['request_headers', 'request_body', 'request_trailers']);
  assert.equal(streamed(replies[1]).end_of_stream, false, 'the trailers, not the body, end the stream');
  assert.ok(Buffer.from(streamed(replies[1]).body).equals(payload));
  s.close();
  await settle();
});

test('rule: Envoy cancelling the stream mid-response aborts the lifecycle exactly once (load released)', async () => {
  const before = epp.lifecycles.active;
  const { s } = await pickFor(completion('cancel me '.repeat(10), { stream: true }));
  assert.equal(epp.lifecycles.active, before + 1);
  s.send({ response_headers: { headers: hmap({ ':status': '200', 'content-type': 'text/event-stream' }) } });
  await s.waitFor(3);
  s.call.cancel();
  await settle();
  assert.equal(epp.lifecycles.active, before, 'lifecycle ended');
  const text = await (await fetch(`${epp.adminUrl}/metrics`)).text();
  assert.match(text, /kvroute_client_aborts_total\{[^}]*\} [1-9]/);
  const load = (epp as unknown as { pool: { all(): Array<{ id: string }> } }).pool.all();
  const inflight = text.split('\n').filter((l) => l.startsWith('kvroute_inflight_requests{')).map((l) => Number(l.split(' ').at(-1)));
  assert.ok(inflight.every((v) => v === 0), `in-flight gauge back to 0 on ${load.length} endpoints: ${inflight}`);
});

test('rule: a body mode other than FULL_DUPLEX_STREAMED is refused with a message naming the setting', async () => {
  const s = new EnvoyStream(client);
  s.send({ ...requestHeaders(), protocol_config: { request_body_mode: 'BUFFERED' } });
  const [r] = await s.waitFor(1);
  assert.equal(r.immediate_response?.status.code, 500);
  assert.match(Buffer.from(r.immediate_response!.body!).toString(), /FULL_DUPLEX_STREAMED/);
  s.close();
});

test('rule: out-of-order messages end that stream with a gRPC error (Envoy then applies its failure mode); the picker keeps serving', async () => {
  const s = new EnvoyStream(client);
  s.send(body('{"model":"x"}', true)); // a body before any headers
  for (let i = 0; i < 100 && !s.ended; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(s.ended && s.error !== undefined, 'stream ended with an error');
  assert.equal(s.error!.code, grpc.status.INVALID_ARGUMENT);
  assert.match(s.error!.details, /protocol violation/);
  const ok = await pickFor(completion('after a bad stream '.repeat(5)));
  assert.ok(ok.replies[0].request_headers, 'next stream picked normally');
  ok.s.close();
  await settle();
  assert.equal(epp.lifecycles.active, 0);
});

test('rule: 5xx answers reported through the response phase eject the replica (same outlier detection as the gateway)', async () => {
  // A replica still healthy (the fallback test above marked its primary down until the next scrape).
  const bad = epp.pool.all().find((e) => e.healthy)!.address;
  for (let i = 0; i < 5; i++) {
    const { s, replies } = await pickFor(completion(`failing ${i} `.repeat(5)), {}, { 'envoy.lb.subset_hint': { 'x-gateway-destination-endpoint-subset': [bad] } }).catch((e) => { throw new Error(`pick ${i}: ${e.message}`); });
    assert.equal(setHeaders(replies[0]).get('x-gateway-destination-endpoint'), bad);
    s.send({ response_headers: { headers: hmap({ ':status': '503', 'content-type': 'application/json' }), end_of_stream: true }, metadata_context: { filter_metadata: { 'envoy.lb': toProtoStruct({ 'x-gateway-destination-endpoint-served': bad }) } } });
    await s.waitFor(3);
    s.close();
  }
  await settle();
  const { s, replies } = await pickFor(completion('after the ejection '.repeat(5)));
  const list = setHeaders(replies[0]).get('x-gateway-destination-endpoint')!.split(',');
  assert.ok(!list.includes(bad), `ejected replica not offered: ${list}`);
  assert.match(await (await fetch(`${epp.adminUrl}/metrics`)).text(), new RegExp(`kvroute_outlier_ejections_total\\{endpoint="${bad.replace(/\./g, '\\.')}"\\} 1`));
  s.close();
  await settle();
});

function check(service: string): Promise<string> {
  return new Promise((res, rej) => health.Check({ service }, (err, r) => (err ? rej(err) : res(r!.status))));
}

// Runs last: the drain shuts the picker down.
test('rule: gRPC health answers liveness, readiness, "" and the ext_proc service; on drain readiness goes NOT_SERVING while ext_proc keeps serving', async () => {
  for (const svc of ['liveness', 'readiness', '', EXT_PROC_SERVICE]) assert.equal(await check(svc), 'SERVING', svc);
  await assert.rejects(check('no-such-service'), /NOT_FOUND/);
  // A stream open when the drain starts (SIGTERM) keeps the servers up until it finishes.
  const { s } = await pickFor(completion('drain '.repeat(10)));
  const drained = epp.extProc.drain();
  assert.equal(await check('readiness'), 'NOT_SERVING');
  assert.equal(await check(''), 'NOT_SERVING');
  assert.equal(await check(EXT_PROC_SERVICE), 'NOT_SERVING');
  assert.equal(await check('liveness'), 'SERVING');
  // New streams are still served while draining.
  const late = await pickFor(completion('still serving '.repeat(10)));
  assert.ok(late.replies[0].request_headers, 'picked during the drain');
  for (const st of [s, late.s]) {
    st.send({ response_headers: { headers: hmap({ ':status': '200', 'content-type': 'application/json' }), end_of_stream: true } });
    st.close();
  }
  const t0 = Date.now();
  await drained;
  assert.ok(Date.now() - t0 < 15_000, 'drain finished once the streams did, not at the 20 s timeout');
  assert.equal(epp.extProc.activeStreams(), 0);
  assert.equal(epp.lifecycles.active, 0);
});

