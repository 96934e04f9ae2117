import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng, randInt } from './rng.js';
import { chainTextBlocks, chainWordBlocks } from './chained-hash.js';
import { BlockKeyer } from '../kv-index/block-keys.js';


test('token blocks: the precise index keys are the ones kvroute has always stored (golden values, so a shared Redis index stays valid across versions)', () => {
  // Computed with BlockKeyer before its hash moved into chained-hash.ts.
  const keyer = new BlockKeyer();
  const toks = Array.from({ length: 50 }, (_, i) => (i * 7919 + 13) % 128256);
  assert.equal(keyer.root('m'), 7191457013384585);
  assert.deepEqual([...keyer.requestKeys('m', toks, 16)], [2063143566424748, 2928969887665090, 7548470881611274]);
  assert.deepEqual([...keyer.requestKeys('m', toks, 7)], [2952600127831042, 8272891759008194, 572030059309136, 5703510147819132, 5976674151888296, 4553814141015723, 8190127728552750]);
  // And chainWordBlocks is what computes them.
  const out = new Float64Array(3);
  chainWordBlocks(keyer.root('m'), toks, 0, 16, 3, out, 0);
  assert.deepEqual([...out], [2063143566424748, 2928969887665090, 7548470881611274]);
});

test('text blocks: deterministic, chained (a key names its whole prefix), exact integers below 2^53', () => {
  const a = 'x'.repeat(64) + 'y'.repeat(64) + 'z'.repeat(64);
  const k = chainTextBlocks(7, a, 64, 3);
  assert.deepEqual([...chainTextBlocks(7, a, 64, 3)], [...k]);
  for (const v of k) assert.ok(Number.isSafeInteger(v) && v >= 0);
  // Same block content after a different first block gives a different key.
  const b = 'w'.repeat(64) + 'y'.repeat(64) + 'z'.repeat(64);
  const kb = chainTextBlocks(7, b, 64, 3);
  assert.notEqual(kb[1], k[1]);
  assert.notEqual(kb[2], k[2]);
  // A different parent (model root) changes every key.
  const kp = chainTextBlocks(8, a, 64, 3);
  for (let i = 0; i < 3; i++) assert.notEqual(kp[i], k[i]);
  // Prefix property: the keys of a longer text start with the keys of its prefix.
  assert.deepEqual([...chainTextBlocks(7, a + 'q'.repeat(64), 64, 4).slice(0, 3)], [...k]);
});

test('text blocks: one changed code unit anywhere in a block changes that key and every later one', () => {
  const rng = seededRng(3);
  let s = '';
  for (let i = 0; i < 64 * 6; i++) s += String.fromCharCode(32 + randInt(rng, 90));
  for (const bc of [63, 64, 65]) {
    const n = Math.floor(s.length / bc);
    const base = chainTextBlocks(1, s, bc, n);
    for (const pos of [0, 1, 2, 3, bc - 1, bc + 5, 2 * bc + 3]) {
      const t = s.slice(0, pos) + String.fromCharCode(s.charCodeAt(pos) ^ 1) + s.slice(pos + 1);
      const k = chainTextBlocks(1, t, bc, n);
      const blk = Math.floor(pos / bc);
      for (let i = 0; i < n; i++) {
        if (i < blk) assert.equal(k[i], base[i], `block ${i} before the change (bc ${bc}, pos ${pos})`);
        else assert.notEqual(k[i], base[i], `block ${i} at/after the change (bc ${bc}, pos ${pos})`);
      }
    }
  }
});

test('text blocks: no collision among 1,000,000 distinct random blocks', () => {
  const rng = seededRng(11);
  const seen = new Set<number>();
  const chars = new Array<string>(64);
  for (let i = 0; i < 1_000_000; i++) {
    for (let c = 0; c < 64; c++) chars[c] = String.fromCharCode(97 + randInt(rng, 26));
    const k = chainTextBlocks(0, chars.join(''), 64, 1)[0];
    seen.add(k);
  }
  // 26^64 possible blocks: duplicates among the inputs themselves are impossible in practice.
  assert.equal(seen.size, 1_000_000);
});

test('text blocks: the word fast path gives exactly the char-by-char keys (golden values; non-ASCII, lone surrogates, odd sizes)', async () => {
  const { chainTextChars } = await import('./chained-hash.js');
  const a = 'x'.repeat(64) + 'y'.repeat(64) + 'z\u00e9\ud800'.repeat(22) + 'q';
  // Computed with the char-by-char loop before the fast path existed.
  assert.deepEqual([...chainTextBlocks(7, a, 64, 3)], [4219373400101577, 5776650450691469, 342197007054725]);
  const rng = seededRng(5);
  for (let round = 0; round < 50; round++) {
    let s = '';
    const len = 64 + randInt(rng, 20_000);
    for (let i = 0; i < len; i++) s += String.fromCharCode(randInt(rng, 4) === 0 ? randInt(rng, 0x10000) : 32 + randInt(rng, 90));
    for (const bc of [4, 12, 20, 64, 63, 128]) {
      const n = Math.floor(s.length / bc);
      assert.deepEqual([...chainTextBlocks(3, s, bc, n)], [...chainTextChars(3, s, bc, n)], `round ${round}, block ${bc}`);
    }
  }
});
