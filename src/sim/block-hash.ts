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


/** The parent hash of a prompt's first block: FNV-1a 64 of the ASCII text `kvroute-sim`. */
export const ROOT_BLOCK_HASH: bigint = (() => {
  hi = FNV_OFFSET_HI;
  lo = FNV_OFFSET_LO;
  for (const ch of 'kvroute-sim') mixByte(ch.charCodeAt(0));
  return (BigInt(hi) << 32n) | BigInt(lo);
})();

/** Result lanes of {@link hashLanes} (module scratch, read right after the call). */
let outHi = 0;
let outLo = 0;

/**
 * FNV-1a 64 of the parent's 8 bytes (big-endian lanes, each little-endian) then the block's
 * token ids (uint32 LE), in local variables: the hot path of prompt hashing (same result as
 * feeding each little-endian uint32 byte by byte to `mixByte`). Writes the hash into `outHi` / `outLo`.
 */
function hashLanes(parHi: number, parLo: number, tokens: ArrayLike<number>, start: number, blockSize: number): void {
  let h = FNV_OFFSET_HI;
  let l = FNV_OFFSET_LO;
  const end = start + blockSize;
  for (let i = start - 2; i < end; i++) {
    const v = i === start - 2 ? parHi : i === start - 1 ? parLo : tokens[i] >>> 0;
    for (let s = 0; s < 32; s += 8) {
      l = (l ^ ((v >>> s) & 0xff)) >>> 0;
      const p = l * 0x1b3;
      h = (Math.imul(h, 0x1b3) + (l << 8) + Math.floor(p / TWO32)) >>> 0;
      l = p >>> 0;
    }
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
  return (BigInt(outHi) << 32n) | BigInt(outLo);
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
    out.push((BigInt(ph) << 32n) | BigInt(pl));
  }
  return out;
}
