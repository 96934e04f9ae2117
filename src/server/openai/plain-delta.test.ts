import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plainDelta } from './plain-delta.js';

const chat = (delta: unknown, extra: Record<string, unknown> = {}, choice: Record<string, unknown> = {}) =>
  JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1796307863, model: 'm1', choices: [{ index: 0, delta, logprobs: null, finish_reason: null, ...choice }], ...extra });
const completion = (text: unknown, extra: Record<string, unknown> = {}, choice: Record<string, unknown> = {}) =>
  JSON.stringify({ id: 'cmpl-1', object: 'text_completion', created: 1, model: 'm1', choices: [{ index: 0, text, logprobs: null, finish_reason: null, stop_reason: null, ...choice }], usage: null, ...extra });

/** What JSON.parse gives for the fields the assembler reads, when the fast path matches. */
function viaJson(data: string, isChat: boolean): { index: number; text: string } {
  const c = (JSON.parse(data) as { choices: Array<{ index: number; text?: string; delta?: { content: string } }> }).choices[0];
  return { index: c.index, text: isChat ? c.delta!.content : c.text! };
}

test('plain chunks of vLLM shape are read exactly as JSON.parse reads them', () => {
  const texts = [' he', '', 'tab\there', 'quote " and \\ backslash', 'line\nbreak', 'unicode é 😀 \u2028', '\u0001 control escaped', '</script>'];
  for (const t of texts) {
    for (const data of [chat({ content: t }), chat({ content: t }, { usage: null }), chat({ content: t }, {}, { stop_reason: null }), completion(t), completion(t, {}, { index: 3 })]) {
      const isChat = data.includes('chat.completion.chunk');
      const got = plainDelta(data, isChat);
      assert.ok(got !== undefined, `should match: ${data}`);
      assert.deepEqual(got, viaJson(data, isChat));
    }
  }
  // the bench's chunks carry no logprobs key
  assert.deepEqual(plainDelta('{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"tok0 "},"finish_reason":null}],"usage":null}', true), { index: 0, text: 'tok0 ' });
});

test('everything else is left to JSON.parse', () => {
  const none = [
    chat({ role: 'assistant', content: '' }), // role
    chat({ content: 'x' }, {}, { finish_reason: 'stop' }), // finish reason
    chat({ content: 'x', reasoning_content: 'r' }), // reasoning
    chat({ tool_calls: [{ index: 0 }] }),
    chat({ content: 'x' }, { usage: { prompt_tokens: 1 } }), // usage object
    chat({ content: 'x' }, { system_fingerprint: 'fp' }), // unknown key
    chat({ content: 'x' }, {}, { logprobs: { content: [] } }),
    JSON.stringify({ id: 'a', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: 'a' }, finish_reason: null }, { index: 1, delta: { content: 'b' }, finish_reason: null }] }), // two choices
    JSON.stringify({ object: 'error', message: 'boom', code: 500 }),
    chat({ content: 'x' }).replace('"content":', '"content" :'), // whitespace
    chat({ content: 'x' }).replace('"x"', '"raw\u0001control"'), // invalid JSON string
    completion('x').replace('text_completion', 'chat.completion.chunk'),
    chat({ content: 'x' }) + ' ',
  ];
  for (const d of none) assert.equal(plainDelta(d, !d.includes('text_completion')), undefined, d);
  assert.equal(plainDelta(completion('x'), true), undefined); // wrong API
  assert.equal(plainDelta(chat({ content: 'x' }), false), undefined);
});
