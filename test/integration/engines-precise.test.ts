/**
 * The precise preset in front of a non-vLLM engine (the simulator's llama.cpp dialect, real HTTP):
 * an empty tokenization is an error, not "0 blocks, precise"; the default tokenizer asks the
 * pool's endpoints in their own format, round robin; and a fleet whose engine publishes no KV
 * events falls back to approximate routing with a counted reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runServe } from '../../src/app/serve.js';
import { silentLogger } from '../../src/core/logger.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import { fleetEndpointList, startFleet } from '../../src/sim/fleet.js';
import { BuiltinTokenizer } from '../../src/sim/tokenizer.js';
import { createRequestTokenizer } from '../../src/tokenize/request-tokenizer.js';
import { EndpointPool } from '../../src/datalayer/endpoint-pool.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const fast = { model: MODEL, basePort: 0, profile: 'llama-3.2-1b' as const, timeScale: 0.02, maxModelLen: 8192, slowMetrics: false };

test('vLLM-format /tokenize against llama.cpp: the 200 {"tokens": []} is an error (it used to count as precise)', async () => {
  const fleet = await startFleet({ ...fast, replicas: 1, dialect: { engine: 'llamacpp' } });
  const tok = createRequestTokenizer({ source: { type: 'endpoint', url: fleet.replicas[0].url } });
  try {
    await assert.rejects(tok.tokenizeBody('completions', { prompt: 'hello world, a prompt' }, MODEL), /empty token list/);
    assert.equal(tok.stats().failures, 1);
  } finally {
    await tok.close();
    await fleet.close();
  }
});

test('default tokenizer source: the pool\'s endpoints, in the engine\'s format, round robin', async () => {
  const fleet = await startFleet({ ...fast, replicas: 1, dialect: { engine: 'llamacpp' } });
  const tok = createRequestTokenizer({ source: { type: 'endpoints', timeoutMs: 2000 } });
  try {
    // Endpoint 1 is a dead address marked healthy: every other call goes there and fails.
    const pool = new EndpointPool([{ url: fleet.replicas[0].url, engine: 'llamacpp' }, { url: '127.0.0.1:9', engine: 'llamacpp' }]);
    for (const ep of pool.all()) (ep as Endpoint).healthy = true;
    tok.useEndpoints(() => pool.all());
    const text = 'the router tokenizes with the engine it routes to';
    const want = new BuiltinTokenizer().encode(text, { addSpecialTokens: true });
    const results = await Promise.allSettled([0, 1, 2, 3].map(() => tok.tokenizeBody('completions', { prompt: text }, MODEL)));
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected'], 'calls alternate between the two endpoints');
    assert.deepEqual((results[0] as PromiseFulfilledResult<number[]>).value, want, 'llama.cpp {content} format gives the engine\'s tokens');
    // Chat goes through llama.cpp's /apply-template first.
    const chat = await tok.tokenizeBody('chat', { messages: [{ role: 'user', content: 'hi' }] }, MODEL);
    assert.ok(chat.length > 3);
  } finally {
    await tok.close();
    await fleet.close();
  }
});

test('precise preset on llama.cpp endpoints (no --engine, no --tokenizer): falls back to approximate, counted as engine-no-events', async () => {
  const fleet = await startFleet({ ...fast, replicas: 2, dialect: { engine: 'llamacpp', parallel: 2 } });
  const router = await runServe({
    endpoints: fleetEndpointList(fleet),
    preset: 'llm-d-precise',
    host: '127.0.0.1',
    port: 0,
    adminPort: 0,
    maxBodyBytes: 1 << 20,
    trustForwardedFor: false,
    scrapeIntervalMs: 20,
    kvEvents: 'off',
    env: {},
    logger: silentLogger,
  });
  try {
    assert.deepEqual(router.pool.all().map((e) => e.engine), ['llamacpp', 'llamacpp']);
    const prompt = 'shared instructions for the precise preset test '.repeat(30);
    const served: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${router.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: `${prompt} question ${i}`, max_tokens: 2 }) });
      assert.equal(r.status, 200);
      served.push(r.headers.get('x-kvroute-endpoint')!);
      await r.arrayBuffer();
    }
    const stats = (await (await fetch(`${router.adminUrl}/debug/stats`)).json()) as { preciseScorer: { precise: number; fallbacks: Record<string, number> } };
    assert.equal(stats.preciseScorer.precise, 0, 'nothing may be counted as precise');
    assert.ok(stats.preciseScorer.fallbacks['engine-no-events'] >= 3, JSON.stringify(stats.preciseScorer));
    // The approximate fallback keeps locality: the shared prefix stays on one server.
    assert.equal(new Set(served.slice(1)).size, 1, `follow-ups scattered: ${served}`);
    const metrics = await (await fetch(`${router.adminUrl}/metrics`)).text();
    assert.match(metrics, /engine-no-events/);
  } finally {
    await router.close();
    await fleet.close();
  }
});
