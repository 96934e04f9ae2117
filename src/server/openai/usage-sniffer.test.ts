import test from 'node:test';
import assert from 'node:assert/strict';
import { UsageSniffer } from './usage-sniffer.js';

test('finds usage in the last SSE chunk even after a long stream', () => {
  const s = new UsageSniffer('text/event-stream; charset=utf-8');
  for (let i = 0; i < 2000; i++) s.push(Buffer.from(`data: {"choices":[{"index":0,"text":"tok${i} "}]}\n\n`));
  s.push(Buffer.from('data: {"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":2000,"total_tokens":2100,"prompt_tokens_details":{"cached_tokens":96}}}\n\n'));
  s.push(Buffer.from('data: [DONE]\n\n'));
  assert.deepEqual(s.usage(), { promptTokens: 100, completionTokens: 2000, cachedTokens: 96 });
});

test('JSON body usage, split across chunks', () => {
  const s = new UsageSniffer('application/json');
  const body = JSON.stringify({ id: 'x', usage: { prompt_tokens: 10, completion_tokens: 2, prompt_tokens_details: null } });
  s.push(Buffer.from(body.slice(0, 7)));
  s.push(Buffer.from(body.slice(7)));
  assert.deepEqual(s.usage(), { promptTokens: 10, completionTokens: 2, cachedTokens: undefined });
});

test('no usage or garbage gives undefined', () => {
  const a = new UsageSniffer('text/event-stream');
  a.push(Buffer.from('data: {"choices":[]}\n\ndata: [DONE]\n\n'));
  assert.equal(a.usage(), undefined);
  const b = new UsageSniffer('application/json');
  b.push(Buffer.from('{not json'));
  assert.equal(b.usage(), undefined);
});
