/**
 * Time of one engine step (one forward pass over a continuous batch):
 *
 * `t = t0 + a*prefillTokens + b*prefillContextSum + c*decodes + d*decodeContextSum`   (ms)
 *
 * where `prefillContextSum` sums, over every prefill token of the step, the context it attends
 * to (its position + 1, cached prefix included), and `decodeContextSum` sums the context lengths
 * of the decoding requests. A chunk of fewer than `n0` new tokens on a cached prefix is charged
 * as if it had `n0` rows for its attention over that prefix (one sequence's attention cannot
 * fill the GPU: its latency grows with the prefix, not with the rows). See docs/simulator.md.
 */

/** Coefficients of the step-time model, all in milliseconds. */
export interface StepCoefficients {
  /** Fixed cost per step (ms). */
  t0: number;
  /** Per prefill token (ms). */
  a: number;
  /** Per (prefill token x context token) pair (ms). */
  b: number;
  /** Per decoding request (ms). */
  c: number;
  /** Per context token of a decoding request (ms). */
  d: number;
  /** Minimum query rows charged for a prefill chunk's attention over its cached prefix (default 0). */
  n0?: number;
}

/**
 * Sum of context over `n` prefill tokens placed after `start` tokens already computed; with
 * `n0`, the part over the cached prefix counts at least `n0` rows (`max(n, n0) * start`).
 */
export function prefillContextSum(start: number, n: number, n0 = 0): number {
  return (n > n0 ? n : n0) * start + (n * (n + 1)) / 2;
}

/** Predicts step times from {@link StepCoefficients}. */
export class StepModel {
  readonly coefficients: Readonly<StepCoefficients>;
  #t0: number;
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  /** See {@link StepCoefficients.n0}. */
  readonly n0: number;

  constructor(coefficients: StepCoefficients) {
    this.coefficients = Object.freeze({ ...coefficients });
    this.#t0 = coefficients.t0;
    this.#a = coefficients.a;
    this.#b = coefficients.b;
    this.#c = coefficients.c;
    this.#d = coefficients.d;
    this.n0 = coefficients.n0 ?? 0;
  }

  /** Context sum of a chunk of `n` new tokens after `start` computed ones (this model's `n0`). */
  chunkContextSum(start: number, n: number): number {
    return prefillContextSum(start, n, this.n0);
  }

  /** Step time in ms (never below 0). */
  stepMs(prefillTokens: number, prefillCtxSum: number, decodes: number, decodeCtxSum: number): number {
    const t =
      this.#t0 + this.#a * prefillTokens + this.#b * prefillCtxSum + this.#c * decodes + this.#d * decodeCtxSum;
    return t > 0 ? t : 0;
  }
}
