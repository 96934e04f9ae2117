import test from 'node:test';
import assert from 'node:assert/strict';
import { buildInferenceRequest } from './parse-request.js';
import { planUpstream } from './proxy.js';

const req = (body: Record<string, unknown>, api: 'chat' | 'completions' = 'completions') => {
  const raw = Buffer.from(JSON.stringify(body) + '\n');
  return { raw, ireq: buildInferenceRequest(api, raw, {}, { id: 'x', clientIp: '1', arrivedAt: 0, defaultMaxTokens: 16 }) };
};
const parsed = (b: Buffer | string) => JSON.parse(String(b)) as Record<string, unknown>;

test('planUpstream: non-streaming goes upstream as a stream with usage, unless it cannot be re-assembled or passthrough is asked', () => {
  const a = req({ model: 'm', prompt: 'p "quoted" }' });
  const p = planUpstream(a.ireq, a.raw);
  assert.equal(p.mode, 'assemble');
  assert.deepEqual(parsed(p.body), { model: 'm', prompt: 'p "quoted" }', stream: true, stream_options: { include_usage: true } });
  const f = req({ model: 'm', prompt: 'p', stream: false });
  assert.deepEqual(parsed(planUpstream(f.ireq, f.raw).body), { model: 'm', prompt: 'p', stream: true, stream_options: { include_usage: true } });
  const lp = req({ model: 'm', prompt: 'p', logprobs: 2 });
  assert.deepEqual(planUpstream(lp.ireq, lp.raw), { body: lp.raw, mode: 'json' });
  const tools = req({ model: 'm', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f' } }] }, 'chat');
  assert.equal(planUpstream(tools.ireq, tools.raw).mode, 'json');
  assert.equal(planUpstream(a.ireq, a.raw, 'passthrough').mode, 'json');
});

test('planUpstream: streaming gets include_usage (stripped later) unless the client asked for it', () => {
  const s = req({ model: 'm', prompt: 'p', stream: true });
  const p = planUpstream(s.ireq, s.raw);
  assert.equal(p.mode, 'strip');
  assert.deepEqual(parsed(p.body), { model: 'm', prompt: 'p', stream: true, stream_options: { include_usage: true } });
  const c = req({ model: 'm', prompt: 'p', stream: true, stream_options: { continuous_usage_stats: true } });
  assert.deepEqual(parsed(planUpstream(c.ireq, c.raw).body).stream_options, { continuous_usage_stats: true, include_usage: true });
  const u = req({ model: 'm', prompt: 'p', stream: true, stream_options: { include_usage: true } });
  assert.deepEqual(planUpstream(u.ireq, u.raw), { body: u.raw, mode: 'stream' });
});
