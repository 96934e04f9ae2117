import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startFleet, type SimFleet } from '../../src/sim/index.js';
import type { KvCacheEvent } from '../../src/sim/index.js';

let fleet: SimFleet;
let base: string;
const events: KvCacheEvent[] = [];
const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

before(async () => {
  // Like vLLM started with --enable-prompt-tokens-details (sim-vllm-parity.test.ts covers the default).
  fleet = await startFleet({ replicas: 2, basePort: 0, timeScale: 0.01, maxModelLen: 4096, seed: 1, enablePromptTokensDetails: true, onKvEvent: (id, ev) => id === 'sim-0' && events.push(ev) });
  base = fleet.replicas[0].url;
});
after(() => fleet.close());

const post = (path: string, body: unknown, url = base) =>
  fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

async function metric(name: string, url = base): Promise<number> {
  const text = await (await fetch(url + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(name + '{') || l.startsWith(name + ' '));
  assert.ok(line, `metric ${name} missing`);
  return Number(line.split(' ').pop());
}

test('fleet: distinct ports, header names the replica, /health and /v1/models', async () => {
  assert.notEqual(fleet.replicas[0].port, fleet.replicas[1].port);
  const h = await fetch(base + '/health');
  assert.equal(h.status, 200);
  assert.equal(h.headers.get('x-kvroute-sim-replica'), 'sim-0');
  assert.equal(await h.text(), '');
  const m = (await (await fetch(fleet.replicas[1].url + '/v1/models')).json()) as { object: string; data: { id: string; max_model_len: number; owned_by: string }[] };
  assert.equal(m.object, 'list');
  assert.equal(m.data[0].id, MODEL);
  assert.equal(m.data[0].max_model_len, 4096);
});

test('completions: non-stream body like vLLM; a repeat hits the prefix cache; counters move', async () => {
  const q0 = await metric('vllm:prefix_cache_queries_total');
  const h0 = await metric('vllm:prefix_cache_hits_total');
  const prompt = 'You are a helpful assistant. '.repeat(40);
  const r1 = await post('/v1/completions', { model: MODEL, prompt, max_tokens: 5 });
  assert.equal(r1.status, 200);
  const b1 = (await r1.json()) as any;
  assert.equal(b1.object, 'text_completion');
  assert.match(b1.id, /^cmpl-/);
  assert.equal(b1.model, MODEL);
  assert.equal(b1.choices[0].finish_reason, 'length');
  assert.equal(typeof b1.choices[0].text, 'string');
  assert.equal(b1.usage.completion_tokens, 5);
  assert.equal(b1.usage.total_tokens, b1.usage.prompt_tokens + 5);
  assert.equal(b1.usage.prompt_tokens_details, null, 'no hit: vLLM leaves prompt_tokens_details unset');
  const b2 = (await (await post('/v1/completions', { model: MODEL, prompt, max_tokens: 5 })).json()) as any;
  assert.ok(b2.usage.prompt_tokens_details.cached_tokens > 0.8 * b2.usage.prompt_tokens);
  assert.equal(b2.choices[0].text, b1.choices[0].text, 'deterministic output');
  assert.equal((await metric('vllm:prefix_cache_queries_total')) - q0, 2 * b1.usage.prompt_tokens);
  assert.equal((await metric('vllm:prefix_cache_hits_total')) - h0, b2.usage.prompt_tokens_details.cached_tokens);
  assert.ok(events.some((e) => e.type === 'BlockStored'));
  // token-id prompt
  const b3 = (await (await post('/v1/completions', { prompt: [1, 2, 3, 4], max_tokens: 2 })).json()) as any;
  assert.equal(b3.usage.prompt_tokens, 4);
});

test('chat streaming with include_usage: role chunk, content chunks, finish_reason, usage, [DONE]', async () => {
  const r = await post('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hello there' }], max_tokens: 4, stream: true, stream_options: { include_usage: true } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = await r.text();
  const lines = text.split('\n\n').filter(Boolean);
  assert.equal(lines.at(-1), 'data: [DONE]');
  const chunks = lines.slice(0, -1).map((l) => JSON.parse(l.replace(/^data: /, '')));
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id));
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  const content = chunks.slice(1, -1);
  assert.equal(content.length, 4);
  assert.equal(content.at(-1).choices[0].finish_reason, 'length');
  assert.ok(content.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
  const u = chunks.at(-1);
  assert.deepEqual(u.choices, []);
  assert.equal(u.usage.completion_tokens, 4);
});

test('completions streaming without usage; chat non-stream body', async () => {
  const text = await (await post('/v1/completions', { prompt: 'abc def', max_tokens: 3, stream: true })).text();
  const chunks = text.split('\n\n').filter((l) => l && l !== 'data: [DONE]').map((l) => JSON.parse(l.slice(6)));
  assert.equal(chunks.length, 3);
  assert.ok(chunks.every((c) => c.object === 'text_completion' && c.usage === null), 'vLLM dumps completion chunks with usage: null');
  assert.equal(chunks[2].choices[0].finish_reason, 'length');
  const b = (await (await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 3 })).json()) as any;
  assert.equal(b.object, 'chat.completion');
  assert.equal(b.choices[0].message.role, 'assistant');
  assert.equal(b.usage.completion_tokens, 3);
});

test('errors: OpenAI bodies with the right statuses', async () => {
  const cases: [string, unknown, number, string | null][] = [
    ['/v1/completions', '{not json', 400, null],
    ['/v1/completions', { max_tokens: 3 }, 400, 'prompt'],
    ['/v1/completions', { prompt: 'x', max_tokens: 0 }, 400, 'max_tokens'],
    ['/v1/completions', { prompt: ['a', 'b'] }, 400, 'prompt'],
    ['/v1/chat/completions', { messages: 'hi' }, 400, 'messages'],
    ['/v1/completions', { model: 'nope', prompt: 'x' }, 404, 'model'],
    ['/v1/completions', { prompt: 'word '.repeat(5000) }, 400, 'prompt'],
    ['/v1/completions', { prompt: 'x'.repeat(9 * 1024 * 1024) }, 413, null],
  ];
  for (const [path, body, status, param] of cases) {
    const r = await post(path, body);
    assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 40)}`);
    const e = (await r.json()) as { error: { message: string; type: string; param: string | null; code: string } };
    assert.equal(typeof e.error.message, 'string');
    assert.equal(typeof e.error.type, 'string');
    assert.equal(e.error.param, param);
  }
  assert.equal((await fetch(base + '/nope')).status, 404);
  assert.equal((await fetch(base + '/health')).status, 200, 'still alive');
});

test('tokenize / detokenize / reset_prefix_cache', async () => {
  const t = (await (await post('/tokenize', { prompt: 'hello world' })).json()) as { count: number; max_model_len: number; tokens: number[] };
  assert.equal(t.count, t.tokens.length);
  assert.equal(t.max_model_len, 4096);
  const c = (await (await post('/tokenize', { messages: [{ role: 'user', content: 'hi' }] })).json()) as { tokens: number[] };
  assert.equal(c.tokens[0], 128000);
  const d = (await (await post('/detokenize', { tokens: t.tokens })).json()) as { prompt: string };
  assert.equal(d.prompt, 'hello world');
  assert.equal((await post('/reset_prefix_cache', {})).status, 200);
});

test('/metrics: vLLM names and labels; /sim/restart zeroes counters, changes process_start_time_seconds and, like vLLM, sends no AllBlocksCleared', async () => {
  await post('/v1/completions', { prompt: 'metrics please', max_tokens: 2 });
  const text = await (await fetch(base + '/metrics')).text();
  for (const n of ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc', 'vllm:prompt_tokens_total', 'vllm:generation_tokens_total', 'vllm:request_success_total', 'vllm:time_to_first_token_seconds_bucket', 'vllm:inter_token_latency_seconds_sum', 'vllm:e2e_request_latency_seconds_count', 'vllm:request_queue_time_seconds_count']) {
    assert.ok(text.includes(n), n);
  }
  assert.match(text, /vllm:num_requests_running\{model_name="meta-llama\/Llama-3.1-8B-Instruct",engine="0"\} 0/);
  assert.match(text, /vllm:cache_config_info\{block_size="16",num_gpu_blocks="54320",enable_prefix_caching="True".*\} 1/);
  assert.ok((await metric('vllm:prefix_cache_queries_total')) > 0);
  const started = await metric('process_start_time_seconds');
  assert.ok(started > 1e9, 'seconds since the epoch');
  events.length = 0;
  assert.equal((await post('/sim/restart', {})).status, 200);
  assert.deepEqual(events, [], 'a restarted vLLM is a new process: no AllBlocksCleared');
  assert.ok((await metric('process_start_time_seconds')) > started, 'a new process start time');
  assert.equal(await metric('vllm:prefix_cache_queries_total'), 0);
  assert.equal(await metric('vllm:generation_tokens_total'), 0);
  assert.equal(await metric('vllm:time_to_first_token_seconds_count'), 0);
});

test('faults: errorRate 1 -> 500; down -> ECONNREFUSED, then back up', async () => {
  const url = fleet.replicas[1].url;
  assert.equal((await post('/sim/faults', { errorRate: 1 }, url)).status, 200);
  const r = await post('/v1/completions', { prompt: 'x' }, url);
  assert.equal(r.status, 500);
  assert.deepEqual(((await r.json()) as any).error.code, 500);
  const f = (await (await fetch(url + '/sim/faults')).json()) as { errorRate: number };
  assert.equal(f.errorRate, 1);
  await fleet.replicas[1].setFaults({ errorRate: 0 });
  assert.equal((await post('/sim/faults', { down: true }, url)).status, 200);
  await new Promise((res) => setImmediate(res));
  await fleet.replicas[1].setDown(true);
  await assert.rejects(fetch(url + '/health'), (e: any) => e.cause?.code === 'ECONNREFUSED');
  await fleet.replicas[1].setDown(false);
  assert.equal((await fetch(url + '/health')).status, 200);
});

test('client disconnect aborts the engine request', async () => {
  const replica = fleet.replicas[0];
  await new Promise<void>((resolve, reject) => {
    const req = request(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.once('data', () => {
        assert.equal(replica.engine.stats().running, 1);
        req.destroy();
        res.once('close', () => resolve());
      });
    });
    req.on('error', () => undefined);
    req.end(JSON.stringify({ prompt: 'long one', max_tokens: 3000, stream: true, ignore_eos: true }));
    setTimeout(() => reject(new Error('no data')), 5000).unref();
  }).catch((e) => assert.fail(e));
  // the server sees the close on its next write or socket event
  for (let i = 0; i < 200 && replica.engine.stats().running > 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(replica.engine.stats().running, 0);
  assert.equal(replica.engine.blockManager.usage, 0);
});
