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

test('SseShaper: first token is the first event with output (not a role-only chunk), across chunk boundaries', async () => {
  const { SseShaper } = await import('./usage-sniffer.js');
  const s = new SseShaper();
  const role = 'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n';
  assert.equal(String(s.push(Buffer.from(role))), role, 'pass-through returns the chunk itself');
  assert.equal(s.firstToken, false);
  const tok = 'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n';
  s.push(Buffer.from(tok.slice(0, 20)));
  assert.equal(s.firstToken, false);
  s.push(Buffer.from(tok.slice(20)));
  assert.equal(s.firstToken, true);
});

test('SseShaper: strips only the usage chunk the router asked for, keeps every other byte; CRLF streams work', async () => {
  const { SseShaper } = await import('./usage-sniffer.js');
  const s = new SseShaper({ stripUsage: true });
  const a = 'data: {"choices":[{"index":0,"text":"a","finish_reason":null}]}\r\n\r\n';
  const u = 'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":4}}}\r\n\r\n';
  const d = 'data: [DONE]\r\n\r\n';
  let out = '';
  const whole = a + u + d;
  for (let i = 0; i < whole.length; i += 7) out += String(s.push(Buffer.from(whole.slice(i, i + 7))) ?? '');
  out += s.end() ?? '';
  assert.equal(out, 'data: {"choices":[{"index":0,"text":"a","finish_reason":null}]}\n\ndata: [DONE]\n\n');
  assert.deepEqual(s.usage, { promptTokens: 5, completionTokens: 1, cachedTokens: 4 });
  assert.equal(s.firstToken, true);
  assert.equal(s.done, true);
});

test('ResponseAssembler: completions and chat chunks become one body; error events are reported', async () => {
  const { SseShaper } = await import('./usage-sniffer.js');
  const { ResponseAssembler } = await import('./response-assembler.js');
  const asm = new ResponseAssembler('chat');
  const s = new SseShaper({ assembler: asm });
  const ev = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
  const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 7, model: 'm' };
  assert.equal(s.push(Buffer.from(ev({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }))), undefined);
  s.push(Buffer.from(ev({ ...base, choices: [{ index: 0, delta: { content: 'Hel' }, finish_reason: null }] }) + ev({ ...base, choices: [{ index: 0, delta: { content: 'lo' }, finish_reason: 'stop', stop_reason: null }] })));
  s.push(Buffer.from(ev({ ...base, choices: [], usage: { prompt_tokens: 3, total_tokens: 5, completion_tokens: 2, prompt_tokens_details: null } }) + 'data: [DONE]\n\n'));
  const body = asm.body() as { id: string; created: number; choices: Array<{ message: { content: string }; finish_reason: string }>; usage: unknown };
  assert.equal(body.id, 'chatcmpl-1');
  assert.equal(body.created, 7);
  assert.equal(body.choices[0].message.content, 'Hello');
  assert.equal(body.choices[0].finish_reason, 'stop');
  assert.deepEqual(body.usage, { prompt_tokens: 3, total_tokens: 5, completion_tokens: 2, prompt_tokens_details: null });
  const e = new SseShaper({ assembler: new ResponseAssembler('completions') });
  e.push(Buffer.from('data: {"error":{"message":"boom","type":"x","param":null,"code":503}}\n\n'));
  assert.equal(e.error?.status, 503);
});

test('SseShaper: "usage":null on every chunk is not taken for usage; the final usage chunk is found and stripped', async () => {
  const { SseShaper } = await import('./usage-sniffer.js');
  const s = new SseShaper({ stripUsage: true });
  const tok = (i: number) => `data: {"id":"c","choices":[{"index":0,"delta":{"content":"t${i}"},"finish_reason":null}],"usage" : null}\n\n`;
  const usage = 'data: {"id":"c","choices":[],"usage": {"prompt_tokens":7,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}\n\n';
  let out = '';
  for (let i = 0; i < 3; i++) out += String(s.push(Buffer.from(tok(i))) ?? '');
  assert.equal(s.usage, undefined);
  // the usage chunk cut right after the key: still looked at
  const cut = usage.indexOf('"usage"') + 7;
  out += String(s.push(Buffer.from(usage.slice(0, cut))) ?? '');
  out += String(s.push(Buffer.from(usage.slice(cut) + 'data: [DONE]\n\n')) ?? '');
  assert.deepEqual(s.usage, { promptTokens: 7, completionTokens: 3, cachedTokens: 4 });
  assert.equal(out, tok(0) + tok(1) + tok(2) + 'data: [DONE]\n\n');
});

test('JSON body: only the top-level usage counts (not one quoted in the answer), in any key order', () => {
  const s = new UsageSniffer('application/json');
  const body = JSON.stringify({ usage: { prompt_tokens: 5, completion_tokens: 1 }, choices: [{ message: { content: '{"usage": {"prompt_tokens": 999}}' } }] });
  s.push(Buffer.from(body));
  assert.deepEqual(s.usage(), { promptTokens: 5, completionTokens: 1, cachedTokens: undefined });
});

test('llama.cpp: cached prompt tokens from timings when usage has none (older builds), streamed and not; other engines unchanged', async () => {
  const { SseShaper } = await import('./usage-sniffer.js');
  // Older build: usage without prompt_tokens_details, timings.prompt_n = tokens actually prefilled.
  const s = new SseShaper();
  s.push(Buffer.from('data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'));
  s.push(Buffer.from('data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"timings":{"prompt_n":12,"predicted_n":3}}\n\n'));
  s.push(Buffer.from('data: {"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":3}}\n\ndata: [DONE]\n\n'));
  assert.deepEqual(s.usage, { promptTokens: 100, completionTokens: 3, cachedTokens: 88 });
  // Newer build: timings.cache_n.
  const n = new UsageSniffer('application/json');
  n.push(Buffer.from(JSON.stringify({ choices: [{ message: { content: 'x' } }], usage: { prompt_tokens: 50, completion_tokens: 1 }, timings: { cache_n: 32, prompt_n: 18 } })));
  assert.deepEqual(n.usage(), { promptTokens: 50, completionTokens: 1, cachedTokens: 32 });
  // An engine's own cached_tokens wins; no timings leaves usage as it was.
  const v = new UsageSniffer('application/json');
  v.push(Buffer.from(JSON.stringify({ usage: { prompt_tokens: 9, completion_tokens: 1, prompt_tokens_details: { cached_tokens: 4 } }, timings: { cache_n: 1 } })));
  assert.deepEqual(v.usage(), { promptTokens: 9, completionTokens: 1, cachedTokens: 4 });
});
