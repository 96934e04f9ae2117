/**
 * kvroute's own block keys: one chained key per full block of token ids, computed the same way
 * from the tokens of a request (on the routing hot path) and from the tokens of a vLLM
 * `BlockStored` event (at ingestion), so the index never depends on vLLM's hash function or its
 * per-process `PYTHONHASHSEED`.
 *
 *   root    = H(fixed seed, "model\0lora")             one per (model, LoRA), cached
 *   key[0]  = H(root,     tokens[0 .. B))
 *   key[i]  = H(key[i-1], tokens[i*B .. (i+1)*B))      a key names the whole prefix up to block i
 *
 * Only full blocks are keyed (an engine caches only full blocks); the block size B is part of
 * the hash input, so chains cut with different block sizes never meet.
 *
 * Representation. A key is the low 53 bits of a 64-bit two-lane hash, held as a JavaScript
 * number (exact below 2^53). Numbers are the cheapest key the runtime has: no allocation when
 * kept in a `Float64Array`, hashed by value in a `Map`, no BigInt arithmetic, and short decimal
 * strings for Redis. bigint keys cost an allocation per key and slow `Map` lookups; strings
 * cost an allocation and a hash per key per request. Why 53 bits suffice: a run only counts
 * consecutive blocks from the first one, so a false match needs a collision at exactly the
 * first block an endpoint lacks; with 10 million distinct stored keys the chance that a
 * 500-block request meets any collision is about 500 x 1e7 / 2^53 = 5.6e-7.
 *
 * The hash. Token ids (unsigned 32-bit) enter two 32-bit lanes in turn, mixed with Math.imul in
 * the manner of MurmurHash3 x86_128 (each lane also absorbs the other after every step), then
 * the lanes are finalized with MurmurHash3's fmix32 and cross-added. It is hand-rolled because
 * it runs in plain JS on the token array as it is, with no byte conversion and no call into
 * WebAssembly per block: 8,000 tokens hash in about 30 us, 4x faster than chaining xxhash-wasm's
 * h64 per block (bench/kv-index-bench.ts). It is not a cryptographic hash: someone able to
 * craft prompts could craft colliding prefixes; the worst outcome is a worse routing choice.
 */
import { chainWordBlocks } from '../core/chained-hash.js';
import { KvrError } from '../core/errors.js';

/** A kvroute block key: an unsigned integer below 2^53 (see the module comment). */
export type RouterKey = number;

/** Default seed of the root key (change it to keep two kvroute deployments' keys apart). */
export const DEFAULT_KEY_SEED = 'kvroute-block-keys-v1';

/** The chained two-lane block hash, shared with the approximate text-block hasher. */
const chain = chainWordBlocks;

/** True when every token is an unsigned 32-bit integer (a token id). */
export function validTokenIds(tokens: ArrayLike<number>, from = 0, to = tokens.length): boolean {
  for (let i = from; i < to; i++) {
    const t = tokens[i];
    if (t >>> 0 !== t) return false;
  }
  return true;
}

/** Checks a block size (an integer 1..4096) or throws a KVR_ERR_BAD_REQUEST. */
export function checkBlockSize(blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 4096) {
    throw new KvrError('KVR_ERR_BAD_REQUEST', `block size must be an integer in 1..4096, got ${String(blockSize)}; use the engine's --block-size (vLLM default 16)`);
  }
}

/**
 * Computes kvroute block keys. Stateless apart from a small cache of root keys; one instance can
 * serve the whole process.
 */
export class BlockKeyer {
  readonly seed: string;
  readonly #roots = new Map<string, RouterKey>();

  /** @param seed seed of every root key ({@link DEFAULT_KEY_SEED}); all routers sharing an index must agree */
  constructor(seed: string = DEFAULT_KEY_SEED) {
    this.seed = seed;
  }

  /** The root key of `model` (and `loraName` when the request or block belongs to an adapter). */
  root(model: string, loraName: string | null = null): RouterKey {
    const id = loraName === null || loraName === '' ? model : `${model}\u0000${loraName}`;
    let r = this.#roots.get(id);
    if (r === undefined) {
      const text = `${this.seed}\u0000${id}`;
      const units = new Array<number>(text.length);
      for (let i = 0; i < text.length; i++) units[i] = text.charCodeAt(i);
      // The text is one block on a zero parent (block size = its length).
      const out = [0];
      r = units.length === 0 ? 0 : chain(0, units, 0, units.length, 1, out, 0);
      if (this.#roots.size >= 4096) this.#roots.clear();
      this.#roots.set(id, r);
    }
    return r;
  }

  /**
   * The keys of every full block of `tokens` (a trailing partial block is ignored), chained on
   * the root of `model` / `loraName`. Throws KVR_ERR_BAD_REQUEST for a bad block size or a token
   * that is not an unsigned 32-bit integer.
   */
  requestKeys(model: string, tokens: ArrayLike<number>, blockSize: number, loraName: string | null = null): Float64Array {
    return this.extendKeys(this.root(model, loraName), tokens, blockSize);
  }

  /**
   * The keys of every full block of `tokens` chained on `parent` (the key of the block just
   * before them): how blocks of a `BlockStored` event whose parent is known are keyed.
   */
  extendKeys(parent: RouterKey, tokens: ArrayLike<number>, blockSize: number): Float64Array {
    checkBlockSize(blockSize);
    const n = Math.floor(tokens.length / blockSize);
    const out = new Float64Array(n);
    if (n === 0) return out;
    if (!validTokenIds(tokens, 0, n * blockSize)) {
      throw new KvrError('KVR_ERR_BAD_REQUEST', 'token ids must be unsigned 32-bit integers');
    }
    chain(parent, tokens, 0, blockSize, n, out, 0);
    return out;
  }
}

/** Encodes a key for Redis (decimal). */
export function keyToString(key: RouterKey): string {
  return String(key);
}

/** Decodes a key written by {@link keyToString}; undefined when it is not one. */
export function keyFromString(s: string): RouterKey | undefined {
  const n = Number(s);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
