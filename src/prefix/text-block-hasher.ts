/**
 * Approximate, tokenizer-free block keys of a prompt (llm-d's approximate prefix scheme).
 *
 * The prompt text is cut into blocks of `blockChars` UTF-16 code units (64 = 16 tokens x ~4
 * characters); a trailing partial block is ignored, as an engine only caches full blocks. Each
 * block's key chains the previous one, so a key names the whole prefix up to its block:
 *
 *   seed    = xxhash64(model name, 0)
 *   key[0]  = xxhash64(block 0 code units, seed)
 *   key[i]  = xxhash64(block i code units, key[i-1])
 *
 * At most `maxBlocks` blocks are hashed. Keys are returned as the low 52 bits of the 64-bit hash
 * so that they are exact JavaScript numbers (fast `Map` keys); with millions of entries the chance
 * of a collision stays below 1e-3, and a collision only makes one prediction wrong.
 */
import xxhash from 'xxhash-wasm';

const api = await xxhash();
const LOW_52 = (1n << 52n) - 1n;

/** Hashes prompt text into chained approximate block keys; reuses its buffers between calls. */
export class TextBlockHasher {
  readonly blockChars: number;
  readonly maxBlocks: number;
  #units = new Uint16Array(0);
  #seedCache = new Map<string, bigint>();

  /**
   * @param blockChars characters per block (default 64)
   * @param maxBlocks most blocks hashed from the start of the prompt (default 256)
   */
  constructor(blockChars = 64, maxBlocks = 256) {
    if (!Number.isInteger(blockChars) || blockChars < 1) throw new RangeError('blockChars must be an integer >= 1');
    if (!Number.isInteger(maxBlocks) || maxBlocks < 1) throw new RangeError('maxBlocks must be an integer >= 1');
    this.blockChars = blockChars;
    this.maxBlocks = maxBlocks;
  }

  /** Number of full blocks `text` yields (capped at maxBlocks). */
  blockCount(text: string): number {
    return Math.min(Math.floor(text.length / this.blockChars), this.maxBlocks);
  }

  /** The chained block keys of `text` for `model`, in prompt order. */
  hash(model: string, text: string): Float64Array {
    const n = this.blockCount(text);
    const out = new Float64Array(n);
    if (n === 0) return out;
    const len = n * this.blockChars;
    if (this.#units.length < len) this.#units = new Uint16Array(Math.max(len, this.#units.length * 2));
    const units = this.#units;
    for (let i = 0; i < len; i++) units[i] = text.charCodeAt(i);
    const bytes = new Uint8Array(units.buffer, units.byteOffset, len * 2);
    const step = this.blockChars * 2;
    let key = this.#seed(model);
    for (let b = 0; b < n; b++) {
      key = api.h64Raw(bytes.subarray(b * step, b * step + step), key);
      out[b] = Number(key & LOW_52);
    }
    return out;
  }

  #seed(model: string): bigint {
    let s = this.#seedCache.get(model);
    if (s === undefined) {
      s = api.h64(model, 0n);
      if (this.#seedCache.size > 1024) this.#seedCache.clear();
      this.#seedCache.set(model, s);
    }
    return s;
  }
}
