import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseAssembler } from './response-assembler.js';

/** Chunks covering what bodyJson serializes: missing head fields, escapes, reasoning, several choices, usage or none. */
const CASES: Array<{ api: 'chat' | 'completions'; chunks: Array<Record<string, unknown>> }> = [
  { api: 'chat', chunks: [] },
  {
    api: 'chat',
    chunks: [
      { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1700000000, model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
      { id: 'chatcmpl-1', created: 1700000000, model: 'm', choices: [{ index: 0, delta: { content: 'a "quoted"\n\u2028 é 🙂 \\ tab\t' }, finish_reason: null }] },
      { id: 'chatcmpl-1', choices: [{ index: 0, delta: { reasoning_content: 'think' }, finish_reason: 'stop', stop_reason: 42 }] },
      { id: 'chatcmpl-1', choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, prompt_tokens_details: { cached_tokens: 1 } } },
    ],
  },
  {
    api: 'chat',
    chunks: [
      { model: 'no-id', choices: [{ index: 1, delta: { content: 'second' } }, { index: 0, delta: { content: 'first' }, finish_reason: 'length' }] },
    ],
  },
  {
    api: 'completions',
    chunks: [
      { id: 'cmpl-2', object: 'text_completion', created: 5, model: 'm', choices: [{ index: 0, text: 'x', finish_reason: null }] },
      { id: 'cmpl-2', choices: [{ index: 0, text: 'y</script>', finish_reason: 'stop', stop_reason: 'eos' }] },
      { id: 'cmpl-2', choices: [], usage: { prompt_tokens: 1, completion_tokens: 2 } },
    ],
  },
  { api: 'completions', chunks: [{ created: 7, choices: [{ index: 2, text: '' }] }] },
];

test('bodyJson is JSON.stringify(body()) byte for byte', () => {
  for (const { api, chunks } of CASES) {
    const a = new ResponseAssembler(api);
    for (const c of chunks) a.add(c);
    assert.equal(a.bodyJson(), JSON.stringify(a.body()), `${api} ${JSON.stringify(chunks).slice(0, 80)}`);
  }
});

test('bodyJson after addText (the plain-delta path) matches too', () => {
  const a = new ResponseAssembler('chat');
  a.add({ id: 'c', created: 1, model: 'm', choices: [{ index: 0, delta: { content: 'he' }, finish_reason: null }] });
  a.addText(0, 'llo');
  a.addText(3, 'other choice');
  a.add({ id: 'c', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
  const body = a.bodyJson();
  assert.equal(body, JSON.stringify(a.body()));
  assert.equal((JSON.parse(body) as { choices: Array<{ message: { content: string } }> }).choices[0].message.content, 'hello');
});
