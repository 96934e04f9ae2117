import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randInt, seededRng, type Rng } from '../core/rng.js';
import { loadEncoder, type TokenEncoder } from './encoder.js';
import { PrefixTokenCache } from './prefix-cache.js';
import { llama3TokenizerDir } from './testing.js';

const llama3 = loadEncoder({ kind: 'dir', dir: llama3TokenizerDir() });

/** Tokens of `text` through the cache (inline). */
function cached(cache: PrefixTokenCache, enc: TokenEncoder, text: string): number[] {
  const plan = cache.plan(text);
  return cache.commit(plan, plan.segments.map(([a, b]) => enc.encodePlain(text.slice(a, b))));
}

// Pieces that stress the pre-tokenizer: contractions, digits runs, punctuation, newlines, spaces,
// accents, CJK, emoji (surrogates), and Llama 3 special tokens (whole and broken).
const PIECES = [
  ' the', ' cache', ' Router', 'ing', "'s", "'LL", ' 1234567', '42', '.', ',', '!?', ' (x)', ' "quoted"', '\n', '\n\n', '\r\n', '  ', '   ',
  '\t', ' café', ' naïve', ' 東京', '日本語', ' 😀', '🚀x', ' Ωmega', '<|eot_id|>', '<|start_header_id|>', 'user', '<|end_header_id|>', '<|eot', '|>',
  ' http://a.b/c?d=1', ' x_y', '...', ' -', 'A', 'z', ' über', ' ünïcödé', '\u00a0', ' 123abc', 'abc123', ' —', '«', '»',
];

function randomText(rng: Rng, n: number): string {
  let s = '';
  while (s.length < n) s += PIECES[randInt(rng, PIECES.length)];
  return s;
}

test('Llama 3: prefix-cached tokenization equals full tokenization over randomized texts', () => {
  assert.ok(llama3.safeCut, 'the Llama 3 tokenizer.json has a proven cut rule');
  const rng = seededRng(20240607);
  const cache = new PrefixTokenCache(llama3.safeCut!, { blockChars: 128, maxBytes: 2_000_000 });
  let checks = 0;
  for (let round = 0; round < 40; round++) {
    const base = randomText(rng, 200 + randInt(rng, 1500));
    const variants = [
      base,
      base + randomText(rng, 1 + randInt(rng, 400)), // continuation
      base.slice(0, randInt(rng, base.length)) + randomText(rng, 1 + randInt(rng, 300)), // diverges inside
      base.slice(0, randInt(rng, base.length)), // a prefix of it
    ];
    for (const v of variants) {
      assert.deepEqual(cached(cache, llama3, v), llama3.encodePlain(v), `round ${round}: ${JSON.stringify(v.slice(0, 80))}...`);
      checks++;
    }
  }
  const s = cache.stats();
  assert.equal(checks, 160);
  assert.ok(s.hitBlocks > 100 && s.reusedTokens > 1000, `the cache was used: ${JSON.stringify(s)}`);
});

test('Llama 3: real chat conversations, turn n reuses turn n-1 and stays exact', () => {
  const cache = new PrefixTokenCache(llama3.safeCut!, { blockChars: 256 });
  const rng = seededRng(7);
  const messages: Array<{ role: string; content: string }> = [{ role: 'system', content: 'You are a careful assistant. ' + randomText(rng, 1500) }];
  let prevLen = 0;
  for (let turn = 0; turn < 6; turn++) {
    messages.push({ role: 'user', content: `Question ${turn}: ` + randomText(rng, 300) });
    const text = llama3.chat.render(messages);
    const before = cache.stats();
    assert.deepEqual(cached(cache, llama3, text), llama3.encodePlain(text), `turn ${turn}`);
    const after = cache.stats();
    const reusedChars = after.reusedChars - before.reusedChars;
    if (turn > 0) {
      // Everything up to the last full block of the previous prompt, minus one block and the cut margin.
      assert.ok(reusedChars >= Math.floor(prevLen / 256) * 256 - 2 * 256, `turn ${turn} reused ${reusedChars} of ${prevLen}`);
    }
    prevLen = text.length;
    messages.push({ role: 'assistant', content: `Answer ${turn}. ` + randomText(rng, 200) });
  }
});

test('hit accounting: the same text twice is served entirely from the cache but for the tail', () => {
  const cache = new PrefixTokenCache(llama3.safeCut!, { blockChars: 256 });
  const text = 'The router sends each request to the replica that holds its prefix. '.repeat(40);
  const ids = cached(cache, llama3, text);
  const s1 = cache.stats();
  assert.equal(s1.lookups, 1);
  assert.equal(s1.hitBlocks, 0);
  assert.equal(s1.missBlocks, Math.floor(text.length / 256));
  assert.equal(s1.reusedTokens, 0);
  assert.deepEqual(cached(cache, llama3, text), ids);
  const s2 = cache.stats();
  assert.equal(s2.hitBlocks, s1.missBlocks, 'every full block hit');
  assert.ok(s2.reusedChars > text.length - 256, `reused ${s2.reusedChars} of ${text.length}`);
  assert.equal(s2.totalTokens, 2 * ids.length);
  assert.equal(s2.entries, s1.missBlocks, 'no duplicate entries');
});

test('memory is bounded: entries are evicted beyond maxBytes and results stay exact', () => {
  const cache = new PrefixTokenCache(llama3.safeCut!, { blockChars: 128, maxBytes: 20_000 });
  const rng = seededRng(99);
  for (let i = 0; i < 20; i++) {
    const t = randomText(rng, 2000);
    assert.deepEqual(cached(cache, llama3, t), llama3.encodePlain(t));
    assert.ok(cache.stats().bytes <= 20_000);
  }
  assert.ok(cache.stats().evictions > 0);
});

test('no safe cut in a block (one long word, digits): segments span blocks, still exact', () => {
  const cache = new PrefixTokenCache(llama3.safeCut!, { blockChars: 128 });
  const texts = ['x'.repeat(1000) + ' tail', '1234567890'.repeat(60) + ' and words after digits', '日本語のテキスト'.repeat(80)];
  for (const t of texts) {
    assert.deepEqual(cached(cache, llama3, t), llama3.encodePlain(t));
    assert.deepEqual(cached(cache, llama3, t + ' more'), llama3.encodePlain(t + ' more'));
  }
});

test('safe-cut rule never cuts inside or next to a special token', () => {
  const rule = llama3.safeCut!;
  const t = 'hello<|eot_id|>world';
  for (let c = 1; c < t.length; c++) {
    if (rule.isSafe(t, c)) assert.ok(c <= 4 || c >= 16, `cut at ${c}`);
  }
  assert.equal(rule.isSafe('hello world', 5), true, 'letter then space');
  assert.equal(rule.isSafe('hello world', 6), false, 'space then letter');
  assert.equal(rule.isSafe("don't", 3), true, "letter then apostrophe: the contraction is its own pre-token");
});

test('built-in tokenizer: cached equals full over randomized texts', () => {
  const b = loadEncoder({ kind: 'builtin' });
  const cache = new PrefixTokenCache(b.safeCut!, { blockChars: 64 });
  const rng = seededRng(3);
  for (let i = 0; i < 60; i++) {
    const base = randomText(rng, 300 + randInt(rng, 600));
    for (const v of [base, base + randomText(rng, 50), base.slice(0, randInt(rng, base.length)) + ' x']) {
      assert.deepEqual(cached(cache, b, v), b.encodePlain(v));
    }
  }
  assert.ok(cache.stats().hitBlocks > 0);
});
