/**
 * The router's tokens equal the engine's: a real simulated vLLM replica (Llama 3 tokenizer.json,
 * and the built-in tokenizer) is asked through `/tokenize` and through the `usage.prompt_tokens`
 * of real generate calls; the `endpoint` source is exercised against the same replica.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KvrError } from '../../src/core/errors.js';
import { startFleet, type SimFleet } from '../../src/sim/index.js';
import { createRequestTokenizer, type RequestTokenizer } from '../../src/tokenize/index.js';
import { llama3WithBosDir } from '../../src/tokenize/testing.js';

type Api = 'chat' | 'completions';

const bos = llama3WithBosDir();
let llamaFleet: SimFleet;
let builtinFleet: SimFleet;
let local: RequestTokenizer;
let builtin: RequestTokenizer;
let remote: RequestTokenizer;

before(async () => {
  llamaFleet = await startFleet({ replicas: 1, basePort: 0, timeScale: 0.01, tokenizerDir: bos.dir, maxModelLen: 8192 });
  builtinFleet = await startFleet({ replicas: 1, basePort: 0, timeScale: 0.01, maxModelLen: 8192 });
  local = createRequestTokenizer({ source: { type: 'dir', dir: bos.dir }, workers: false });
  builtin = createRequestTokenizer({ source: { type: 'builtin' }, workers: false });
  remote = createRequestTokenizer({ source: { type: 'endpoint', url: llamaFleet.replicas[0].url } });
});
after(async () => {
  await Promise.all([local?.close(), builtin?.close(), remote?.close(), llamaFleet?.close(), builtinFleet?.close()]);
  bos.remove();
});

async function post(url: string, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
}

/** The replica's prompt tokens for `body`: its /tokenize ids, and the usage.prompt_tokens of a real call. */
async function engineTokens(url: string, api: Api, body: Record<string, unknown>): Promise<{ ids: number[]; usage: number }> {
  const t = await post(url, '/tokenize', body);
  assert.equal(t.status, 200, JSON.stringify(t.json));
  const g = await post(url, api === 'chat' ? '/v1/chat/completions' : '/v1/completions', { ...body, max_tokens: 1 });
  assert.equal(g.status, 200, JSON.stringify(g.json));
  return { ids: t.json.tokens, usage: g.json.usage.prompt_tokens };
}

const SYSTEM = 'You are kvroute, a router that sends each request to the replica holding its prefix. '.repeat(20);
const CASES: Array<[string, Api, Record<string, unknown>]> = [
  ['completions (BOS from the post-processor)', 'completions', { prompt: 'The capital of France is' }],
  ['completions without special tokens', 'completions', { prompt: 'The capital of France is', add_special_tokens: false }],
  ['chat', 'chat', { messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: 'What is a KV cache?' }] }],
  [
    'multi-turn chat',
    'chat',
    {
      messages: [
        { role: 'system', content: SYSTEM },
        { role: 'user', content: 'What is a KV cache?' },
        { role: 'assistant', content: 'It stores attention keys and values.' },
        { role: 'user', content: '  And prefix caching?\n' },
      ],
    },
  ],
  ['parts content', 'chat', { messages: [{ role: 'user', content: [{ type: 'text', text: 'Part one.' }, { type: 'text', text: 'Part two.' }] }] }],
  ['null content', 'chat', { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null }, { role: 'user', content: 'again' }] }],
  [
    'continue_final_message',
    'chat',
    { messages: [{ role: 'user', content: 'Write a haiku.' }, { role: 'assistant', content: 'Autumn leaves' }], add_generation_prompt: false, continue_final_message: true },
  ],
];

test('Llama 3 replica: router tokens == /tokenize == usage.prompt_tokens', async () => {
  const url = llamaFleet.replicas[0].url;
  for (const [name, api, body] of CASES) {
    const mine = await local.tokenizeBody(api, body);
    const engine = await engineTokens(url, api, body);
    assert.deepEqual(mine, engine.ids, name);
    assert.equal(mine.length, engine.usage, `${name}: usage.prompt_tokens`);
  }
  assert.equal((await local.tokenizeBody('completions', { prompt: 'x' }))[0], 128000);
});

test('built-in replica: builtin source tokens == /tokenize == usage.prompt_tokens', async () => {
  const url = builtinFleet.replicas[0].url;
  for (const [name, api, body] of CASES) {
    const mine = await builtin.tokenizeBody(api, body);
    const engine = await engineTokens(url, api, body);
    assert.deepEqual(mine, engine.ids, name);
    assert.equal(mine.length, engine.usage, `${name}: usage.prompt_tokens`);
  }
});

test('endpoint source: the replica\'s /tokenize gives the local tokens; token ids pass through without a call', async () => {
  for (const [name, api, body] of CASES) assert.deepEqual(await remote.tokenizeBody(api, body), await local.tokenizeBody(api, body), name);
  const calls = remote.stats().endpointCalls;
  assert.deepEqual(await remote.tokenizeBody('completions', { prompt: [7, 8, 9] }), [7, 8, 9]);
  assert.equal(remote.stats().endpointCalls, calls);
  await assert.rejects(
    remote.tokenizeBody('completions', { prompt: 'x' }, 'no-such-model'),
    (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_BAD_REQUEST' && /404/.test(e.message),
  );
});

test('endpoint source failures become KvrErrors: refused connection, timeout', async () => {
  // A port that was just free: nothing listens there, the connection is refused.
  const srv: Server = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const refused = createRequestTokenizer({ source: { type: 'endpoint', url: `http://127.0.0.1:${port}` } });
  try {
    await assert.rejects(refused.tokenizeBody('completions', { prompt: 'x' }), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_UPSTREAM');
  } finally {
    await refused.close();
  }
  const srv2: Server = createServer(() => undefined); // accepts, never answers
  await new Promise<void>((r) => srv2.listen(0, '127.0.0.1', r));
  const slow = createRequestTokenizer({ source: { type: 'endpoint', url: `http://127.0.0.1:${(srv2.address() as AddressInfo).port}`, timeoutMs: 200 } });
  try {
    await assert.rejects(slow.tokenizeBody('completions', { prompt: 'x' }), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_UPSTREAM_TIMEOUT');
  } finally {
    await slow.close();
    srv2.closeAllConnections();
    await new Promise<void>((r) => srv2.close(() => r()));
  }
});
