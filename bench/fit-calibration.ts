/**
 * Fits the simulator's step-time model to GPU calibration rows.
 *
 *   node dist/bench/fit-calibration.js <calibration.json>
 *
 * Prints, per model: the eager-mode least-squares coefficients (paste them into
 * src/sim/profiles.ts `EAGER_FITS`), each row's measured vs predicted ms and error, and the
 * vLLM-adjusted coefficients the profile derives from them.
 */
import { readFileSync } from 'node:fs';
import { fitStepCoefficients, predictRow, type CalibrationRow } from '../src/sim/step-fit.js';
import { toVllmCoefficients, MODEL_SHAPES } from '../src/sim/profiles.js';

const path = process.argv[2];
if (!path) {
  console.error('usage: node dist/bench/fit-calibration.js <calibration.json>');
  process.exit(2);
}
const rows = JSON.parse(readFileSync(path, 'utf8')) as CalibrationRow[];
const models = [...new Set(rows.map((r) => r.model))];
for (const model of models) {
  const mine = rows.filter((r) => r.model === model);
  const k = fitStepCoefficients(mine);
  console.log(`\n## ${model} (${mine.length} rows)`);
  console.log(`eager fit: ${JSON.stringify(k)}`);
  let worst = 0;
  for (const r of mine) {
    const p = predictRow(k, r);
    const err = (p - r.ms) / r.ms;
    worst = Math.max(worst, Math.abs(err));
    const what =
      r.kind === 'decode_step_hf_eager' ? `batch=${r.batch} ctx=${r.ctx}` : `tokens=${r.tokens} cached=${r.cached ?? 0}`;
    console.log(`  ${r.kind.padEnd(26)} ${what.padEnd(24)} measured ${r.ms.toFixed(3).padStart(8)}  fit ${p.toFixed(3).padStart(8)}  ${(err * 100).toFixed(1).padStart(6)} %`);
  }
  console.log(`  worst |error| ${(worst * 100).toFixed(1)} %`);
  const shape = MODEL_SHAPES[model as keyof typeof MODEL_SHAPES];
  if (shape) console.log(`vLLM-adjusted: ${JSON.stringify(toVllmCoefficients(k, shape))}`);
}
