/**
 * Fits the simulator's step-time model to the GPU calibration files and prints, per profile,
 * the coefficients (paste them into src/sim/profiles.ts `STEP_FITS`) and a markdown table of
 * every row: measured, modelled, error.
 *
 *   node dist/bench/fit-calibration.js [h200-llama8b-cudagraph.json] [h200-transformers-bf16.json]
 *
 * Without arguments the copies embedded in src/sim/calibration-data.ts are used.
 * - 8B: weighted least squares (squared relative error) on the CUDA-graph file, every row but the
 *   two eager (graph: false) decode rows, with the occupancy floor n0 chosen on a grid.
 * - 1B, 3B: the eager file's rows scaled by the 8B's graph/eager ratio on the same case
 *   (`scaleToGraph`), then the same fit with the 8B's n0 and `d` (decode, memory-bound) set to the
 *   8B's d x KV bytes per token relative to the 8B (eager decode rows sit on a launch floor that
 *   hides the per-context cost).
 */
import { readFileSync } from 'node:fs';
import { fitStepCoefficients, fitStepModel, predictRow, type CalibrationRow } from '../src/sim/step-fit.js';
import {
  H200_CALIBRATION,
  H200_CUDAGRAPH_8B,
  graphFitRows,
  parseCudagraphRows,
  scaleToGraph,
  type CudagraphFileRow,
} from '../src/sim/calibration-data.js';
import { MODEL_SHAPES, STEP_FITS, type ProfileId } from '../src/sim/profiles.js';

const graph8b = process.argv[2] ? parseCudagraphRows(JSON.parse(readFileSync(process.argv[2], 'utf8')) as CudagraphFileRow[]) : [...H200_CUDAGRAPH_8B];
const eager = process.argv[3] ? (JSON.parse(readFileSync(process.argv[3], 'utf8')) as CalibrationRow[]) : [...H200_CALIBRATION];

const label = (r: CalibrationRow): string => r.case ?? (r.kind.startsWith('decode') ? `decode B=${r.batch} ctx=${r.ctx}` : `${r.kind} C=${r.cached ?? 0} N=${r.tokens}`);
const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;

const k8 = fitStepModel(graphFitRows(graph8b));
console.log(`## llama-3.1-8b: CUDA-graph file, ${graphFitRows(graph8b).length} of ${graph8b.length} rows fitted`);
console.log(`fit: ${JSON.stringify(k8)}`);
console.log(`embedded STEP_FITS: ${JSON.stringify(STEP_FITS['llama-3.1-8b'])}\n`);
console.log('| case | graph | measured ms | model ms | error |\n|---|---|---|---|---|');
for (const r of graph8b) {
  const p = predictRow(k8, r);
  const fitted = graphFitRows([r]).length === 1;
  console.log(`| ${label(r)} | ${r.graph ? 'yes' : 'no'} | ${r.ms.toFixed(3)} | ${p.toFixed(3)} | ${fitted ? pct((p - r.ms) / r.ms) : 'not fitted (eager decode)'} |`);
}
for (const model of ['llama-3.2-1b', 'llama-3.2-3b']) {
  const rows = scaleToGraph(eager, graph8b, model);
  // Decode reads the KV cache: memory-bound, so d scales with KV bytes per token from the 8B's.
  const dFixed = k8.d * (MODEL_SHAPES[model as ProfileId].kvBytesPerToken / MODEL_SHAPES['llama-3.1-8b'].kvBytesPerToken);
  const k = fitStepCoefficients(rows, k8.n0 ?? 0, { d: dFixed });
  console.log(`\n## ${model}: eager file x 8B graph/eager ratio, ${rows.length} rows`);
  console.log(`fit: ${JSON.stringify(k)}`);
  console.log(`embedded STEP_FITS: ${JSON.stringify(STEP_FITS[model as keyof typeof STEP_FITS])}\n`);
  console.log('| case | eager ms | x 8B ratio | graph-equivalent ms | model ms | error |\n|---|---|---|---|---|---|');
  for (const r of rows) {
    const p = predictRow(k, r);
    console.log(`| ${label(r)} | ${r.eagerMs.toFixed(3)} | ${r.factor.toFixed(3)} | ${r.ms.toFixed(3)} | ${p.toFixed(3)} | ${pct((p - r.ms) / r.ms)} |`);
  }
}
