/**
 * Chained 64-bit block hashes for the simulated prefix cache: FNV-1a 64 computed in two 32-bit
 * lanes (no BigInt arithmetic on the hot path). `hash_i = FNV1a64(hash_{i-1} bytes, token ids of
 * block i as little-endian uint32)`; the root parent is {@link ROOT_BLOCK_HASH}. Deterministic
 * across processes and platforms.
 */

const FNV_OFFSET_HI = 0xcbf29ce4;
const FNV_OFFSET_LO = 0x84222325;
const TWO32 = 4294967296;

/** One 64-bit word seen as two 32-bit lanes: a BigInt from lanes in one allocation (no shifts, no ors). */
const PAIR = new Uint32Array(2);
const PAIR64 = new BigUint64Array(PAIR.buffer);
PAIR64[0] = 1n;
/** Index of the low lane in {@link PAIR} (0 on little-endian machines). */
const LO = PAIR[0] === 1 ? 0 : 1;

/** `(hi << 32) | lo` as a BigInt, for lanes `hi`, `lo` (unsigned 32-bit). */
export function lanesToBigInt(hi: number, lo: number): bigint {
  PAIR[LO] = lo;
  PAIR[1 - LO] = hi;
  return PAIR64[0];
}

let hi = 0;
let lo = 0;

function mixByte(b: number): void {
  lo = (lo ^ b) >>> 0;
  // (hi:lo) *= 0x100000001b3  (= 2^40 + 0x1b3), modulo 2^64
  const p = lo * 0x1b3;
  const carry = Math.floor(p / TWO32);
  const newLo = p >>> 0;
  hi = (Math.imul(hi, 0x1b3) + (lo << 8) + carry) >>> 0;
  lo = newLo;
}


/** The parent hash of a prompt's first block: FNV-1a 64 of the ASCII text `kvroute-sim`. */
export const ROOT_BLOCK_HASH: bigint = (() => {
  hi = FNV_OFFSET_HI;
  lo = FNV_OFFSET_LO;
  for (const ch of 'kvroute-sim') mixByte(ch.charCodeAt(0));
  return (BigInt(hi) << 32n) | BigInt(lo);
})();

const NO_TAIL: readonly number[] = [];

/** Result lanes of {@link hashLanes} (module scratch, read right after the call). */
let outHi = 0;
let outLo = 0;

/**
 * FNV-1a 64 of the parent's 8 bytes (big-endian lanes, each little-endian) then the block's
 * token ids (uint32 LE), in local variables: the hot path of prompt hashing (same result as
 * feeding each little-endian uint32 byte by byte to `mixByte`). Writes the hash into `outHi` / `outLo`.
 *
 * One byte step is `l ^= byte; (h:l) *= 0x100000001b3`: the new low lane is imul(l, 0x1b3); the
 * high lane gains imul(h, 0x1b3) + (l << 8) (the 2^40 term) + the carry out of l * 0x1b3, which
 * is computed on 16-bit halves so every operation stays in 32-bit integers (no float division).
 * The token sequence is `tokens` followed by `tail` (an engine's prompt, then its outputs).
 */
function hashLanes(parHi: number, parLo: number, tokens: ArrayLike<number>, start: number, blockSize: number, tail: ArrayLike<number> = NO_TAIL): void {
  let h = FNV_OFFSET_HI;
  let l = FNV_OFFSET_LO;
  const end = start + blockSize;
  const cut = tokens.length;
  for (let i = start - 2; i < end; i++) {
    const v = i >= start ? (i < cut ? tokens[i] : tail[i - cut]) >>> 0 : i === start - 2 ? parHi : parLo;
    l = (l ^ (v & 0xff)) >>> 0;
    h = (Math.imul(h, 0x1b3) + (l << 8) + (((((l & 0xffff) * 0x1b3) >>> 16) + (l >>> 16) * 0x1b3) >>> 16)) >>> 0;
    l = Math.imul(l, 0x1b3) >>> 0;
    l = (l ^ ((v >>> 8) & 0xff)) >>> 0;
    h = (Math.imul(h, 0x1b3) + (l << 8) + (((((l & 0xffff) * 0x1b3) >>> 16) + (l >>> 16) * 0x1b3) >>> 16)) >>> 0;
    l = Math.imul(l, 0x1b3) >>> 0;
    l = (l ^ ((v >>> 16) & 0xff)) >>> 0;
    h = (Math.imul(h, 0x1b3) + (l << 8) + (((((l & 0xffff) * 0x1b3) >>> 16) + (l >>> 16) * 0x1b3) >>> 16)) >>> 0;
    l = Math.imul(l, 0x1b3) >>> 0;
    l = (l ^ (v >>> 24)) >>> 0;
    h = (Math.imul(h, 0x1b3) + (l << 8) + (((((l & 0xffff) * 0x1b3) >>> 16) + (l >>> 16) * 0x1b3) >>> 16)) >>> 0;
    l = Math.imul(l, 0x1b3) >>> 0;
  }
  outHi = h;
  outLo = l;
}

/**
 * Hash of one full block: `tokens[start .. start+blockSize)` chained on `parent`
 * (`null` = prompt root).
 */
export function chainBlockHash(
  parent: bigint | null,
  tokens: ArrayLike<number>,
  start: number,
  blockSize: number,
): bigint {
  const par = parent ?? ROOT_BLOCK_HASH;
  hashLanes(Number(par >> 32n) >>> 0, Number(par & 0xffffffffn) >>> 0, tokens, start, blockSize);
  return lanesToBigInt(outHi, outLo);
}

const ROOT_HI = Number(ROOT_BLOCK_HASH >> 32n) >>> 0;
const ROOT_LO = Number(ROOT_BLOCK_HASH & 0xffffffffn) >>> 0;

/**
 * Appends to `out` the hashes of the full blocks of `tokens` not yet hashed
 * (`out.length` blocks are taken as done). Returns `out`.
 */
export function extendBlockHashes(tokens: ArrayLike<number>, blockSize: number, out: bigint[]): bigint[] {
  const full = Math.floor(tokens.length / blockSize);
  if (out.length >= full) return out;
  let ph = ROOT_HI;
  let pl = ROOT_LO;
  if (out.length > 0) {
    const par = out[out.length - 1];
    ph = Number(par >> 32n) >>> 0;
    pl = Number(par & 0xffffffffn) >>> 0;
  }
  for (let i = out.length; i < full; i++) {
    hashLanes(ph, pl, tokens, i * blockSize, blockSize);
    ph = outHi;
    pl = outLo;
    out.push(lanesToBigInt(ph, pl));
  }
  return out;
}

/**
 * The chained block hashes of one token sequence as 32-bit lanes, grown in place: block i's hash
 * is `(lanes[2i] << 32) | lanes[2i+1]` ({@link laneHash}). The engines' hot path keeps hashes in
 * this form (no BigInt allocation per block); BigInts are made only for KV events.
 */
export interface BlockLanes {
  /** hi, lo, hi, lo, ... (2 entries per block; capacity may exceed `count`). */
  lanes: Uint32Array;
  /** Blocks hashed so far. */
  count: number;
}

/** Empty {@link BlockLanes} with room for `blocks` hashes (it grows when needed). */
export function newBlockLanes(blocks = 8): BlockLanes {
  return { lanes: new Uint32Array(2 * Math.max(1, blocks)), count: 0 };
}

/** Hash `i` of `b` as a BigInt (the form KV events carry). */
export function laneHash(b: BlockLanes, i: number): bigint {
  return lanesToBigInt(b.lanes[2 * i], b.lanes[2 * i + 1]);
}

/** {@link BlockLanes} of BigInt hashes (the bigint API of the block manager). */
export function lanesOf(hashes: readonly bigint[]): BlockLanes {
  const b = newBlockLanes(hashes.length);
  for (let i = 0; i < hashes.length; i++) {
    b.lanes[2 * i] = Number(hashes[i] >> 32n) >>> 0;
    b.lanes[2 * i + 1] = Number(hashes[i] & 0xffffffffn) >>> 0;
  }
  b.count = hashes.length;
  return b;
}

/**
 * {@link extendBlockHashes} into lanes: appends the hashes of the full blocks of `tokens` (then
 * `tail`, when given) not yet hashed (`out.count` blocks are taken as done). Same hashes, no
 * BigInt. Returns `out`.
 */
export function extendBlockLanes(tokens: ArrayLike<number>, blockSize: number, out: BlockLanes, tail: ArrayLike<number> = NO_TAIL): BlockLanes {
  const full = Math.floor((tokens.length + tail.length) / blockSize);
  if (out.count >= full) return out;
  if (out.lanes.length < 2 * full) {
    const grown = new Uint32Array(Math.max(2 * full, 2 * out.lanes.length));
    grown.set(out.lanes.subarray(0, 2 * out.count));
    out.lanes = grown;
  }
  const a = out.lanes;
  let ph = ROOT_HI;
  let pl = ROOT_LO;
  if (out.count > 0) {
    ph = a[2 * out.count - 2];
    pl = a[2 * out.count - 1];
  }
  for (let i = out.count; i < full; i++) {
    hashLanes(ph, pl, tokens, i * blockSize, blockSize, tail);
    ph = outHi;
    pl = outLo;
    a[2 * i] = ph;
    a[2 * i + 1] = pl;
  }
  out.count = full;
  return out;
}
