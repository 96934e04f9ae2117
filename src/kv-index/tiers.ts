import { KvrError } from '../core/errors.js';

/**
 * Cache tiers ("mediums" in vLLM's events) and their weights in a prefix run.
 *
 * Tier names are normalized to lower case (`GPU` -> `gpu`); a null medium is the GPU. A block
 * held in several tiers of one endpoint counts with the largest weight.
 */

/** Weight of each tier in a run (llm-d's precise scorer: GPU 1.0, CPU 0.8). */
export type TierWeights = Readonly<Record<string, number>>;

/** The default weights. */
export const DEFAULT_TIER_WEIGHTS: TierWeights = Object.freeze({ gpu: 1, cpu: 0.8 });

/** Weight of a tier missing from the weights (e.g. `disk`). */
export const DEFAULT_OTHER_TIER_WEIGHT = 0.5;

const TIER_RE = /^[a-z0-9_.-]{1,32}$/;

/** The normalized tier of an event's `medium`, or undefined when the name is not acceptable. */
export function normalizeTier(medium: string | null | undefined): string | undefined {
  if (medium === null || medium === undefined) return 'gpu';
  const t = medium.toLowerCase();
  return TIER_RE.test(t) ? t : undefined;
}

/** Throws KVR_ERR_BAD_REQUEST unless `tier` is a normalized tier name (lower case, [a-z0-9_.-]{1,32}). */
export function checkTier(tier: string): void {
  if (typeof tier !== 'string' || !TIER_RE.test(tier)) {
    throw new KvrError('KVR_ERR_BAD_REQUEST', `bad cache tier ${JSON.stringify(tier)}: use a lower-case name such as "gpu" or "cpu"`);
  }
}

/** Resolves tier weights, with a fallback for tiers not listed. */
export class TierWeighter {
  readonly #weights: Map<string, number>;
  readonly #other: number;

  constructor(weights: TierWeights = DEFAULT_TIER_WEIGHTS, other = DEFAULT_OTHER_TIER_WEIGHT) {
    this.#weights = new Map(Object.entries(weights).map(([k, v]) => [k.toLowerCase(), v]));
    this.#other = other;
  }

  /** The listed tiers and their weights. */
  entries(): [string, number][] {
    return [...this.#weights.entries()];
  }

  /** Weight of tiers not listed. */
  get other(): number {
    return this.#other;
  }

  /** Weight of one normalized tier. */
  weight(tier: string): number {
    return this.#weights.get(tier) ?? this.#other;
  }

  /** Largest weight among comma-separated tiers (`"gpu,cpu"`), 0 for an empty string. */
  maxOfList(list: string): number {
    let w = this.#weights.get(list);
    if (w !== undefined) return w;
    w = 0;
    for (const t of list.split(',')) if (t !== '') w = Math.max(w, this.weight(t));
    return w;
  }
}

/** Most distinct tiers one {@link TierBits} numbers (bits of a 31-bit mask). */
export const MAX_TIERS = 30;

/** Number of bits set in a tier mask. */
export function popcount(m: number): number {
  let c = 0;
  while (m !== 0) {
    m &= m - 1;
    c++;
  }
  return c;
}

/**
 * Numbers tiers as bits of a mask (first seen, first numbered), so a block held in several tiers
 * of one endpoint is one small integer, and gives a mask's weight (largest of its tiers', cached
 * for the common small masks).
 */
export class TierBits {
  readonly #weighter: TierWeighter;
  readonly #bitOf = new Map<string, number>();
  readonly #weightOfBit: number[] = [];
  readonly #maskWeight: number[] = [];

  constructor(weighter: TierWeighter) {
    this.#weighter = weighter;
  }

  /** The bit of `tier`, numbering it when new; throws KVR_ERR_BAD_REQUEST for a bad or one tier too many. */
  bit(tier: string): number {
    let b = this.#bitOf.get(tier);
    if (b === undefined) {
      checkTier(tier);
      if (this.#bitOf.size >= MAX_TIERS) throw new KvrError('KVR_ERR_BAD_REQUEST', `more than ${MAX_TIERS} cache tiers; tier "${tier}" refused`);
      b = this.#bitOf.size;
      this.#bitOf.set(tier, b);
      this.#weightOfBit[b] = this.#weighter.weight(tier);
      this.#maskWeight.length = 0;
    }
    return b;
  }

  /** The bit of `tier` if it was ever numbered, else -1 (nothing can be held there). */
  knownBit(tier: string): number {
    return this.#bitOf.get(tier) ?? -1;
  }

  /** Largest weight among the tiers of `mask`. */
  weightOfMask(mask: number): number {
    if (mask < 64) {
      const w = this.#maskWeight[mask];
      if (w !== undefined) return w;
    }
    let w = 0;
    for (let b = 0, m = mask; m !== 0; b++, m >>>= 1) if ((m & 1) !== 0) w = Math.max(w, this.#weightOfBit[b]);
    if (mask < 64) this.#maskWeight[mask] = w;
    return w;
  }
}
