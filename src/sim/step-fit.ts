/**
 * Least-squares fit of {@link StepCoefficients} to calibration rows (used by
 * `bench/fit-calibration.ts` and the tests). Rows are weighted by 1/ms, i.e. the fit minimises
 * the sum of squared RELATIVE errors, so short and long steps count alike.
 */
import { prefillContextSum, type StepCoefficients } from './step-model.js';

/** One measured row of the calibration file. */
export interface CalibrationRow {
  model: string;
  kind: 'prefill_cold' | 'prefill_on_cached_prefix' | 'decode_step_hf_eager' | string;
  /** New prompt tokens (prefill rows). */
  tokens?: number;
  /** Cached prefix under the new tokens (prefill_on_cached_prefix). */
  cached?: number;
  /** Batch size (decode rows). */
  batch?: number;
  /** Context length of each sequence (decode rows). */
  ctx?: number;
  ms: number;
}

/** Feature vector [1, prefillTokens, prefillCtxSum, decodes, decodeCtxSum] of a row. */
export function rowFeatures(r: CalibrationRow): [number, number, number, number, number] {
  if (r.kind === 'decode_step_hf_eager') {
    const b = r.batch ?? 1;
    return [1, 0, 0, b, b * (r.ctx ?? 0)];
  }
  const n = r.tokens ?? 0;
  return [1, n, prefillContextSum(r.cached ?? 0, n), 0, 0];
}

/** Predicted ms of a row under `k`. */
export function predictRow(k: StepCoefficients, r: CalibrationRow): number {
  const f = rowFeatures(r);
  return k.t0 * f[0] + k.a * f[1] + k.b * f[2] + k.c * f[3] + k.d * f[4];
}

/** Weighted least squares (weights 1/ms) of the 5 coefficients over `rows`. */
export function fitStepCoefficients(rows: readonly CalibrationRow[]): StepCoefficients {
  if (rows.length < 5) throw new RangeError('need at least 5 calibration rows to fit 5 coefficients');
  // Columns are scaled to unit max so the normal equations stay well conditioned.
  const scale = [0, 0, 0, 0, 0];
  for (const r of rows) {
    const f = rowFeatures(r);
    for (let j = 0; j < 5; j++) scale[j] = Math.max(scale[j], Math.abs(f[j]));
  }
  for (let j = 0; j < 5; j++) if (scale[j] === 0) scale[j] = 1;
  const A = Array.from({ length: 5 }, () => new Float64Array(6));
  for (const r of rows) {
    const f = rowFeatures(r).map((v, j) => v / scale[j] / r.ms);
    const y = 1; // r.ms / r.ms
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 5; j++) A[i][j] += f[i] * f[j];
      A[i][5] += f[i] * y;
    }
  }
  const x = solve(A);
  return { t0: x[0] / scale[0], a: x[1] / scale[1], b: x[2] / scale[2], c: x[3] / scale[3], d: x[4] / scale[4] };
}

/** Gaussian elimination with partial pivoting on an n x (n+1) augmented matrix. */
function solve(A: Float64Array[]): number[] {
  const n = A.length;
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(A[r][col]) > Math.abs(A[piv][col])) piv = r;
    if (Math.abs(A[piv][col]) < 1e-300) throw new RangeError('calibration rows do not determine the coefficients');
    [A[col], A[piv]] = [A[piv], A[col]];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const m = A[r][col] / A[col][col];
      for (let c = col; c <= n; c++) A[r][c] -= m * A[col][c];
    }
  }
  return A.map((row, i) => row[n] / row[i]);
}
