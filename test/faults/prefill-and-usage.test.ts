/**
 * Defect 2 (issue 10): a non-streaming request used to count as unfinished prefill for its whole
 * life (its first byte is its last). The router now streams it upstream and re-assembles vLLM's
 * non-streaming body, so prefill ends at the first token. Usage is captured for every request:
 * a streaming client that did not ask for usage gets exactly the stream it asked for (the usage
 * chunk the router asked for is dropped), and the router still counts the engine's tokens.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { FAULT_MODEL, startFaultRig } from '../helpers/fault-fleet.js';

/** vLLM's non-streaming field lists (vllm/entrypoints/openai protocol, model_dump of the response). */
const COMPLETION_KEYS = ['id', 'object', 'created', 'model', 'choices', 'service_tier', 'system_fingerprint', 'usage', 'kv_transfer_params'];
const COMPLETION_CHOICE_KEYS = ['index', 'text', 'logprobs', 'finish_reason', 'stop_reason', 'token_ids', 'prompt_logprobs', 'prompt_token_ids'];
const CHAT_KEYS = ['id', 'object', 'created', 'model', 'choices', 'service_tier', 'system_fingerprint', 'usage', 'prompt_logprobs', 'prompt_token_ids', 'kv_transfer_params'];
const CHAT_CHOICE_KEYS = ['index', 'message', 'logprobs', 'finish_reason', 'stop_reason', 'token_ids'];
const CHAT_MESSAGE_KEYS = ['role', 'content', 'refusal', 'annotations', 'audio', 'function_call', 'tool_calls', 'reasoning', 'reasoning_content'];

test('a long non-streaming request stops counting as unfinished prefill once its first token is produced', async () => {
  const rig = await startFaultRig({ replicas: 1, fleet: { timeScale: 0.5 } });
  try {
    const ep = rig.router.pool.all()[0];
    const prompt = Array.from({ length: 600 }, (_, i) => `word${i}`).join(' ');
    const pending = rig.complete({ prompt, max_tokens: 300, ignore_eos: true });
    let sawPrefill = false;
    let sawDecodingWithNoPrefill = false;
    let finished = false;
    void pending.then(() => (finished = true));
    while (!finished) {
      const l = rig.scheduler.load.load(ep);
      if (l.inflight === 1 && l.prefillTokens > 0) sawPrefill = true;
      if (l.inflight === 1 && l.prefillTokens === 0 && l.decodingSeqs === 1) sawDecodingWithNoPrefill = true;
      await new Promise((r) => setTimeout(r, 5));
    }
    const res = await pending;
    assert.equal(res.status, 200);
    assert.ok(sawPrefill, 'the request counted as prefill while prefilling');
    assert.ok(sawDecodingWithNoPrefill, 'after the first token it counted as decoding, with no prefill left, while still running');
    // The client got vLLM's non-streaming body, re-assembled.
    assert.match(String(res.headers['content-type']), /application\/json/);
    const body = JSON.parse(res.text) as Record<string, unknown> & { choices: Array<Record<string, unknown>>; usage: Record<string, unknown> };
    assert.deepEqual(Object.keys(body), COMPLETION_KEYS);
    assert.deepEqual(Object.keys(body.choices[0]), COMPLETION_CHOICE_KEYS);
    assert.equal(body.object, 'text_completion');
    assert.equal(body.model, FAULT_MODEL);
    assert.match(String(body.id), /^cmpl-/);
    assert.equal(body.choices[0].finish_reason, 'length');
    assert.equal(typeof body.choices[0].text, 'string');
    assert.ok((body.choices[0].text as string).length > 0);
    assert.equal(body.usage.completion_tokens, 300);
    assert.equal(body.usage.total_tokens, (body.usage.prompt_tokens as number) + 300);
    const l = rig.scheduler.load.load(ep);
    assert.deepEqual([l.inflight, l.prefillTokens, l.decodingSeqs], [0, 0, 0]);
  } finally {
    await rig.close();
  }
});

test('non-streaming chat is re-assembled in vLLM\'s shape; the request TTFT is the first token, not the last byte', async () => {
  const rig = await startFaultRig({ replicas: 1, fleet: { timeScale: 0.5 } });
  try {
    const res = await request(`${rig.router.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: FAULT_MODEL, messages: [{ role: 'user', content: 'tell me a story' }], max_tokens: 120, ignore_eos: true }),
    });
    assert.equal(res.statusCode, 200);
    const body = (await res.body.json()) as Record<string, unknown> & { choices: Array<Record<string, unknown> & { message: Record<string, unknown> }>; usage: Record<string, unknown> };
    assert.deepEqual(Object.keys(body), CHAT_KEYS);
    assert.deepEqual(Object.keys(body.choices[0]), CHAT_CHOICE_KEYS);
    assert.deepEqual(Object.keys(body.choices[0].message), CHAT_MESSAGE_KEYS);
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.choices[0].message.role, 'assistant');
    assert.ok(String(body.choices[0].message.content).length > 0);
    assert.deepEqual(body.choices[0].message.tool_calls, []);
    assert.equal(body.usage.completion_tokens, 120);
    const d = rig.router.decisions.toArray().at(-1)!;
    assert.ok(d.ttftMs !== undefined && d.durationMs !== undefined);
    assert.ok(d.ttftMs < d.durationMs * 0.5, `first token (${d.ttftMs} ms) well before the end (${d.durationMs} ms) for 120 decode steps`);
  } finally {
    await rig.close();
  }
});

test('usage for every request: a streaming client that did not ask for usage sees no usage chunk; the router counts the tokens', async () => {
  const rig = await startFaultRig({ replicas: 1 });
  try {
    const stream = async (extra: Record<string, unknown>) => {
      const res = await request(`${rig.router.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: FAULT_MODEL, prompt: 'count my tokens please', max_tokens: 8, ignore_eos: true, stream: true, ...extra }),
      });
      assert.equal(res.statusCode, 200);
      const events = (await res.body.text()).split('\n\n').filter((e) => e.length > 0);
      assert.equal(events.at(-1), 'data: [DONE]');
      return events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)) as { choices: unknown[]; usage?: Record<string, number> });
    };
    const plain = await stream({});
    // vLLM dumps every completion chunk with "usage": null, so "no usage" means null or absent.
    assert.equal(plain.filter((e) => e.usage != null).length, 0, 'no usage chunk the client did not ask for');
    assert.equal(plain.reduce((n, e) => n + e.choices.length, 0), 8, 'every token chunk is there');
    assert.ok((await rig.metric('kvroute_engine_prompt_tokens_total')) > 0, 'the router captured the engine usage anyway');
    const before = await rig.metric('kvroute_engine_prompt_tokens_total');
    const asked = await stream({ stream_options: { include_usage: true } });
    const usage = asked.filter((e) => e.usage != null);
    assert.equal(usage.length, 1, 'a client that asked for usage gets it');
    assert.equal(usage[0].usage!.completion_tokens, 8);
    assert.equal((await rig.metric('kvroute_engine_prompt_tokens_total')) - before, usage[0].usage!.prompt_tokens);
  } finally {
    await rig.close();
  }
});
