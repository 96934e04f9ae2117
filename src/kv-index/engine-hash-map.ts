/**
 * Per-endpoint maps from an engine's block hash (unsigned 64-bit) to kvroute's router key, in
 * one open-addressing table keyed by (slot, hash low 32 bits, hash high 32 bits): no BigInt-keyed
 * `Map`, no allocation per hash once warm.
 *
 *   id -> key[id] (the router key), prev[id] / next[id] (the slot's list, oldest -> newest)
 *
 * Each slot's list gives the order in which its hashes were last stored, so the oldest can be
 * dropped when the slot holds too many (the index bounds it per endpoint).
 */
import { KvrError } from '../core/errors.js';
import { KeyTable } from './key-table.js';
import { NIL, SlotLists } from './slot-lists.js';

const MAX64 = 0xffffffffffffffffn;

// A bigint written to a BigUint64Array is read back as two 32-bit words without allocating
// (`h & 0xffffffffn` and `h >> 32n` would each allocate a BigInt).
const SCRATCH = new BigUint64Array(1);
const WORDS = new Uint32Array(SCRATCH.buffer);
const HI = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 1 : 0; // little-endian: high word second

/**
 * Splits an engine hash (a bigint in [0, 2^64)) into its 32-bit words; returns the low word and
 * leaves the high word for {@link splitHi}.
 */
export function splitHash(h: bigint): number {
  SCRATCH[0] = h;
  return WORDS[1 - HI];
}

/** The high 32-bit word of the hash last given to {@link splitHash}. */
export function splitHi(): number {
  return WORDS[HI];
}

/** Throws KVR_ERR_BAD_REQUEST unless every hash is a bigint in [0, 2^64). */
export function checkEngineHashes(hashes: readonly bigint[]): void {
  for (const h of hashes) {
    if (typeof h !== 'bigint' || h < 0n || h > MAX64) {
      throw new KvrError('KVR_ERR_BAD_REQUEST', `engine block hash ${String(h)} is not an unsigned 64-bit integer (as vLLM's events carry)`);
    }
  }
}

/** Engine hash -> router key per endpoint slot; see the file comment. */
export class EngineHashMap {
  readonly #table = new KeyTable((n) => this.#grow(n));
  #key = new Float64Array(1024);
  readonly #lists = new SlotLists(1024);
  readonly #count: number[] = [];

  /** Hashes remembered over all slots. */
  get size(): number {
    return this.#table.size;
  }

  /** Makes `slot` known (numbered 0, 1, 2, ... by the index). */
  addSlot(slot: number): void {
    this.#lists.resetSlot(slot);
    this.#count[slot] = 0;
  }

  /** Hashes remembered for `slot`. */
  countOf(slot: number): number {
    return this.#count[slot] ?? 0;
  }

  /** The entry id of `slot`'s hash (lo, hi), or -1. */
  find(slot: number, lo: number, hi: number): number {
    return this.#table.find(lo, hi, slot);
  }

  /** The router key of entry `id`. */
  keyOf(id: number): number {
    return this.#key[id];
  }

  /** Records hash (lo, hi) -> key for `slot` as its newest; true when the hash was new. */
  set(slot: number, lo: number, hi: number, key: number): boolean {
    const id = this.#table.upsert(lo, hi, slot);
    const fresh = this.#table.inserted;
    if (fresh) {
      this.#count[slot]++;
    } else if (this.#lists.newest(slot) === id) {
      this.#key[id] = key;
      return false;
    } else this.#lists.unlink(slot, id);
    this.#key[id] = key;
    this.#lists.pushNewest(slot, id);
    return fresh;
  }

  /** The oldest entry of `slot`, or -1. */
  oldestOf(slot: number): number {
    return this.#lists.oldest(slot);
  }

  /** Forgets entry `id` of `slot`. */
  delete(slot: number, id: number): void {
    this.#lists.unlink(slot, id);
    this.#table.remove(id);
    this.#count[slot]--;
  }

  /** Forgets every hash of `slot`. */
  clearSlot(slot: number): void {
    for (let id = this.#lists.oldest(slot); id !== NIL; ) {
      const next = this.#lists.next(id);
      this.#table.remove(id);
      id = next;
    }
    this.addSlot(slot);
  }

  #grow(n: number): void {
    const key = new Float64Array(n);
    key.set(this.#key);
    this.#key = key;
    this.#lists.grow(n);
  }
}
