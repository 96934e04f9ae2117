/**
 * Least-squares fit of {@link StepCoefficients} to calibration rows (used by
 * `bench/fit-calibration.ts`, the profiles and the tests). Rows are weighted by 1/ms, i.e. the
 * fit minimises the sum of squared RELATIVE errors, so short and long steps count alike. The
 * occupancy floor `n0` is not linear in the model: {@link fitStepModel} tries a grid of values
 * and keeps the one with the least squared relative error.
 */
import { prefillContextSum, type StepCoefficients } from './step-model.js';

/** One measured row of a calibration file. */
export interface CalibrationRow {
  model: string;
  /**
   * `prefill_cold`, `prefill_on_cached_prefix`, `decode_step_hf_eager` (eager decode),
   * `decode_step` (CUDA-graph decode) or `mixed` (decode batch + one prefill in one step).
   */
  kind: string;
  /** New prompt tokens (prefill and mixed rows). */
  tokens?: number;
  /** Cached prefix under the new tokens. */
  cached?: number;
  /** Batch size (decode and mixed rows). */
  batch?: number;
  /** Context length of each decoding sequence (decode and mixed rows). */
  ctx?: number;
  /** Timed under CUDA graphs (the CUDA-graph file says so per row; absent = eager). */
  graph?: boolean;
  /** The row's case string as the file wrote it, when it had one. */
  case?: string;
  ms: number;
}

/** Feature vector [1, prefillTokens, prefillCtxSum, decodes, decodeCtxSum] of a row. */
export function rowFeatures(r: CalibrationRow, n0 = 0): [number, number, number, number, number] {
  const f: [number, number, number, number, number] = [1, 0, 0, 0, 0];
  if (r.kind === 'decode_step_hf_eager' || r.kind === 'decode_step' || r.kind === 'mixed') {
    const b = r.batch ?? 1;
    f[3] += b;
    f[4] += b * (r.ctx ?? 0);
  }
  if (r.kind === 'prefill_cold' || r.kind === 'prefill_on_cached_prefix' || r.kind === 'mixed') {
    const n = r.tokens ?? 0;
    f[1] += n;
    f[2] += prefillContextSum(r.cached ?? 0, n, n0);
  }
  return f;
}

/** Predicted ms of a row under `k`. */
export function predictRow(k: StepCoefficients, r: CalibrationRow): number {
  const f = rowFeatures(r, k.n0 ?? 0);
  return k.t0 * f[0] + k.a * f[1] + k.b * f[2] + k.c * f[3] + k.d * f[4];
}

/** Relative error (predicted - measured) / measured of a row. */
export function rowError(k: StepCoefficients, r: CalibrationRow): number {
  return (predictRow(k, r) - r.ms) / r.ms;
}

/**
 * Weighted least squares (weights 1/ms) of the 5 linear coefficients over `rows`, `n0` fixed,
 * constrained to non-negative coefficients (a negative per-token or per-sequence cost makes a
 * bigger batch faster): a coefficient that comes out negative is pinned to 0 and the rest refitted.
 * `fixed` pins coefficients to given values (e.g. a memory-bound `d` derived from bandwidth).
 */
export function fitStepCoefficients(rows: readonly CalibrationRow[], n0 = 0, fixed: Partial<Record<'t0' | 'a' | 'b' | 'c' | 'd', number>> = {}): StepCoefficients {
  if (rows.length < 5) throw new RangeError('need at least 5 calibration rows to fit 5 coefficients');
  const names = ['t0', 'a', 'b', 'c', 'd'] as const;
  const pinned = names.map((n) => fixed[n]);
  const active = [0, 1, 2, 3, 4].filter((j) => pinned[j] === undefined);
  for (;;) {
    const x = fitColumns(rows, n0, active, pinned);
    let worst = -1;
    for (let i = 0; i < active.length; i++) if (x[active[i]] < 0 && (worst < 0 || x[active[i]] < x[active[worst]])) worst = i;
    if (worst < 0) {
      const k: StepCoefficients = { t0: x[0], a: x[1], b: x[2], c: x[3], d: x[4] };
      if (n0 > 0) k.n0 = n0;
      return k;
    }
    active.splice(worst, 1);
  }
}

/** Unconstrained weighted least squares over the `active` columns (pinned ones at their value, others 0). */
function fitColumns(rows: readonly CalibrationRow[], n0: number, active: readonly number[], pinned: readonly (number | undefined)[]): number[] {
  // Columns are scaled to unit max so the normal equations stay well conditioned.
  const scale = [0, 0, 0, 0, 0];
  for (const r of rows) {
    const f = rowFeatures(r, n0);
    for (let j = 0; j < 5; j++) scale[j] = Math.max(scale[j], Math.abs(f[j]));
  }
  for (let j = 0; j < 5; j++) if (scale[j] === 0) scale[j] = 1;
  const m = active.length;
  const A = Array.from({ length: m }, () => new Float64Array(m + 1));
  for (const r of rows) {
    const all = rowFeatures(r, n0);
    const f = active.map((j) => all[j] / scale[j] / r.ms);
    let y = r.ms; // what the active columns must explain
    for (let j = 0; j < 5; j++) if (pinned[j] !== undefined) y -= pinned[j]! * all[j];
    y /= r.ms;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) A[i][j] += f[i] * f[j];
      A[i][m] += f[i] * y;
    }
  }
  const x = m > 0 ? solve(A) : [];
  const out = pinned.map((v) => v ?? 0);
  active.forEach((j, i) => (out[j] = x[i] / scale[j]));
  return out;
}

/** Sum of squared relative errors of `k` over `rows`. */
export function sumSquaredRelError(k: StepCoefficients, rows: readonly CalibrationRow[]): number {
  let s = 0;
  for (const r of rows) s += rowError(k, r) ** 2;
  return s;
}

/**
 * Fits the 5 linear coefficients for each `n0` in `n0Grid` (default 0, 16, ..., 1024) and keeps
 * the fit with the least sum of squared relative errors.
 */
export function fitStepModel(rows: readonly CalibrationRow[], n0Grid?: readonly number[]): StepCoefficients {
  const grid = n0Grid ?? Array.from({ length: 65 }, (_, i) => i * 16);
  let best: StepCoefficients | undefined;
  let bestErr = Infinity;
  for (const n0 of grid) {
    const k = fitStepCoefficients(rows, n0);
    const e = sumSquaredRelError(k, rows);
    if (e < bestErr) {
      bestErr = e;
      best = k;
    }
  }
  return best!;
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
