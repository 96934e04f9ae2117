import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng, randInt } from '../core/rng.js';
import { BYTE_CHARS, writeUtf8 } from './byte-level.js';

test('writeUtf8 writes what TextEncoder writes, lone surrogates included', () => {
  const te = new TextEncoder();
  const rng = seededRng(3);
  const buf = new Uint8Array(3 * 400);
  for (let i = 0; i < 2000; i++) {
    let s = '';
    const len = randInt(rng, 400);
    // Code units from every range: ASCII, 2- and 3-byte, surrogates (paired or not), the last ones.
    for (let k = 0; k < len; k++) s += String.fromCharCode([randInt(rng, 0x80), randInt(rng, 0x800), randInt(rng, 0x10000), 0xd800 + randInt(rng, 0x800), 0xfffd + randInt(rng, 3)][randInt(rng, 5)]);
    const want = te.encode(s);
    const n = writeUtf8(s, buf);
    assert.equal(n, want.length);
    assert.deepEqual(buf.subarray(0, n), want, JSON.stringify(s));
  }
});

test('BYTE_CHARS is the GPT-2 table: 256 distinct characters, printable bytes map to themselves', () => {
  assert.equal(new Set(BYTE_CHARS).size, 256);
  assert.equal(BYTE_CHARS[0x41], 'A');
  assert.equal(BYTE_CHARS[0x20], 'Ġ');
  assert.equal(BYTE_CHARS[0x0a], 'Ċ');
});
