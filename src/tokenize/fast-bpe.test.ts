import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { randInt, seededRng, type Rng } from '../core/rng.js';
import { loadEncoder, type TokenEncoder } from './encoder.js';
import { ByteLevelBpe } from './fast-bpe.js';
import { llama3TokenizerDir } from './testing.js';

const DIR = llama3TokenizerDir();
const JSON_TEXT = readFileSync(join(DIR, 'tokenizer.json'), 'utf8');
const CFG = JSON.parse(readFileSync(join(DIR, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;

/** The reference: @huggingface/tokenizers itself, without any kvroute code in between. */
function library(json: Record<string, unknown>): (t: string) => number[] {
  const tok = new Tokenizer(json, CFG);
  return (t) => tok.encode(t, { add_special_tokens: false }).ids;
}

const WHITESPACE = [' ', '  ', '\t', '\n', '\n\n', '\r\n', '\r', '\u000b', '\f', '\u0085', '\u00a0', '\u1680', '\u2003', '\u2028', '\u3000', '\ufeff', ' \n ', '   \n'];
const PIECES = [
  ' the', ' cache', ' Router', 'ing', "'s", "'S", "'LL", "'ll", "'Re", "'ve", "'d", "'m", "'t", "'x", "ſ", "'ſ", 'K', 'İstanbul', ' 1234567', '42', '٣٤٥', '７８９', '½',
  '.', ',', '!?', ' (x)', ' "quoted"', '...', ' -', '—', '«', '»', '```', '====', ' </div>', '{"a":1}', ' http://a.b/c?d=1', ' x_y', 'a\u0301', '\u0301',
  ' café', ' naïve', ' Straße', ' ΑΒΓ', ' привет', ' 東京', '日本語の文章です', '한국어', ' عربى', ' हिन्दी', ' 😀', '👍🏽', '🚀x', '\ud800', '\udc00', 'x\ud83d',
  '<|eot_id|>', '<|start_header_id|>', 'user', '<|end_header_id|>', '<|begin_of_text|>', '<|eot', '|>', '<|', '<|reserved_special_token_0|>', '<<|eot_id|>>',
  '\u0000', '\u0007', '\u007f', '\u200b', '\u200d',
];

function randomText(rng: Rng, n: number): string {
  let s = '';
  while (s.length < n) {
    const r = rng.next();
    if (r < 0.6) s += PIECES[randInt(rng, PIECES.length)];
    else if (r < 0.85) s += WHITESPACE[randInt(rng, WHITESPACE.length)];
    else s += String.fromCodePoint(randInt(rng, 0x3000)); // anything in the first planes, controls included
  }
  return s;
}

/** Pathological lengths: long runs that make single huge pieces. */
const LONG = [
  ' '.repeat(5000),
  '\n'.repeat(3000),
  ' \t'.repeat(1000) + 'x',
  'a'.repeat(4000),
  'ab'.repeat(2500),
  '東京'.repeat(1200),
  '9'.repeat(3001),
  '!'.repeat(2048) + '\n\n',
  '😀'.repeat(700),
  'x' + '\u0301'.repeat(600),
];

function assertSame(enc: TokenEncoder, ref: (t: string) => number[], text: string, what: string): void {
  const want = ref(text);
  const got = enc.encodePlain(text);
  if (got.length !== want.length || got.some((x, i) => x !== want[i])) {
    assert.fail(`${what}: fast path differs from @huggingface/tokenizers on ${JSON.stringify(text.slice(0, 120))} (${text.length} chars)`);
  }
}

test('Llama 3 fast BPE: the same ids as @huggingface/tokenizers on 600 randomized texts and pathological runs', () => {
  const json = JSON.parse(JSON_TEXT) as Record<string, unknown>;
  const ref = library(json);
  const enc = loadEncoder({ kind: 'dir', dir: DIR });
  assert.ok(enc.fastPathStats?.(), 'the Llama 3 tokenizer gets the fast path');
  const rng = seededRng(15);
  for (let i = 0; i < 600; i++) assertSame(enc, ref, randomText(rng, 1 + randInt(rng, i < 500 ? 300 : 3000)), `random text ${i}`);
  for (const t of LONG) assertSame(enc, ref, t, 'long run');
  for (const t of LONG) assertSame(enc, ref, randomText(rng, 50) + t + randomText(rng, 50), 'long run inside text');
  assertSame(enc, ref, '', 'empty');
  // A second pass hits the piece cache: still the same ids.
  const rng2 = seededRng(15);
  for (let i = 0; i < 100; i++) assertSame(enc, ref, randomText(rng2, 1 + randInt(rng2, 300)), `cached pass ${i}`);
  const s = enc.fastPathStats!()!;
  assert.equal(s.fallbacks, 0, 'byte-level Llama 3 never needs the library');
  assert.ok(s.pieceHits > s.pieceMisses, `the piece cache serves most pieces: ${JSON.stringify(s)}`);
});

test('Llama 3 fast BPE: rendered multi-turn chats (special tokens in user content, whitespace at message edges)', () => {
  const ref = library(JSON.parse(JSON_TEXT) as Record<string, unknown>);
  const enc = loadEncoder({ kind: 'dir', dir: DIR });
  const rng = seededRng(99);
  const messages: Array<{ role: string; content: string }> = [{ role: 'system', content: '  You are terse.\n' + randomText(rng, 800) + '\n\n' }];
  for (let turn = 0; turn < 12; turn++) {
    messages.push({ role: 'user', content: (turn % 3 === 0 ? '<|eot_id|>' : ' ') + randomText(rng, 200) + (turn % 2 ? '\n' : '') });
    assertSame(enc, ref, enc.chat.render(messages), `turn ${turn}`);
    messages.push({ role: 'assistant', content: randomText(rng, 150) });
  }
});

test('GPT-2 style pre-tokenizer (ByteLevel with its own regex): fast path on, same ids', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvroute-gpt2-shape-'));
  try {
    const json = JSON.parse(JSON_TEXT) as Record<string, unknown>;
    json.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    copyFileSync(join(DIR, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
    const enc = loadEncoder({ kind: 'dir', dir });
    assert.ok(enc.fastPathStats?.(), 'ByteLevel(use_regex) gets the fast path');
    const ref = library(json);
    const rng = seededRng(2);
    for (let i = 0; i < 200; i++) assertSame(enc, ref, randomText(rng, 1 + randInt(rng, 400)), `gpt2-shape text ${i}`);
    for (const t of LONG) assertSame(enc, ref, t, 'gpt2-shape long run');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Qwen 2 style split regex (single digits): fast path on, same ids', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvroute-qwen2-shape-'));
  try {
    const json = JSON.parse(JSON_TEXT) as { pre_tokenizer: { pretokenizers: Array<{ pattern?: { Regex: string } }> } } & Record<string, unknown>;
    json.pre_tokenizer.pretokenizers[0].pattern = {
      Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    };
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    copyFileSync(join(DIR, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
    const enc = loadEncoder({ kind: 'dir', dir });
    assert.ok(enc.fastPathStats?.(), 'the Qwen 2 split gets the fast path');
    assert.ok(enc.safeCut, 'and a proven cut rule');
    const ref = library(json);
    assert.notDeepEqual(ref('12345'), library(JSON.parse(JSON_TEXT) as Record<string, unknown>)('12345'), 'the copy really splits digits one by one');
    const rng = seededRng(4);
    for (let i = 0; i < 200; i++) assertSame(enc, ref, randomText(rng, 1 + randInt(rng, 400)), `qwen2-shape text ${i}`);
    for (const t of LONG) assertSame(enc, ref, t, 'qwen2-shape long run');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a tokenizer the fast path does not mirror (a normalizer) is tokenized by the library only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvroute-nfc-'));
  try {
    const json = JSON.parse(JSON_TEXT) as Record<string, unknown>;
    json.normalizer = { type: 'NFC' };
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    copyFileSync(join(DIR, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
    const enc = loadEncoder({ kind: 'dir', dir });
    assert.equal(enc.fastPathStats?.(), undefined, 'no fast path with a normalizer');
    assertSame(enc, library(json), 'cafe\u0301 and café', 'normalized text');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A tiny byte-level BPE: the 256 byte characters, a few merges, one whose result is not in the vocabulary. */
function tinyJson(): Record<string, unknown> {
  const llama = JSON.parse(JSON_TEXT) as { model: { vocab: Record<string, number> } };
  const vocab: Record<string, number> = {};
  let id = 0;
  // Byte characters of Llama 3's vocabulary (the first 256 single-character entries).
  for (const [s] of Object.entries(llama.model.vocab)) if ([...s].length === 1 && id < 256) vocab[s] = id++;
  vocab.ab = id++;
  vocab.abc = id++;
  return {
    normalizer: null,
    added_tokens: [{ id: id, content: '<x>', lstrip: false, rstrip: false, single_word: false, normalized: false, special: true }],
    model: { type: 'BPE', dropout: null, vocab, merges: ['a b', 'ab c', 'c c'], ignore_merges: false },
  };
}

test('ByteLevelBpe: a merge whose result is not in the vocabulary hands the text back (undefined, counted)', () => {
  const fast = ByteLevelBpe.fromTokenizerJson(tinyJson(), { regex: /\p{L}+|\s+|./gu, mode: 'isolated' })!;
  assert.ok(fast);
  const v = tinyJson().model as { vocab: Record<string, number> };
  assert.deepEqual(fast.encode('abc ab<x>'), [v.vocab.abc, v.vocab['Ġ'], v.vocab.ab, 256 + 2]);
  assert.equal(fast.encode('acc'), undefined, "'c c' merges into 'cc', which the vocabulary lacks");
  assert.equal(fast.stats().fallbacks, 1);
});

test('ByteLevelBpe: the piece cache stays within two generations of its size and stays exact', () => {
  const json = JSON.parse(JSON_TEXT) as Record<string, unknown>;
  const ref = library(json);
  const lib = new Tokenizer(json, CFG) as unknown as { pre_tokenizer: { tokenizers: Array<{ pattern: RegExp }> } };
  const fast = ByteLevelBpe.fromTokenizerJson(json, { regex: lib.pre_tokenizer.tokenizers[0].pattern, mode: 'isolated' }, 16)!;
  const rng = seededRng(5);
  for (let i = 0; i < 200; i++) {
    const t = randomText(rng, 200);
    assert.deepEqual(fast.encode(t), ref(t));
    assert.ok(fast.stats().cachedPieces <= 32, `bounded: ${fast.stats().cachedPieces}`);
  }
});

test('ByteLevelBpe: configurations it does not mirror are refused', () => {
  const split = { regex: /./gu, mode: 'isolated' as const };
  const base = (): Record<string, unknown> => tinyJson();
  const with_ = (f: (j: Record<string, unknown>) => void): Record<string, unknown> => {
    const j = base();
    f(j);
    return j;
  };
  assert.ok(ByteLevelBpe.fromTokenizerJson(base(), split));
  assert.equal(ByteLevelBpe.fromTokenizerJson(with_((j) => ((j.model as Record<string, unknown>).dropout = 0.1)), split), undefined);
  assert.equal(ByteLevelBpe.fromTokenizerJson(with_((j) => ((j.model as Record<string, unknown>).byte_fallback = true)), split), undefined);
  assert.equal(ByteLevelBpe.fromTokenizerJson(with_((j) => ((j.model as Record<string, unknown>).end_of_word_suffix = '</w>')), split), undefined);
  assert.equal(ByteLevelBpe.fromTokenizerJson(with_((j) => (j.normalizer = { type: 'NFC' })), split), undefined);
  assert.equal(ByteLevelBpe.fromTokenizerJson(with_((j) => ((j.added_tokens as Record<string, unknown>[])[0].lstrip = true)), split), undefined);
  // An added token whose content is a vocabulary entry with another id: ids would not be one to one.
  assert.equal(ByteLevelBpe.fromTokenizerJson(with_((j) => ((j.added_tokens as Record<string, unknown>[])[0].content = 'ab')), split), undefined);
  assert.equal(ByteLevelBpe.fromTokenizerJson(with_((j) => ((j.model as Record<string, unknown>).type = 'Unigram')), split), undefined);
});
