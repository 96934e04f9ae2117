/**
 * Time of one engine step (one forward pass over a continuous batch):
 *
 * `t = t0 + a*prefillTokens + b*prefillContextSum + c*decodes + d*decodeContextSum`   (ms)
 *
 * where `prefillContextSum` sums, over every prefill token of the step, the context it attends
 * to (its position + 1, cached prefix included), and `decodeContextSum` sums the context lengths
 * of the decoding requests. See docs/simulator.md for the fit.
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
}

/** Sum of context over `n` prefill tokens placed after `start` tokens already computed. */
export function prefillContextSum(start: number, n: number): number {
  return n * start + (n * (n + 1)) / 2;
}

/** Predicts step times from {@link StepCoefficients}. */
export class StepModel {
  readonly coefficients: Readonly<StepCoefficients>;
  #t0: number;
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(coefficients: StepCoefficients) {
    this.coefficients = Object.freeze({ ...coefficients });
    this.#t0 = coefficients.t0;
    this.#a = coefficients.a;
    this.#b = coefficients.b;
    this.#c = coefficients.c;
    this.#d = coefficients.d;
  }

  /** Step time in ms (never below 0). */
  stepMs(prefillTokens: number, prefillCtxSum: number, decodes: number, decodeCtxSum: number): number {
    const t =
      this.#t0 + this.#a * prefillTokens + this.#b * prefillCtxSum + this.#c * decodes + this.#d * decodeCtxSum;
    return t > 0 ? t : 0;
  }
}
