/**
 * Chained 64-bit block hashes for the simulated prefix cache: FNV-1a 64 computed in two 32-bit
 * lanes (no BigInt arithmetic on the hot path). `hash_i = FNV1a64(hash_{i-1} bytes, token ids of
 * block i as little-endian uint32)`; the root parent is {@link ROOT_BLOCK_HASH}. Deterministic
 * across processes and platforms.
 */

const FNV_OFFSET_HI = 0xcbf29ce4;
const FNV_OFFSET_LO = 0x84222325;
const TWO32 = 4294967296;

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

function mixU32(v: number): void {
  mixByte(v & 0xff);
  mixByte((v >>> 8) & 0xff);
  mixByte((v >>> 16) & 0xff);
  mixByte((v >>> 24) & 0xff);
}

/** The parent hash of a prompt's first block: FNV-1a 64 of the ASCII text `kvroute-sim`. */
export const ROOT_BLOCK_HASH: bigint = (() => {
  hi = FNV_OFFSET_HI;
  lo = FNV_OFFSET_LO;
  for (const ch of 'kvroute-sim') mixByte(ch.charCodeAt(0));
  return (BigInt(hi) << 32n) | BigInt(lo);
})();

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
  hi = FNV_OFFSET_HI;
  lo = FNV_OFFSET_LO;
  mixU32(Number(par >> 32n) >>> 0);
  mixU32(Number(par & 0xffffffffn) >>> 0);
  const end = start + blockSize;
  for (let i = start; i < end; i++) mixU32(tokens[i] >>> 0);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * Appends to `out` the hashes of the full blocks of `tokens` not yet hashed
 * (`out.length` blocks are taken as done). Returns `out`.
 */
export function extendBlockHashes(tokens: ArrayLike<number>, blockSize: number, out: bigint[]): bigint[] {
  const full = Math.floor(tokens.length / blockSize);
  for (let i = out.length; i < full; i++) {
    out.push(chainBlockHash(i === 0 ? null : out[i - 1], tokens, i * blockSize, blockSize));
  }
  return out;
}
