import test from 'node:test';
import assert from 'node:assert/strict';
import { buildInferenceRequest, renderChatForRouting } from './parse-request.js';
import { KvrError } from '../../core/errors.js';

const opts = { id: 'r1', clientIp: '1.2.3.4', arrivedAt: 5, defaultMaxTokens: 16 };
const build = (api: 'chat' | 'completions', body: unknown) => buildInferenceRequest(api, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), {}, opts);
function rejects(fn: () => unknown, code: string, re: RegExp) {
  assert.throws(fn, (e: unknown) => e instanceof KvrError && e.code === code && re.test(e.message));
}

test('chat: routes on the whole rendered conversation, not the first message', () => {
  const turn1 = build('chat', { model: 'm', messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'Q1' }] });
  const turn2 = build('chat', {
    model: 'm',
    messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'Q1' }, { role: 'assistant', content: 'A1' }, { role: 'user', content: 'Q2' }],
  });
  assert.ok(turn2.promptText.startsWith(turn1.promptText), 'turn 2 extends turn 1');
  assert.ok(turn2.promptText.includes('Q2') && turn2.promptText.includes('A1'));
  assert.equal(turn1.maxTokens, 16);
});

test('chat content parts are flattened to text', () => {
  const r = build('chat', { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hello ' }, { type: 'text', text: 'world' }] }] });
  assert.equal(r.promptText, renderChatForRouting([{ role: 'user', content: 'hello world' }]));
});

test('completions: string, string array, token ids; max_tokens and stream', () => {
  assert.equal(build('completions', { model: 'm', prompt: 'abc', max_tokens: 7, stream: true }).promptText, 'abc');
  const r = build('completions', { model: 'm', prompt: 'abc', max_tokens: 7, stream: true });
  assert.equal(r.maxTokens, 7);
  assert.equal(r.stream, true);
  assert.equal(build('completions', { model: 'm', prompt: ['x', 'y'] }).promptText, 'x');
  assert.equal(build('completions', { model: 'm', prompt: [1, 2, 3] }).promptText, '1 2 3');
  assert.equal(build('completions', { model: 'm', prompt: 'p', max_completion_tokens: 3 }).maxTokens, 3);
});

test('bad inputs name the field and say what is expected', () => {
  rejects(() => build('chat', '{"model": "m", "messages": ['), 'KVR_ERR_BAD_JSON', /not valid JSON/);
  rejects(() => build('chat', '[1,2]'), 'KVR_ERR_BAD_JSON', /JSON object/);
  rejects(() => build('chat', { messages: [{ role: 'user', content: 'x' }] }), 'KVR_ERR_BAD_REQUEST', /"model"/);
  rejects(() => build('chat', { model: 'm', messages: [] }), 'KVR_ERR_BAD_REQUEST', /"messages"/);
  rejects(() => build('chat', { model: 'm', messages: [{ role: 5, content: 'x' }] }), 'KVR_ERR_BAD_REQUEST', /messages\[0\]\.role/);
  rejects(() => build('completions', { model: 'm', prompt: 5 }), 'KVR_ERR_BAD_REQUEST', /"prompt"/);
  rejects(() => build('completions', { model: 'm', prompt: 'x', max_tokens: 'many' }), 'KVR_ERR_BAD_REQUEST', /max_tokens/);
  rejects(() => build('completions', { model: 'm', prompt: 'x', stream: 'yes' }), 'KVR_ERR_BAD_REQUEST', /stream/);
  const e = (() => {
    try {
      build('chat', { model: 7, messages: [{ role: 'u', content: 'x' }] });
    } catch (err) {
      return err as KvrError;
    }
  })()!;
  assert.equal(e.status, 400);
  assert.deepEqual(Object.keys(e.toOpenAI().error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(e.toOpenAI().error.param, 'model');
});

test('bodies off the common shape still go through the schemas (accepted or refused as zod says)', () => {
  const msg = (content: unknown) => ({ model: 'm', messages: [{ role: 'user', content }] });
  // refused: each one a single field off
  for (const [api, body, field] of [
    ['chat', { model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 1.5 }, /max_tokens/],
    ['chat', { model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: -1 }, /max_tokens/],
    ['chat', { model: 'm', messages: [{ role: 'user', content: 'x' }], max_completion_tokens: 2 ** 60 }, /max_completion_tokens/],
    ['chat', { model: '', messages: [{ role: 'user', content: 'x' }] }, /model/],
    ['chat', { model: 'm', messages: [{ role: '', content: 'x' }] }, /role/],
    ['chat', { model: 'm', messages: [null] }, /messages\[0\]/],
    ['chat', msg(5), /content/],
    ['chat', msg([{ type: 1, text: 'a' }]), /content/],
    ['chat', msg([{ type: 'text', text: 5 }]), /content/],
    ['chat', msg(['a']), /content/],
    ['completions', { model: 'm', prompt: [] }, /prompt/],
    ['completions', { model: 'm', prompt: ['a', 1] }, /prompt/],
    ['completions', { model: 'm', prompt: 'x', max_tokens: null, stream: null }, /stream/],
  ] as const) {
    rejects(() => build(api, body), 'KVR_ERR_BAD_REQUEST', field);
  }
  // accepted: null content, parts without text, token ids, nested token ids, null max_tokens
  assert.equal(build('chat', msg(null)).promptText, renderChatForRouting([{ role: 'user', content: '' }]));
  assert.equal(build('chat', msg([{ type: 'image_url', image_url: { url: 'u' } }])).model, 'm');
  assert.equal(build('chat', { ...msg('x'), max_tokens: null, max_completion_tokens: 5 }).maxTokens, 5);
  assert.equal(build('completions', { model: 'm', prompt: [[1, 2], [3]] }).promptText, '1 2');
});
