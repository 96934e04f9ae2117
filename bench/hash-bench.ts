/**
 * Approximate prompt hashing, old scheme vs new, in one process (interleaved rounds):
 *   - xxhash-wasm: the previous TextBlockHasher (text copied to a UTF-16 buffer, one h64Raw
 *     WebAssembly call per 64-character block, BigInt seed and a 52-bit mask per key);
 *   - kvroute: the chained two-lane hash read straight from the string (src/core/chained-hash.ts).
 * 256 blocks of 64 characters (the scorer's cap), median of 7 rounds of 2,000 prompts each.
 *
 *   npm run build && node dist/bench/hash-bench.js
 */
import xxhash from 'xxhash-wasm';
import { TextBlockHasher } from '../src/prefix/text-block-hasher.js';

const api = await xxhash();
const LOW_52 = (1n << 52n) - 1n;

function xxhashBlocks(model: string, text: string, blockChars = 64, maxBlocks = 256): Float64Array {
  const n = Math.min(Math.floor(text.length / blockChars), maxBlocks);
  const len = n * blockChars;
  const units = new Uint16Array(len);
  for (let i = 0; i < len; i++) units[i] = text.charCodeAt(i);
  const bytes = new Uint8Array(units.buffer, 0, len * 2);
  const out = new Float64Array(n);
  let key = api.h64(model, 0n);
  for (let b = 0; b < n; b++) {
    key = api.h64Raw(bytes.subarray(b * blockChars * 2, (b + 1) * blockChars * 2), key);
    out[b] = Number(key & LOW_52);
  }
  return out;
}

const hasher = new TextBlockHasher();
const prompts: string[] = [];
for (let p = 0; p < 64; p++) {
  let s = '';
  let x = (p + 1) * 2654435761 >>> 0;
  while (s.length < 16_384) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    s += `w${(x % 100000).toString(36)} `;
  }
  prompts.push(s.slice(0, 16_384));
}
const cases: [string, (s: string) => unknown][] = [
  ['xxhash-wasm (previous)', (s) => xxhashBlocks('m', s)],
  ['kvroute chained-hash', (s) => hasher.hash('m', s)],
];
const times = new Map<string, number[]>(cases.map(([n]) => [n, []]));
for (let round = 0; round < 8; round++) {
  for (const [name, fn] of cases) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 2_000; i++) fn(prompts[i & 63]);
    if (round > 0) times.get(name)!.push(Number(process.hrtime.bigint() - t0) / 2_000 / 1000);
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const base = med(times.get(cases[0][0])!);
for (const [name] of cases) {
  const m = med(times.get(name)!);
  console.log(`${name.padEnd(24)} ${m.toFixed(1).padStart(7)} us per 256-block prompt   ${(base / m).toFixed(2)}x`);
}
