import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { KvrError } from '../core/errors.js';
import type { InferenceRequest } from '../core/request.js';
import { BuiltinTokenizer } from '../sim/tokenizer.js';
import { createRequestTokenizer } from './request-tokenizer.js';
import { llama3TokenizerDir, llama3WithBosDir } from './testing.js';

const DIR = llama3TokenizerDir();
const bosCopy = llama3WithBosDir();
const plain = createRequestTokenizer({ source: { type: 'dir', dir: DIR }, workers: false });
const withBos = createRequestTokenizer({ source: { type: 'dir', dir: bosCopy.dir }, workers: false });
// Everything of at least 1 character goes to the (single) worker.
const offloaded = createRequestTokenizer({ source: { type: 'dir', dir: DIR }, workers: { size: 1, minChars: 1 } });

after(async () => {
  await Promise.all([plain.close(), withBos.close(), offloaded.close()]);
  bosCopy.remove();
});

function req(api: 'chat' | 'completions', body: Record<string, unknown>): InferenceRequest {
  return { id: 'r', api, model: 'm', body, promptText: '', maxTokens: 16, stream: false, clientIp: '127.0.0.1', headers: {}, arrivedAt: 0, memo: new Map() };
}

test('known ids; BOS for completions exactly when the tokenizer.json post-processor adds it', async () => {
  assert.deepEqual(await plain.tokenizeBody('completions', { prompt: 'Hello world' }), [9906, 1917], 'first Llama 3 release: ByteLevel post-processor, no BOS');
  assert.deepEqual(await withBos.tokenizeBody('completions', { prompt: 'Hello world' }), [128000, 9906, 1917], 'TemplateProcessing post-processor: BOS');
  assert.deepEqual(await withBos.tokenizeBody('completions', { prompt: 'Hello world', add_special_tokens: false }), [9906, 1917]);
  // Chat: the template writes the BOS; add_special_tokens defaults to false, so there is exactly one.
  const chat = await withBos.tokenizeBody('chat', { messages: [{ role: 'user', content: 'Hello world' }] });
  assert.deepEqual(chat, [128000, 128006, 882, 128007, 271, 9906, 1917, 128009, 128006, 78191, 128007, 271]);
  const doubled = await withBos.tokenizeBody('chat', { messages: [{ role: 'user', content: 'Hello world' }], add_special_tokens: true });
  assert.deepEqual(doubled, [128000, ...chat], 'add_special_tokens: true on chat adds a second BOS, as vLLM does');
});

test('token-id prompts pass through unchanged; multi-prompt batches route on the first prompt', async () => {
  assert.deepEqual(await plain.tokenizeBody('completions', { prompt: [1, 2, 3] }), [1, 2, 3]);
  assert.deepEqual(await plain.tokenizeBody('completions', { prompt: [[4, 5], [6]] }), [4, 5]);
  assert.deepEqual(await plain.tokenizeBody('completions', { prompt: ['Hello world', 'x'] }), [9906, 1917]);
  assert.ok(plain.stats().passthrough >= 2);
});

test('tokenize(req) is memoized on the request', async () => {
  const r = req('chat', { messages: [{ role: 'user', content: 'hi' }] });
  const before = plain.stats().requests;
  const a = await plain.tokenize(r);
  const b = await plain.tokenize(r);
  assert.equal(a, b, 'same array');
  assert.equal(plain.stats().requests, before + 1);
});

test('worker pool results equal inline results (completions, chat, long texts)', async () => {
  const long = 'Precise routing needs exact tokens: 123 + 456 = 579. '.repeat(300);
  const bodies: Array<['chat' | 'completions', Record<string, unknown>]> = [
    ['completions', { prompt: 'short' }],
    ['completions', { prompt: long }],
    ['completions', { prompt: long + ' Next question?' }],
    ['chat', { messages: [{ role: 'system', content: long }, { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }] }],
  ];
  for (const [api, body] of bodies) assert.deepEqual(await offloaded.tokenizeBody(api, body), await plain.tokenizeBody(api, body));
  const s = offloaded.stats();
  assert.equal(s.offloaded, bodies.length);
  assert.equal(s.inline, 0);
  assert.equal(s.workers?.done, bodies.length);
  assert.ok((s.prefixCache?.hitBlocks ?? 0) > 0, 'the cache serves worker results too');
});

test('bad input: clear KvrErrors, the tokenizer keeps working', async () => {
  assert.throws(
    () => createRequestTokenizer({ source: { type: 'dir', dir: DIR + '-missing' } }),
    (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_CONFIG' && /tokenizer\.json/.test(e.message) && /does not exist/.test(e.message),
  );
  assert.throws(
    () => createRequestTokenizer({ source: { type: 'nope' } } as never),
    (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_CONFIG' && /builtin/.test(e.message),
  );
  const rejects = async (api: 'chat' | 'completions', body: Record<string, unknown>, re: RegExp): Promise<void> => {
    await assert.rejects(plain.tokenizeBody(api, body), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_BAD_REQUEST' && re.test(e.message));
  };
  await rejects('completions', { prompt: 5 }, /prompt/);
  await rejects('completions', { prompt: 'x', add_special_tokens: 'no' }, /boolean/);
  await rejects('chat', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, /only text parts/);
  await rejects('chat', { messages: [{ role: 'user', content: 'x' }], continue_final_message: true }, /Cannot set both/);
  await rejects('chat', { messages: 'x' }, /array/);
  assert.ok(plain.stats().failures >= 5);
  assert.deepEqual(await plain.tokenizeBody('completions', { prompt: 'Hello world' }), [9906, 1917]);
});

test('builtin source tokenizes like the simulator built-in tokenizer', async () => {
  const b = createRequestTokenizer({ source: { type: 'builtin' }, workers: false });
  try {
    const ids = await b.tokenizeBody('chat', { messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(ids[0], 128000);
    assert.equal(ids.filter((x) => x === 128009).length, 1);
    const text = 'Routing on the model cache, prefix by prefix.';
    assert.deepEqual(await b.tokenizeBody('completions', { prompt: text }), new BuiltinTokenizer().encode(text, { addSpecialTokens: true }));
    assert.deepEqual(ids, new BuiltinTokenizer().encode(new BuiltinTokenizer().renderChat([{ role: 'user', content: 'hi' }])));
  } finally {
    await b.close();
  }
});

test('worker queue full: the request is refused with KVR_ERR_OVERLOADED (precise falls back), counted as queue_full', async () => {
  const tok = createRequestTokenizer({ source: { type: 'dir', dir: DIR }, prefixCache: false, workers: { size: 1, minChars: 1, maxQueued: 1 } });
  try {
    const bodies = ['one', 'two', 'three'].map((w) => ({ prompt: `${w} `.repeat(50) }));
    const settled = await Promise.allSettled(bodies.map((b) => tok.tokenizeBody('completions', b)));
    assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'fulfilled', 'rejected']);
    const err = (settled[2] as PromiseRejectedResult).reason as KvrError;
    assert.equal(err.code, 'KVR_ERR_OVERLOADED');
    assert.match(err.message, /maxQueued/);
    const s = tok.stats();
    assert.equal(s.queueFull, 1);
    assert.equal(s.failures, 1);
    assert.equal(s.workerFallbacks, 0, 'an overloaded queue is not tokenized inline');
    assert.deepEqual([s.workers!.queued, s.workers!.running, s.workers!.rejectedQueueFull], [0, 0, 1]);
  } finally {
    await tok.close();
  }
});

test("an aborted request's queued tokenization never runs (the lifecycle's signal reaches the worker queue)", async () => {
  const tok = createRequestTokenizer({ source: { type: 'dir', dir: DIR }, prefixCache: false, workers: { size: 1, minChars: 1 } });
  try {
    const first = req('completions', { prompt: 'busy worker '.repeat(100) });
    const ac = new AbortController();
    const gone = { ...req('completions', { prompt: 'client left' }), signal: ac.signal };
    const p1 = tok.tokenize(first);
    const p2 = tok.tokenize(gone);
    const refused = assert.rejects(p2, (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_CLIENT_CLOSED');
    ac.abort();
    await p1;
    await refused;
    const s = tok.stats();
    assert.equal(s.aborted, 1);
    assert.deepEqual([s.workers!.started, s.workers!.cancelledQueued, s.workers!.queued, s.workers!.running], [1, 1, 0, 0]);
  } finally {
    await tok.close();
  }
});

test('fastBpe: same ids with and without the fast path; rejected for sources it does not apply to', async () => {
  const slow = createRequestTokenizer({ source: { type: 'dir', dir: DIR }, workers: false, fastBpe: false });
  try {
    const body = { messages: [{ role: 'system', content: 'Be brief. Ünïcode 東京 😀 <|eot_id|> x' }, { role: 'user', content: "  what's 12345?\n\n" }] };
    assert.deepEqual(await plain.tokenizeBody('chat', body), await slow.tokenizeBody('chat', body));
    assert.equal(slow.stats().fastBpe, undefined, 'fastBpe: false uses the library alone');
    assert.ok(plain.stats().fastBpe, 'the default uses the fast path');
  } finally {
    await slow.close();
  }
  assert.throws(() => createRequestTokenizer({ source: { type: 'builtin' }, fastBpe: true }), (e: unknown) => e instanceof KvrError && /fastBpe applies to source 'dir' only/.test(e.message));
});

test('segment-wise (prefix cache + fast BPE) equals whole-prompt library tokenization over varied multi-turn chats', async () => {
  // The router's default pipeline against @huggingface/tokenizers on the whole rendered prompt.
  const fast = createRequestTokenizer({ source: { type: 'dir', dir: DIR }, workers: false, prefixCache: { blockChars: 128, maxBytes: 8 * 1024 * 1024 } });
  const whole = createRequestTokenizer({ source: { type: 'dir', dir: DIR }, workers: false, prefixCache: false, fastBpe: false });
  const PARTS = [
    ' the', ' cache', "'s", "'LL", ' 12345', '.', ',', '\n', '\n\n', '  ', '\t', ' café', ' 東京', ' 😀', '<|eot_id|>', '<|start_header_id|>', '<|eot', '|>',
    ' x_y', '...', ' über', '\u00a0', ' —', 'ſ', '\r\n', '   \n', ' <|begin_of_text|>', 'assistant<|end_header_id|>',
  ];
  let seed = 1;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const text = (n: number): string => {
    let s = '';
    while (s.length < n) s += PARTS[rand(PARTS.length)];
    return s;
  };
  try {
    let checks = 0;
    for (let conv = 0; conv < 12; conv++) {
      const messages: Array<{ role: string; content: string }> = [{ role: 'system', content: (conv % 2 ? '  ' : '') + text(600) + (conv % 3 ? '\n' : '') }];
      for (let turn = 0; turn < 6; turn++) {
        messages.push({ role: 'user', content: text(50 + rand(400)) });
        const body = { messages: messages.map((m) => ({ ...m })), ...(turn % 3 === 2 ? { add_generation_prompt: false, continue_final_message: true } : {}) };
        assert.deepEqual(await fast.tokenizeBody('chat', body), await whole.tokenizeBody('chat', body), `conversation ${conv}, turn ${turn}`);
        const prompt = text(20 + rand(900));
        assert.deepEqual(await fast.tokenizeBody('completions', { prompt }), await whole.tokenizeBody('completions', { prompt }), `completion ${conv}.${turn}`);
        checks += 2;
        messages.push({ role: 'assistant', content: text(rand(300)) });
      }
    }
    assert.equal(checks, 144);
    const s = fast.stats();
    assert.ok(s.prefixCache!.reusedTokens > 10_000, `the prefix cache was used: ${JSON.stringify(s.prefixCache)}`);
    assert.ok(s.fastBpe!.pieceHits > 0 && s.fastBpe!.fallbacks === 0);
  } finally {
    await Promise.all([fast.close(), whole.close()]);
  }
});
