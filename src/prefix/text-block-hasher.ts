/**
 * Approximate, tokenizer-free block keys of a prompt (llm-d's approximate prefix scheme).
 *
 * The prompt text is cut into blocks of `blockChars` UTF-16 code units (64 = 16 tokens x ~4
 * characters); a trailing partial block is ignored, as an engine only caches full blocks. Each
 * block's key chains the previous one, so a key names the whole prefix up to its block:
 *
 *   root    = BlockKeyer.root("approx-text\0" + model)
 *   key[0]  = H(root,     code units of block 0)
 *   key[i]  = H(key[i-1], code units of block i)
 *
 * At most `maxBlocks` blocks are hashed. H is kvroute's chained two-lane block hash
 * (src/core/chained-hash.ts), read straight from the string: no copy, no WebAssembly call and
 * no BigInt per block. Keys are exact JavaScript numbers below 2^53 (fast `Map` keys); with
 * millions of entries the chance of a collision stays below 1e-3, and a collision only makes
 * one prediction wrong. The previous scheme (xxhash-wasm's h64 per block on a copied byte
 * buffer, BigInt seeds) cost 2-2.5x more (bench/hash-bench.ts).
 */
import { chainTextBlocks } from '../core/chained-hash.js';
import { BlockKeyer } from '../kv-index/block-keys.js';

const keyer = new BlockKeyer('kvroute-approx-text-v2');

/** Hashes prompt text into chained approximate block keys. Stateless; safe to share. */
export class TextBlockHasher {
  readonly blockChars: number;
  readonly maxBlocks: number;

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
    if (n === 0) return new Float64Array(0);
    return chainTextBlocks(keyer.root(`approx-text\u0000${model}`), text, this.blockChars, n);
  }
}
