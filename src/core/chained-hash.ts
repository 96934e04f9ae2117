/**
 * kvroute's chained block hash: one key per block, each key chained on the one before, so a key
 * names the whole prefix up to its block. Used for the precise index's token blocks
 * (src/kv-index/block-keys.ts) and the approximate scorer's text blocks
 * (src/prefix/text-block-hasher.ts).
 *
 *   key[i] = H(key[i-1], block i)        key[-1] = the parent (a root or the previous block)
 *
 * H: 32-bit words enter two lanes in turn, mixed with Math.imul in the manner of MurmurHash3
 * x86_128 (each lane also absorbs the other after every step); the lanes are finalized with
 * MurmurHash3's fmix32 and cross-added; the key is the low 53 bits of the two lanes, an exact
 * JavaScript number. Plain JS, no WebAssembly call, no BigInt and no allocation per block.
 * Not cryptographic: a crafted collision only makes one routing prediction wrong.
 *
 * The token and text variants are separate monomorphic loops on purpose: one function fed both
 * `number[]`, typed arrays and strings runs 2x slower in V8 (measured with bench:scheduler).
 *
 * Text fast path: when blocks are a multiple of 4 code units (the default 64) on a little-endian
 * host, the text's leading code units are copied once, natively, into a reused buffer as UTF-16LE
 * (`Buffer.write`, which keeps lone surrogates) and read as 32-bit words: word i is exactly
 * `charCodeAt(2i) | charCodeAt(2i + 1) << 16`, so the keys are the same as the char-by-char loop's
 * (tested) at about half the cost (two `charCodeAt` calls per word were most of it); its loop is
 * written out by hand (see chainTextWords).
 */

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const TWO_32 = 4294967296;
const HI_MASK = 0x1fffff; // 21 bits: 32 + 21 = 53

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/** Lane 1 absorbs word `w`. */
function lane1(h1: number, h2: number, w: number): number {
  let k1 = Math.imul(w, C1);
  k1 = rotl(k1, 15);
  k1 = Math.imul(k1, C2);
  h1 ^= k1;
  h1 = rotl(h1, 19);
  h1 = (h1 + h2) | 0;
  return (Math.imul(h1, 5) + 0x561ccd1b) | 0;
}

/** Lane 2 absorbs word `w`. */
function lane2(h2: number, h1: number, w: number): number {
  let k2 = Math.imul(w, C2);
  k2 = rotl(k2, 16);
  k2 = Math.imul(k2, C3);
  h2 ^= k2;
  h2 = rotl(h2, 17);
  h2 = (h2 + h1) | 0;
  return (Math.imul(h2, 5) + 0x0bcaa747) | 0;
}

/** Lane 1 absorbs a last odd word. */
function lane1Tail(h1: number, h2: number, w: number): number {
  let k1 = Math.imul(w, C1);
  k1 = rotl(k1, 15);
  k1 = Math.imul(k1, C2);
  h1 ^= k1;
  return (Math.imul(rotl(h1, 19), 5) + h2) | 0;
}

/** The 53-bit key of a block from its lanes. */
function finish(h1: number, h2: number, blockLen: number): number {
  h1 ^= blockLen;
  h2 ^= blockLen;
  h1 = (h1 + h2) | 0;
  h2 = (h2 + h1) | 0;
  h1 = fmix32(h1);
  h2 = fmix32(h2);
  h1 = (h1 + h2) | 0;
  h2 = (h2 + h1) | 0;
  return (h2 & HI_MASK) * TWO_32 + (h1 >>> 0);
}

const startLane1 = (key: number): number => (key >>> 0) ^ 0x9e3779b9;
const startLane2 = (key: number, blockLen: number): number => Math.floor(key / TWO_32) ^ 0x7f4a7c15 ^ blockLen;

/**
 * Keys `n` consecutive blocks of `blockSize` words from `words[offset]` on, chained on `parent`,
 * into `out[outOffset..]`; returns the last key. Words must be unsigned 32-bit integers.
 */
export function chainWordBlocks(
  parent: number,
  words: ArrayLike<number>,
  offset: number,
  blockSize: number,
  n: number,
  out: Float64Array | number[],
  outOffset: number,
): number {
  let key = parent;
  let t = offset;
  for (let b = 0; b < n; b++) {
    let h1 = startLane1(key);
    let h2 = startLane2(key, blockSize);
    const end = t + blockSize;
    for (; t + 1 < end; t += 2) {
      h1 = lane1(h1, h2, words[t]);
      h2 = lane2(h2, h1, words[t + 1]);
    }
    if (t < end) h1 = lane1Tail(h1, h2, words[t++]);
    key = finish(h1, h2, blockSize);
    out[outOffset + b] = key;
  }
  return key;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
// Signed view: an Int32Array load stays a 32-bit integer in optimized code (Math.imul and the
// shifts ignore the sign); a Uint32Array load above 2^31 does not fit one and costs conversions.
let textWords = new Int32Array(4096);
let textBytes = Buffer.from(textWords.buffer);

/**
 * Keys the first `n` blocks of `blockChars` UTF-16 code units of `text`, chained on `parent`.
 * Two code units make one word, so a block of 64 characters is 16 steps of both lanes.
 */
export function chainTextBlocks(parent: number, text: string, blockChars: number, n: number): Float64Array {
  const units = n * blockChars;
  if (!LITTLE_ENDIAN || (blockChars & 3) !== 0 || units > text.length) return chainTextChars(parent, text, blockChars, n);
  if (textWords.length * 2 < units) {
    textWords = new Int32Array(1 << Math.ceil(Math.log2(units / 2)));
    textBytes = Buffer.from(textWords.buffer);
  }
  if (textBytes.write(text, 0, units * 2, 'utf16le') !== units * 2) return chainTextChars(parent, text, blockChars, n);
  return chainTextWords(parent, textWords, blockChars, n);
}

/**
 * {@link chainTextBlocks} over the text's code units as little-endian 32-bit words (blockChars a
 * multiple of 4). The hot loop of approximate routing (an 8 KB prompt is ~4,000 words), written
 * out by hand: the lanes inlined, four word pairs per iteration (one loop check, one stack check
 * and one array check per 8 words instead of per 2), the previous key carried as its two 32-bit
 * halves (no float division per block). Same keys as {@link chainTextChars} (tested).
 */
function chainTextWords(parent: number, w: Int32Array, blockChars: number, n: number): Float64Array {
  const out = new Float64Array(n);
  const blockWords = blockChars >> 1;
  let lo = parent >>> 0;
  let hi = Math.floor(parent / TWO_32) | 0;
  let t = 0;
  let k1 = 0;
  let k2 = 0;
  for (let b = 0; b < n; b++) {
    let h1 = lo ^ 0x9e3779b9;
    let h2 = hi ^ 0x7f4a7c15 ^ blockChars;
    const end = t + blockWords;
    for (; t + 8 <= end; t += 8) {
      k1 = Math.imul(w[t], C1); k1 = (k1 << 15) | (k1 >>> 17); h1 ^= Math.imul(k1, C2);
      h1 = (((h1 << 19) | (h1 >>> 13)) + h2) | 0; h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0;
      k2 = Math.imul(w[t + 1], C2); k2 = (k2 << 16) | (k2 >>> 16); h2 ^= Math.imul(k2, C3);
      h2 = (((h2 << 17) | (h2 >>> 15)) + h1) | 0; h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0;
      k1 = Math.imul(w[t + 2], C1); k1 = (k1 << 15) | (k1 >>> 17); h1 ^= Math.imul(k1, C2);
      h1 = (((h1 << 19) | (h1 >>> 13)) + h2) | 0; h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0;
      k2 = Math.imul(w[t + 3], C2); k2 = (k2 << 16) | (k2 >>> 16); h2 ^= Math.imul(k2, C3);
      h2 = (((h2 << 17) | (h2 >>> 15)) + h1) | 0; h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0;
      k1 = Math.imul(w[t + 4], C1); k1 = (k1 << 15) | (k1 >>> 17); h1 ^= Math.imul(k1, C2);
      h1 = (((h1 << 19) | (h1 >>> 13)) + h2) | 0; h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0;
      k2 = Math.imul(w[t + 5], C2); k2 = (k2 << 16) | (k2 >>> 16); h2 ^= Math.imul(k2, C3);
      h2 = (((h2 << 17) | (h2 >>> 15)) + h1) | 0; h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0;
      k1 = Math.imul(w[t + 6], C1); k1 = (k1 << 15) | (k1 >>> 17); h1 ^= Math.imul(k1, C2);
      h1 = (((h1 << 19) | (h1 >>> 13)) + h2) | 0; h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0;
      k2 = Math.imul(w[t + 7], C2); k2 = (k2 << 16) | (k2 >>> 16); h2 ^= Math.imul(k2, C3);
      h2 = (((h2 << 17) | (h2 >>> 15)) + h1) | 0; h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0;
    }
    for (; t < end; t += 2) {
      h1 = lane1(h1, h2, w[t]);
      h2 = lane2(h2, h1, w[t + 1]);
    }
    h1 ^= blockChars;
    h2 ^= blockChars;
    h1 = (h1 + h2) | 0;
    h2 = (h2 + h1) | 0;
    h1 = fmix32(h1);
    h2 = fmix32(h2);
    h1 = (h1 + h2) | 0;
    h2 = (h2 + h1) | 0;
    lo = h1 >>> 0;
    hi = h2 & HI_MASK;
    out[b] = hi * TWO_32 + lo;
  }
  return out;
}

/** {@link chainTextBlocks}, reading the string code unit by code unit (any block size). */
export function chainTextChars(parent: number, text: string, blockChars: number, n: number): Float64Array {
  const out = new Float64Array(n);
  let key = parent;
  let t = 0;
  for (let b = 0; b < n; b++) {
    let h1 = startLane1(key);
    let h2 = startLane2(key, blockChars);
    const end = t + blockChars;
    for (; t + 3 < end; t += 4) {
      h1 = lane1(h1, h2, text.charCodeAt(t) | (text.charCodeAt(t + 1) << 16));
      h2 = lane2(h2, h1, text.charCodeAt(t + 2) | (text.charCodeAt(t + 3) << 16));
    }
    if (t + 1 < end) {
      h1 = lane1(h1, h2, text.charCodeAt(t) | (text.charCodeAt(t + 1) << 16));
      t += 2;
      if (t < end) h2 = lane2(h2, h1, text.charCodeAt(t++));
    } else if (t < end) {
      h1 = lane1Tail(h1, h2, text.charCodeAt(t++));
    }
    key = finish(h1, h2, blockChars);
    out[b] = key;
  }
  return out;
}
