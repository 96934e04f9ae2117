/**
 * The simulated replica's wire defaults match vLLM's (OpenAI server on an H200-class GPU):
 * cached_tokens only with --enable-prompt-tokens-details and only when > 0, vLLM's error body
 * (integer code, BadRequestError / NotFoundError), `usage: null` on completion stream chunks,
 * max_num_seqs 1024 and the H200 KV capacity in cache_config_info.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFleet, type SimFleet } from '../../src/sim/index.js';

let plain: SimFleet; // vLLM defaults
let details: SimFleet; // --enable-prompt-tokens-details
before(async () => {
  plain = await startFleet({ replicas: 1, basePort: 0, timeScale: 0.01, maxModelLen: 4096, seed: 2 });
  details = await startFleet({ replicas: 1, basePort: 0, timeScale: 0.01, maxModelLen: 4096, seed: 2, enablePromptTokensDetails: true });
});
after(async () => {
  await plain.close();
  await details.close();
});

const post = (url: string, path: string, body: unknown) =>
  fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const sse = (text: string) => text.split('\n\n').filter((l) => l && l !== 'data: [DONE]').map((l) => JSON.parse(l.slice(6)));

test('default: no prompt_tokens_details even on a cache hit (null non-streamed, absent streamed); hits still show in the counters', async () => {
  const url = plain.replicas[0].url;
  const prompt = 'A system prompt every request shares. '.repeat(30);
  await post(url, '/v1/completions', { prompt, max_tokens: 2 });
  const b = (await (await post(url, '/v1/completions', { prompt, max_tokens: 2 })).json()) as any;
  assert.ok('prompt_tokens_details' in b.usage);
  assert.equal(b.usage.prompt_tokens_details, null);
  const s = sse(await (await post(url, '/v1/chat/completions', { messages: [{ role: 'user', content: prompt }], max_tokens: 2, stream: true, stream_options: { include_usage: true } })).text());
  assert.ok(!('prompt_tokens_details' in s.at(-1).usage), JSON.stringify(s.at(-1)));
  const metrics = await (await fetch(url + '/metrics')).text();
  const hits = Number(/vllm:prefix_cache_hits_total\{[^}]*\} (\d+)/.exec(metrics)![1]);
  assert.ok(hits > 0, 'the hit is visible in vllm:prefix_cache_hits_total');
});

test('--enable-prompt-tokens-details: cached_tokens only when > 0', async () => {
  const url = details.replicas[0].url;
  const prompt = 'Another shared system prompt for everyone. '.repeat(30);
  const cold = (await (await post(url, '/v1/completions', { prompt, max_tokens: 2 })).json()) as any;
  assert.equal(cold.usage.prompt_tokens_details, null, 'a miss leaves it unset');
  const warm = (await (await post(url, '/v1/completions', { prompt, max_tokens: 2 })).json()) as any;
  assert.ok(warm.usage.prompt_tokens_details.cached_tokens > 0);
  const s = sse(await (await post(url, '/v1/completions', { prompt, max_tokens: 2, stream: true, stream_options: { include_usage: true } })).text());
  assert.equal(s.at(-1).usage.prompt_tokens_details.cached_tokens, warm.usage.prompt_tokens_details.cached_tokens);
});

test('stream chunks: completions carry "usage": null, chat chunks carry no usage key; the usage chunk comes last', async () => {
  const url = plain.replicas[0].url;
  for (const includeUsage of [false, true]) {
    const so = includeUsage ? { stream_options: { include_usage: true } } : {};
    const c = sse(await (await post(url, '/v1/completions', { prompt: 'hello world', max_tokens: 3, stream: true, ...so })).text());
    const body = includeUsage ? c.slice(0, -1) : c;
    assert.equal(body.length, 3);
    assert.ok(body.every((x) => 'usage' in x && x.usage === null));
    if (includeUsage) assert.deepEqual(c.at(-1).choices, []), assert.equal(c.at(-1).usage.completion_tokens, 3);
    const h = sse(await (await post(url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, stream: true, ...so })).text());
    const hb = includeUsage ? h.slice(0, -1) : h;
    assert.ok(hb.every((x) => !('usage' in x)), JSON.stringify(hb));
    if (includeUsage) assert.equal(h.at(-1).usage.completion_tokens, 3);
  }
});

test("errors: vLLM's ErrorResponse with an integer code and vLLM's types", async () => {
  const url = plain.replicas[0].url;
  const cases: [unknown, number, string, string | null][] = [
    ['{not json', 400, 'BadRequestError', null],
    [{ max_tokens: 3 }, 400, 'BadRequestError', 'prompt'],
    [{ model: 'nope', prompt: 'x' }, 404, 'NotFoundError', 'model'],
    [{ prompt: 'word '.repeat(5000) }, 400, 'BadRequestError', 'prompt'],
  ];
  for (const [body, status, type, param] of cases) {
    const r = await post(url, '/v1/completions', body);
    assert.equal(r.status, status);
    const e = (await r.json()) as any;
    assert.deepEqual(Object.keys(e), ['error']);
    assert.deepEqual(Object.keys(e.error), ['message', 'type', 'param', 'code']);
    assert.equal(e.error.type, type);
    assert.equal(e.error.code, status);
    assert.equal(e.error.param, param);
  }
  await plain.replicas[0].setFaults({ errorRate: 1 });
  const r = await post(url, '/v1/completions', { prompt: 'x' });
  assert.equal(r.status, 500);
  assert.deepEqual(((await r.json()) as any).error.type, 'InternalServerError');
  await plain.replicas[0].setFaults({ errorRate: 0 });
});

test('H200 defaults: max_num_seqs 1024 (1,100 requests at once: 1,024 run), 54,320 KV blocks for the 8B', async () => {
  const m = await (await fetch(plain.replicas[0].url + '/metrics')).text();
  assert.match(m, /num_gpu_blocks="54320"/);
  const e = plain.replicas[0].engine;
  const handles = Array.from({ length: 1100 }, (_, i) => e.submit({ id: `q${i}`, promptTokens: [1, 2, 3, i + 10], maxTokens: 50, ignoreEos: true }, {}));
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(e.stats().running, 1024);
  assert.equal(e.stats().waiting, 76);
  for (const h of handles) h.abort();
});
