/**
 * The router keys of the blocks stored so far in one event batch, by engine hash, for the
 * parents of the batch's later `BlockStored` events; later stores of a hash win.
 *
 * Nearly always an event's parent is the last block of the event just before it, so `get` scans
 * the stored events newest first (bigint equality, no allocation); only when a scan would exceed
 * `SCAN_BUDGET` hashes (a batch of many events whose parents lie elsewhere) are the older events
 * folded into a `Map`, once, so a batch stays linear in its blocks. A BigInt-keyed `Map` written
 * for every block was a fifth of the ingestion time.
 */
import type { RouterKey } from './block-keys.js';

const SCAN_BUDGET = 64;

/** Engine hash -> router key of one batch's stores; see the file comment. */
export class BatchParents {
  readonly #hashes: (readonly bigint[])[] = [];
  readonly #keys: ArrayLike<RouterKey>[] = [];
  /** Events [0, #mapped) are in #map. */
  #map: Map<bigint, RouterKey> | undefined;
  #mapped = 0;

  /** Records a stored event: `keys[i]` is the router key of `hashes[i]`. */
  add(hashes: readonly bigint[], keys: ArrayLike<RouterKey>): void {
    this.#hashes.push(hashes);
    this.#keys.push(keys);
  }

  /** Forgets every store (an AllBlocksCleared in the batch). */
  clear(): void {
    this.#hashes.length = 0;
    this.#keys.length = 0;
    this.#map = undefined;
    this.#mapped = 0;
  }

  /** The key stored last for `hash` in this batch, or undefined. */
  get(hash: bigint): RouterKey | undefined {
    let budget = SCAN_BUDGET;
    for (let e = this.#hashes.length - 1; e >= this.#mapped; e--) {
      const hs = this.#hashes[e];
      for (let i = hs.length - 1; i >= 0; i--) if (hs[i] === hash) return this.#keys[e][i];
      budget -= hs.length;
      if (budget < 0 && e > this.#mapped) {
        this.#fold(e);
        break;
      }
    }
    return this.#map?.get(hash);
  }

  /** Folds events [#mapped, upTo) into the map (in order, so later stores win). */
  #fold(upTo: number): void {
    const map = (this.#map ??= new Map());
    for (let e = this.#mapped; e < upTo; e++) {
      const hs = this.#hashes[e];
      const ks = this.#keys[e];
      for (let i = 0; i < hs.length; i++) map.set(hs[i], ks[i]);
    }
    this.#mapped = upTo;
  }
}
