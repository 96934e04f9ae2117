import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvrError } from '../core/errors.js';
import { ChatRenderer, LLAMA3_CHAT_TEMPLATE, chatOptionsFromBody, detectContentFormat, normalizeMessages, pickChatTemplate } from './vllm-chat.js';

const llama3 = new ChatRenderer(LLAMA3_CHAT_TEMPLATE, { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' });
const H = (role: string): string => `<|start_header_id|>${role}<|end_header_id|>\n\n`;
const GEN = H('assistant');

const badRequest = (fn: () => unknown, re: RegExp): void =>
  assert.throws(fn, (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_BAD_REQUEST' && re.test(e.message));

test('Llama 3 template: system + user, generation prompt by default, content trimmed', () => {
  const out = llama3.render([
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: '  Hi there \n' },
  ]);
  assert.equal(out, `<|begin_of_text|>${H('system')}Be brief.<|eot_id|>${H('user')}Hi there<|eot_id|>${GEN}`);
  assert.equal(llama3.render([{ role: 'user', content: 'x' }], { addGenerationPrompt: false }), `<|begin_of_text|>${H('user')}x<|eot_id|>${GEN}`, 'this template always appends the header');
});

test('content: parts joined with a newline (empty ones dropped), null is empty, refusal parts kept', () => {
  const conv = normalizeMessages(
    [
      { role: 'user', content: [{ type: 'text', text: 'first' }, { type: 'text', text: '' }, 'second', { type: 'input_text', text: 'third' }] },
      { role: 'assistant', content: null },
      { role: 'assistant', content: [{ type: 'refusal', refusal: 'no' }, { type: 'text', text: null }] },
    ],
    'string',
  );
  assert.deepEqual(
    conv.map((m) => m.content),
    ['first\nsecond\nthird', '', 'no'],
  );
  const parts = normalizeMessages([{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: '' }] }], 'openai');
  assert.deepEqual(parts[0].content, [{ type: 'text', text: 'a' }, { type: 'text', text: '' }]);
});

test('assistant tool calls: arguments JSON-decoded; name and tool_call_id kept', () => {
  const conv = normalizeMessages(
    [
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"x":1}' } }] },
      { role: 'tool', content: 'ok', tool_call_id: 'c1', name: 'f' },
    ],
    'string',
  );
  assert.deepEqual((conv[0].tool_calls as Array<{ function: { arguments: unknown } }>)[0].function.arguments, { x: 1 });
  assert.equal(conv[1].tool_call_id, 'c1');
  assert.equal(conv[1].name, 'f');
  badRequest(() => normalizeMessages([{ role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: '{' } }] }], 'string'), /not valid JSON/);
});

test('continue_final_message: rendered text ends right after the final message (Hugging Face cut)', () => {
  const msgs = [
    { role: 'user', content: 'Write a haiku.' },
    { role: 'assistant', content: 'Autumn leaves ' },
  ];
  const out = llama3.render(msgs, { addGenerationPrompt: false, continueFinalMessage: true });
  assert.equal(out, `<|begin_of_text|>${H('user')}Write a haiku.<|eot_id|>${H('assistant')}Autumn leaves`);
  badRequest(() => llama3.render(msgs, { addGenerationPrompt: true, continueFinalMessage: true }), /Cannot set both/);
  badRequest(() => chatOptionsFromBody({ continue_final_message: true }), /add_generation_prompt/);
  assert.deepEqual(chatOptionsFromBody({ add_generation_prompt: false, continue_final_message: true }), {
    addGenerationPrompt: false,
    continueFinalMessage: true,
    addSpecialTokens: false,
    tools: undefined,
    documents: undefined,
  });
});

test('templates that loop over content get the parts; generation prompt and kwargs reach the template', () => {
  const tpl =
    "{% for m in messages %}[{{ m.role }}]{% for p in m.content %}<{{ p.text }}>{% endfor %}{% endfor %}{% if add_generation_prompt %}[gen {{ who }}]{% endif %}";
  assert.equal(detectContentFormat(tpl), 'openai');
  assert.equal(detectContentFormat(LLAMA3_CHAT_TEMPLATE), 'string');
  const r = new ChatRenderer(tpl, {});
  assert.equal(r.render([{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }], { chatTemplateKwargs: { who: 'me' } }), '[user]<a><b>[gen me]');
  assert.equal(r.render([{ role: 'user', content: 'solo' }], { addGenerationPrompt: false }), '[user]<solo>');
  const perRequest = llama3.render([{ role: 'user', content: 'q' }], { chatTemplate: '{{ messages[0].content }}!' });
  assert.equal(perRequest, 'q!');
});

test('named templates: default, tool_use when tools are given', () => {
  const named = [
    { name: 'default', template: 'D' },
    { name: 'tool_use', template: 'T' },
  ];
  assert.equal(pickChatTemplate(named, false), 'D');
  assert.equal(pickChatTemplate(named, true), 'T');
  assert.equal(new ChatRenderer(named, {}).render([{ role: 'user', content: 'x' }], { tools: [{ type: 'function' }] }), 'T');
});

test('bad messages are rejected with KvrError, never crash', () => {
  badRequest(() => llama3.render('nope'), /must be an array/);
  badRequest(() => llama3.render([{ content: 'x' }]), /role must be a string/);
  badRequest(() => llama3.render([{ role: 'user', content: 5 }]), /content must be/);
  badRequest(() => llama3.render([{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }]), /only text parts/);
  badRequest(() => new ChatRenderer(undefined, {}).render([{ role: 'user', content: 'x' }]), /no chat template/);
  badRequest(() => llama3.render([{ role: 'user', content: 'x' }], { chatTemplate: '{% for %}' }), /does not parse/);
  badRequest(() => chatOptionsFromBody({ add_special_tokens: 'yes' }), /boolean/);
});
