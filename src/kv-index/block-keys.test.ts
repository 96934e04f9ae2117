import test from 'node:test';
import assert from 'node:assert/strict';
import { BlockKeyer, keyFromString, keyToString } from './block-keys.js';
import { KvrError } from '../core/errors.js';

const tokens = (n: number, from = 0) => Array.from({ length: n }, (_, i) => (from + i * 2654435761) >>> 0);

test('keys are deterministic, exact safe integers, one per full block (partial block ignored)', () => {
  const k = new BlockKeyer();
  const a = k.requestKeys('m', tokens(50), 16);
  const b = new BlockKeyer().requestKeys('m', tokens(50), 16);
  assert.equal(a.length, 3);
  assert.deepEqual([...a], [...b]);
  for (const x of a) assert.ok(Number.isSafeInteger(x) && x >= 0);
  assert.equal(new Set(a).size, 3);
  assert.equal(k.requestKeys('m', tokens(15), 16).length, 0);
  // The tokens of the partial block do not change the full blocks' keys.
  assert.deepEqual([...k.requestKeys('m', [...tokens(48), 1, 2, 3], 16)], [...a]);
});

test('keys chain: a key names its whole prefix, and extending from a key equals keying all at once', () => {
  const k = new BlockKeyer();
  const t = tokens(64);
  const all = k.requestKeys('m', t, 16);
  const changed = [...t];
  changed[3] = (changed[3] ^ 1) >>> 0; // a change in block 0 changes every later key
  const other = k.requestKeys('m', changed, 16);
  for (let i = 0; i < 4; i++) assert.notEqual(other[i], all[i]);
  const tail = k.extendKeys(all[1], t.slice(32), 16);
  assert.deepEqual([...tail], [...all.slice(2)]);
  // Same block content after different prefixes: different keys.
  const twice = k.requestKeys('m', [...t.slice(0, 16), ...t.slice(0, 16)], 16);
  assert.notEqual(twice[0], twice[1]);
});

test('the root depends on the model, the LoRA adapter, the seed and the block size', () => {
  const k = new BlockKeyer();
  const t = tokens(32);
  const base = k.requestKeys('m', t, 16)[0];
  assert.notEqual(k.requestKeys('other', t, 16)[0], base);
  assert.notEqual(k.requestKeys('m', t, 16, 'lora-a')[0], base);
  assert.notEqual(k.requestKeys('m', t, 16, 'lora-a')[0], k.requestKeys('m', t, 16, 'lora-b')[0]);
  assert.equal(k.requestKeys('m', t, 16, '')[0], base);
  assert.notEqual(new BlockKeyer('another-seed').requestKeys('m', t, 16)[0], base);
  assert.notEqual(k.requestKeys('m', t, 32)[0], base);
});

test('keys spread: no collisions among 200,000 blocks of random-looking prefixes', () => {
  const k = new BlockKeyer();
  const seen = new Set<number>();
  const t = tokens(16 * 1000, 7);
  for (let r = 0; r < 200; r++) {
    t[0] = r;
    for (const x of k.requestKeys('m', t, 16)) seen.add(x);
  }
  assert.equal(seen.size, 200_000);
});

test('bad input is refused with KVR_ERR_BAD_REQUEST', () => {
  const k = new BlockKeyer();
  for (const bad of [0, -1, 1.5, 5000, Number.NaN]) assert.throws(() => k.requestKeys('m', tokens(32), bad), KvrError);
  for (const tok of [-1, 1.5, 2 ** 32, Number.NaN]) {
    const t = tokens(32);
    t[20] = tok;
    assert.throws(() => k.requestKeys('m', t, 16), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_BAD_REQUEST');
  }
});

test('keys round-trip through their Redis string form', () => {
  for (const x of new BlockKeyer().requestKeys('m', tokens(160), 16)) assert.equal(keyFromString(keyToString(x)), x);
  assert.equal(keyFromString('abc'), undefined);
  assert.equal(keyFromString('-3'), undefined);
});
