/**
 * Decision explanations: the `x-kvroute-explain` request/response header, the trailing SSE
 * comment of streamed responses (which the openai client must ignore), the size bound, and the
 * filters of the admin port's /debug/decisions.
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { request } from 'undici';
import type { SimFleet } from '../../src/sim/index.js';
import { SIM_MODEL, startSimRouter, type SimRouter } from '../helpers/sim-router.js';
import type { RunningRouter } from '../../src/server/router.js';
import { topicDocument } from '../../src/demo/demo-workload.js';
import { encodeExplanation, explainRequested, type Explanation } from '../../src/observability/decision-explanation.js';
import { cacheStatusOf } from '../../src/observability/cache-prediction.js';

const MODEL = SIM_MODEL;
let fleet: SimFleet;
let router: RunningRouter;
let sim: SimRouter | undefined;

before(async () => {
  ({ fleet, router } = (sim = await startSimRouter(5)));
});

after(async () => {
  await sim?.close();
});

async function complete(prompt: string, headers: Record<string, string>, stream = false) {
  const res = await request(`${router.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: 3, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) }),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

test('x-kvroute-explain returns the decision: candidates with per-scorer scores, chosen endpoint, reason, predicted cached tokens', async () => {
  const doc = topicDocument('Explain test', 400);
  const plain = await complete(doc + ' Q1', {});
  assert.equal(plain.headers['x-kvroute-explain'], undefined, 'no explanation unless asked');
  const res = await complete(doc + ' Q2', { 'x-kvroute-explain': '1' });
  assert.equal(res.status, 200);
  const e = JSON.parse(String(res.headers['x-kvroute-explain'])) as Explanation;
  assert.equal(e.endpoint, res.headers['x-kvroute-endpoint']);
  assert.equal(e.endpoint, plain.headers['x-kvroute-endpoint'], 'the shared prefix went back to its replica');
  assert.equal(e.cache, 'hit');
  assert.ok(e.prefixScore! >= 0.75);
  assert.ok(e.predictedCachedTokens! > 0 && e.predictedCachedTokens! <= e.promptTokens);
  assert.equal(typeof e.reason, 'string');
  assert.equal(e.profile, 'default');
  assert.equal(e.candidates.length, 3, 'default: 3 candidates');
  assert.equal(e.candidates[0].id, e.endpoint);
  assert.ok('precise-prefix-cache-scorer' in e.candidates[0].scores);
  assert.ok(e.candidates[0].total >= e.candidates[1].total);
  // The engine agrees: the second request reused the cached prefix.
  const usage = (JSON.parse(res.text) as { usage: { prompt_tokens_details: { cached_tokens: number } } }).usage;
  assert.ok(usage.prompt_tokens_details.cached_tokens > 0);
  const two = await complete(doc + ' Q3', { 'x-kvroute-explain': '2' });
  assert.equal((JSON.parse(String(two.headers['x-kvroute-explain'])) as Explanation).candidates.length, 2);
});

test('streaming: the explanation header plus a trailing SSE comment with engine-reported cached tokens', async () => {
  const doc = topicDocument('Streaming explain', 400);
  await complete(doc + ' warm', {});
  const res = await complete(doc + ' streamed', { 'x-kvroute-explain': 'true' }, true);
  assert.equal(res.status, 200);
  assert.ok(res.headers['x-kvroute-explain']);
  const m = /\n: kvroute-explain (\{.*\})\n\n$/.exec(res.text);
  assert.ok(m, `no trailing comment in ${res.text.slice(-300)}`);
  const t = JSON.parse(m[1]) as { servedBy: string; cachedTokens: number; predictedCachedTokens: number; cache: string };
  assert.equal(t.servedBy, res.headers['x-kvroute-endpoint']);
  assert.ok(t.cachedTokens > 0);
  assert.ok(t.predictedCachedTokens > 0);
  assert.equal(t.cache, 'hit');
  assert.ok(res.text.indexOf('data: [DONE]') < res.text.indexOf(': kvroute-explain'));

  // The official client ignores the comment.
  const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: 'unused', maxRetries: 0, defaultHeaders: { 'x-kvroute-explain': '1' } });
  const stream = await client.completions.create({ model: MODEL, prompt: doc + ' via client', max_tokens: 4, stream: true });
  let chunks = 0;
  for await (const _c of stream) chunks++;
  assert.ok(chunks >= 4);
});

test('the explanation header is bounded, ASCII, and ignores bad header values', () => {
  const big: Explanation = {
    endpoint: 'ep-é',
    reason: 'prefix-cache',
    profile: 'p',
    cache: 'hit',
    promptTokens: 10,
    schedulingMs: 0.1,
    candidates: Array.from({ length: 5 }, (_, i) => ({ id: `endpoint-${i}-${'x'.repeat(900)}`, total: 1, scores: { 'prefix-cache-scorer': 1 } })),
  };
  const s = encodeExplanation(big, 2048);
  assert.ok(s.length <= 2048);
  assert.match(s, /^[\x20-\x7e]+$/);
  const back = JSON.parse(s) as Explanation;
  assert.equal(back.endpoint, 'ep-é');
  assert.ok(back.candidates.length < 5);
  assert.equal(explainRequested(undefined), 0);
  assert.equal(explainRequested('0'), 0);
  assert.equal(explainRequested('9'), 0);
  assert.equal(explainRequested('banana'), 0);
  assert.equal(explainRequested('4'), 4);
  assert.equal(cacheStatusOf(undefined), 'unknown');
  assert.equal(cacheStatusOf(0.05), 'miss');
  assert.equal(cacheStatusOf(0.5), 'partial');
  assert.equal(cacheStatusOf(0.75), 'hit');
});

test('/debug/decisions filters by limit, endpoint, cache status and request id; bad filters are 400', async () => {
  await complete('filter probe one', { 'x-request-id': 'filter-me' });
  const get = async (q: string) => {
    const res = await request(`${router.adminUrl}/debug/decisions${q}`);
    return { status: res.statusCode, body: (await res.body.json()) as Array<{ requestId: string; servedBy: string; chosen: string; cacheStatus: string; candidates: unknown[] }> };
  };
  const all = await get('');
  assert.ok(all.body.length >= 5);
  const one = await get('?limit=1');
  assert.equal(one.body.length, 1);
  assert.equal(one.body[0].requestId, 'filter-me', 'limit keeps the newest');
  const ep = all.body[0].servedBy;
  const byEp = await get(`?endpoint=${encodeURIComponent(ep)}`);
  assert.ok(byEp.body.length > 0 && byEp.body.every((d) => d.servedBy === ep || d.chosen === ep));
  assert.ok(byEp.body.length < all.body.length || all.body.every((d) => d.servedBy === ep));
  const hits = await get('?cache=hit');
  assert.ok(hits.body.length > 0 && hits.body.every((d) => d.cacheStatus === 'hit'));
  assert.equal((await get('?requestId=filter-me')).body.length, 1);
  assert.equal((await get('?limit=abc')).status, 400);
  assert.equal((await get('?status=99999')).status, 400);
});
