/**
 * The gateway over real HTTP: simulated vLLM replicas (real servers on loopback), the kvroute
 * gateway, and the official `openai` npm client.
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { request } from 'undici';
import { startFleet, type SimFleet } from '../../src/sim/index.js';
import { startRouter, type RunningRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { topicDocument } from '../../src/demo/demo-workload.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
let fleet: SimFleet;
let router: RunningRouter;
let client: OpenAI;

before(async () => {
  fleet = await startFleet({ replicas: 3, basePort: 0, model: MODEL, profile: 'llama-3.2-1b', timeScale: 0.05, seed: 1, maxModelLen: 4096, enablePromptTokensDetails: true });
  router = await startRouter({
    endpoints: fleet.replicas.map((r) => ({ url: r.url })),
    scheduler: buildScheduler({ preset: 'default' }),
    port: 0,
    adminPort: 0,
    maxBodyBytes: 256 * 1024,
    processMetrics: false,
  });
  client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await router?.close();
  await fleet?.close();
});

const replicaIds = () => fleet.replicas.map((r) => r.url.replace('http://', ''));

test('openai client: chat and completions, non-streaming, name the serving endpoint', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: MODEL, messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 5 })
    .withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].finish_reason, 'length');
  assert.equal(data.usage?.completion_tokens, 5);
  assert.ok(replicaIds().includes(response.headers.get('x-kvroute-endpoint')!));
  assert.equal(Buffer.from(response.headers.get('x-session-token')!, 'base64').toString(), response.headers.get('x-kvroute-endpoint'));
  const c = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 3 });
  assert.equal(c.object, 'text_completion');
  assert.equal(c.usage?.completion_tokens, 3);
});

test('openai client: streaming chat with include_usage arrives chunk by chunk', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'Stream please' }],
    max_tokens: 8,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let chunks = 0;
  let usage: OpenAI.CompletionUsage | undefined | null;
  for await (const chunk of stream) {
    chunks++;
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(chunks >= 8, `expected a chunk per token, got ${chunks}`);
  assert.ok(text.length > 0);
  assert.equal(usage?.completion_tokens, 8);
  assert.equal(typeof usage?.prompt_tokens, 'number');
  // A miss: vLLM (and the simulator) set prompt_tokens_details only when cached_tokens > 0.
  assert.equal(usage?.prompt_tokens_details?.cached_tokens, undefined);
});

test('a shared long prefix goes back to the replica that cached it', async () => {
  const system = topicDocument('Routing integration test', 600);
  const ask = (q: string) =>
    client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'system', content: system }, { role: 'user', content: q }], max_tokens: 2 })
      .withResponse();
  const first = await ask('first question');
  const second = await ask('a different second question');
  assert.equal(second.response.headers.get('x-kvroute-endpoint'), first.response.headers.get('x-kvroute-endpoint'));
  const cached = second.data.usage?.prompt_tokens_details?.cached_tokens ?? 0;
  assert.ok(cached > 0.9 * (second.data.usage?.prompt_tokens ?? 0), `expected most of the prompt cached, got ${cached}`);
});

async function post(path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const res = await request(router.url + path, { method: 'POST', body, headers });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
}

test('bad inputs get OpenAI-shaped errors and never break the gateway', async () => {
  const broken = await post('/v1/chat/completions', '{"model": "x", "messages": [');
  assert.equal(broken.status, 400);
  assert.match(broken.json.error.message, /not valid JSON/);
  assert.equal(broken.json.error.code, 'KVR_ERR_BAD_JSON');

  const wrongType = await post('/v1/chat/completions', JSON.stringify({ model: MODEL, messages: 'hi' }));
  assert.equal(wrongType.status, 400);
  assert.equal(wrongType.json.error.param, 'messages');

  const huge = await post('/v1/completions', JSON.stringify({ model: MODEL, prompt: 'x'.repeat(300 * 1024) }));
  assert.equal(huge.status, 413);
  assert.match(huge.json.error.message, /larger than/);

  const unknown = await post('/v1/chat/completions', JSON.stringify({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }));
  assert.equal(unknown.status, 404);
  assert.match(unknown.json.error.message, new RegExp(MODEL.replace(/[.]/g, '\\.')));

  const nope = await request(`${router.url}/v2/whatever`);
  assert.equal(nope.statusCode, 404);
  await nope.body.text();
  const wrongMethod = await request(`${router.url}/v1/completions`);
  assert.equal(wrongMethod.statusCode, 405);
  await wrongMethod.body.text();

  // An engine-side error (prompt over max_model_len) passes through with its status and body.
  const tooLong = await post('/v1/completions', JSON.stringify({ model: MODEL, prompt: 'word '.repeat(40000), max_tokens: 1 }));
  assert.equal(tooLong.status, 400);
  assert.ok(tooLong.json.error);

  const ok = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'still alive?' }], max_tokens: 1 });
  assert.equal(ok.choices.length, 1);
  const rejected = await (await request(`${router.adminUrl}/metrics`)).body.text();
  assert.match(rejected, /kvroute_rejected_requests_total\{code="KVR_ERR_BAD_JSON"\} 1/);
});

test('GET /v1/models lists the replicas\' model; admin readyz reports healthy endpoints', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL]);
  const ready = await request(`${router.adminUrl}/readyz`);
  assert.equal(ready.statusCode, 200);
  const body = (await ready.body.json()) as { healthy: number };
  assert.equal(body.healthy, 3);
  const decisions = (await (await request(`${router.adminUrl}/debug/decisions`)).body.json()) as Array<{ candidates: Array<{ scores: Record<string, number> }> }>;
  assert.ok(decisions.length > 0);
  assert.ok(Object.keys(decisions.at(-1)!.candidates[0].scores).includes('precise-prefix-cache-scorer'));
});
