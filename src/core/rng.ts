/**
 * Randomness is injected: every random choice goes through an {@link Rng}, so tests and
 * `bench --virtual` are deterministic for a seed.
 */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
}

/** Mulberry32: small, fast, good enough for tie-breaks and workload generation. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return {
    next() {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/** Math.random as an Rng (production default). */
export const mathRng: Rng = { next: () => Math.random() };

/** Uniform integer in [0, n). */
export function randInt(rng: Rng, n: number): number {
  return Math.floor(rng.next() * n);
}
