/**
 * The calibration rows measured on one NVIDIA H200, embedded so the profiles, the tests and
 * `bench/fit-calibration.ts` can refit offline:
 *  - `H200_CALIBRATION`: `shared/calibration/h200-transformers-bf16.json` (PyTorch eager,
 *    transformers, SDPA, bf16, random weights with the real models' shapes; 1B, 3B, 8B);
 *  - `H200_CUDAGRAPH_8B`: `shared/calibration/h200-llama8b-cudagraph.json` (an 8B-shaped forward
 *    under CUDA graphs where shapes allow; GPU time per step), parsed by {@link parseCudagraphRows}.
 * {@link scaleToGraph} turns the eager rows of 1B and 3B into CUDA-graph-equivalent rows by the
 * ratio the 8B shows between the two files on the same case.
 */
import type { CalibrationRow } from './step-fit.js';

/** A row of the CUDA-graph file as written: `{case, graph, ms}`. */
export interface CudagraphFileRow {
  case: string;
  graph: boolean;
  ms: number;
}

/**
 * Parses the CUDA-graph file's case strings (`prefill_cold N=…`, `prefill_cached C=… N=…`,
 * `decode B=… ctx=…`, `mixed decode B=… ctx=… + prefill_cold N=…`) into rows of `model`.
 * Throws a RangeError naming a case it cannot read.
 */
export function parseCudagraphRows(rows: readonly CudagraphFileRow[], model = 'llama-3.1-8b'): CalibrationRow[] {
  return rows.map((r) => {
    const out: CalibrationRow = { model, kind: '', graph: r.graph, case: r.case, ms: r.ms };
    let m: RegExpExecArray | null;
    if ((m = /decode B=(\d+) ctx=(\d+)/.exec(r.case))) {
      out.batch = Number(m[1]);
      out.ctx = Number(m[2]);
    }
    if ((m = /prefill_cold N=(\d+)/.exec(r.case))) out.tokens = Number(m[1]);
    else if ((m = /prefill_cached C=(\d+) N=(\d+)/.exec(r.case))) {
      out.cached = Number(m[1]);
      out.tokens = Number(m[2]);
    }
    if (r.case.startsWith('mixed ') && out.batch !== undefined && out.tokens !== undefined) out.kind = 'mixed';
    else if (r.case.startsWith('decode ') && out.batch !== undefined) out.kind = 'decode_step';
    else if (r.case.startsWith('prefill_cold ') && out.tokens !== undefined) out.kind = 'prefill_cold';
    else if (r.case.startsWith('prefill_cached ') && out.cached !== undefined) out.kind = 'prefill_on_cached_prefix';
    else throw new RangeError(`calibration case '${r.case}' is not one of prefill_cold / prefill_cached / decode / mixed`);
    return out;
  });
}

/** Rows of the CUDA-graph file a vLLM-like model should fit: all but eager (graph: false) decode steps. */
export function graphFitRows(rows: readonly CalibrationRow[]): CalibrationRow[] {
  return rows.filter((r) => !(r.kind === 'decode_step' && r.graph === false));
}

function sameCase(a: CalibrationRow, b: CalibrationRow): boolean {
  const dec = (k: string): boolean => k === 'decode_step' || k === 'decode_step_hf_eager';
  if (dec(a.kind) && dec(b.kind)) return a.batch === b.batch && a.ctx === b.ctx && b.graph !== false;
  return a.kind === b.kind && (a.tokens ?? 0) === (b.tokens ?? 0) && (a.cached ?? 0) === (b.cached ?? 0);
}

/** One eager row turned into its CUDA-graph equivalent (`ms` scaled), with the factor used. */
export interface ScaledRow extends CalibrationRow {
  /** The eager measurement. */
  eagerMs: number;
  /** graph 8B ms / eager 8B ms of the same case. */
  factor: number;
}

/**
 * Scales the eager rows of `model` by the 8B's CUDA-graph / eager ratio on the same case, so the
 * two files agree where both measured the 8B. Rows whose case the 8B lacks in either file are
 * left out.
 */
export function scaleToGraph(eager: readonly CalibrationRow[], graph8b: readonly CalibrationRow[], model: string): ScaledRow[] {
  const out: ScaledRow[] = [];
  for (const r of eager) {
    if (r.model !== model) continue;
    const e8 = eager.find((x) => x.model === 'llama-3.1-8b' && sameCase(x, r));
    const g8 = graph8b.find((x) => sameCase(r, x));
    if (!e8 || !g8) continue;
    const factor = g8.ms / e8.ms;
    out.push({ ...r, kind: r.kind === 'decode_step_hf_eager' ? 'decode_step' : r.kind, graph: true, eagerMs: r.ms, factor, ms: r.ms * factor });
  }
  return out;
}

/** Every row of the CUDA-graph 8B file, in file order, as written. */
export const H200_CUDAGRAPH_8B_FILE: readonly CudagraphFileRow[] = [
  { case: "prefill_cold N=128", graph: true, ms: 8.277 },
  { case: "prefill_cold N=512", graph: true, ms: 16.567 },
  { case: "prefill_cold N=1024", graph: true, ms: 30.553 },
  { case: "prefill_cold N=2048", graph: true, ms: 61.098 },
  { case: "prefill_cold N=4096", graph: false, ms: 125.564 },
  { case: "prefill_cold N=8192", graph: false, ms: 267.946 },
  { case: "prefill_cached C=1024 N=128", graph: true, ms: 8.901 },
  { case: "prefill_cached C=2048 N=128", graph: true, ms: 9.275 },
  { case: "prefill_cached C=4096 N=128", graph: true, ms: 10.019 },
  { case: "prefill_cached C=4096 N=512", graph: true, ms: 18.851 },
  { case: "prefill_cached C=8000 N=128", graph: true, ms: 11.815 },
  { case: "prefill_cached C=8000 N=1024", graph: true, ms: 39.064 },
  { case: "prefill_cached C=8176 N=16", graph: true, ms: 10.82 },
  { case: "prefill_cached C=16368 N=16", graph: true, ms: 14.153 },
  { case: "prefill_cached C=8192 N=8192", graph: false, ms: 328.501 },
  { case: "prefill_cached C=16384 N=8192", graph: false, ms: 383.563 },
  { case: "prefill_cached C=24576 N=8192", graph: false, ms: 443.673 },
  { case: "decode B=1 ctx=1024", graph: true, ms: 6.369 },
  { case: "decode B=1 ctx=1024", graph: false, ms: 34.825 },
  { case: "decode B=8 ctx=1024", graph: true, ms: 7.266 },
  { case: "decode B=8 ctx=1024", graph: false, ms: 37.633 },
  { case: "decode B=32 ctx=1024", graph: true, ms: 8.427 },
  { case: "decode B=64 ctx=1024", graph: true, ms: 9.719 },
  { case: "decode B=128 ctx=1024", graph: true, ms: 12.37 },
  { case: "decode B=256 ctx=1024", graph: true, ms: 18.539 },
  { case: "decode B=1 ctx=4096", graph: true, ms: 6.496 },
  { case: "decode B=8 ctx=4096", graph: true, ms: 7.947 },
  { case: "decode B=32 ctx=4096", graph: true, ms: 11.282 },
  { case: "decode B=64 ctx=4096", graph: true, ms: 15.39 },
  { case: "decode B=128 ctx=4096", graph: true, ms: 23.643 },
  { case: "mixed decode B=32 ctx=1024 + prefill_cold N=2048", graph: true, ms: 65.806 },
  { case: "mixed decode B=64 ctx=1024 + prefill_cold N=4096", graph: false, ms: 133.79 },
  { case: "mixed decode B=128 ctx=1024 + prefill_cold N=512", graph: true, ms: 25.905 },
];

/** {@link H200_CUDAGRAPH_8B_FILE} parsed. */
export const H200_CUDAGRAPH_8B: readonly CalibrationRow[] = parseCudagraphRows(H200_CUDAGRAPH_8B_FILE);

/** Every row of the H200 calibration file, in file order. */
export const H200_CALIBRATION: readonly CalibrationRow[] = [
  {model: 'llama-3.2-1b', kind: 'prefill_cold', tokens: 128, ms: 7.415},
  {model: 'llama-3.2-1b', kind: 'prefill_cold', tokens: 512, ms: 7.165},
  {model: 'llama-3.2-1b', kind: 'prefill_cold', tokens: 1024, ms: 7.386},
  {model: 'llama-3.2-1b', kind: 'prefill_cold', tokens: 2048, ms: 11.791},
  {model: 'llama-3.2-1b', kind: 'prefill_cold', tokens: 4096, ms: 22.523},
  {model: 'llama-3.2-1b', kind: 'prefill_cold', tokens: 8192, ms: 49.17},
  {model: 'llama-3.2-1b', kind: 'prefill_on_cached_prefix', cached: 1024, tokens: 128, ms: 8.39},
  {model: 'llama-3.2-1b', kind: 'prefill_on_cached_prefix', cached: 2048, tokens: 128, ms: 8.898},
  {model: 'llama-3.2-1b', kind: 'prefill_on_cached_prefix', cached: 4096, tokens: 128, ms: 8.731},
  {model: 'llama-3.2-1b', kind: 'prefill_on_cached_prefix', cached: 4096, tokens: 512, ms: 9.219},
  {model: 'llama-3.2-1b', kind: 'prefill_on_cached_prefix', cached: 8000, tokens: 128, ms: 9.727},
  {model: 'llama-3.2-1b', kind: 'prefill_on_cached_prefix', cached: 8000, tokens: 1024, ms: 14.928},
  {model: 'llama-3.2-1b', kind: 'decode_step_hf_eager', batch: 1, ctx: 1024, ms: 7.573},
  {model: 'llama-3.2-1b', kind: 'decode_step_hf_eager', batch: 8, ctx: 1024, ms: 7.642},
  {model: 'llama-3.2-1b', kind: 'decode_step_hf_eager', batch: 32, ctx: 1024, ms: 7.472},
  {model: 'llama-3.2-1b', kind: 'decode_step_hf_eager', batch: 64, ctx: 1024, ms: 11.499},
  {model: 'llama-3.2-1b', kind: 'decode_step_hf_eager', batch: 32, ctx: 4096, ms: 19.503},
  {model: 'llama-3.2-3b', kind: 'prefill_cold', tokens: 128, ms: 15.438},
  {model: 'llama-3.2-3b', kind: 'prefill_cold', tokens: 512, ms: 14.178},
  {model: 'llama-3.2-3b', kind: 'prefill_cold', tokens: 1024, ms: 16.628},
  {model: 'llama-3.2-3b', kind: 'prefill_cold', tokens: 2048, ms: 29.817},
  {model: 'llama-3.2-3b', kind: 'prefill_cold', tokens: 4096, ms: 59.211},
  {model: 'llama-3.2-3b', kind: 'prefill_cold', tokens: 8192, ms: 127.337},
  {model: 'llama-3.2-3b', kind: 'prefill_on_cached_prefix', cached: 1024, tokens: 128, ms: 15.026},
  {model: 'llama-3.2-3b', kind: 'prefill_on_cached_prefix', cached: 2048, tokens: 128, ms: 15.447},
  {model: 'llama-3.2-3b', kind: 'prefill_on_cached_prefix', cached: 4096, tokens: 128, ms: 15.14},
  {model: 'llama-3.2-3b', kind: 'prefill_on_cached_prefix', cached: 4096, tokens: 512, ms: 18.599},
  {model: 'llama-3.2-3b', kind: 'prefill_on_cached_prefix', cached: 8000, tokens: 128, ms: 21.868},
  {model: 'llama-3.2-3b', kind: 'prefill_on_cached_prefix', cached: 8000, tokens: 1024, ms: 38.336},
  {model: 'llama-3.2-3b', kind: 'decode_step_hf_eager', batch: 1, ctx: 1024, ms: 14.304},
  {model: 'llama-3.2-3b', kind: 'decode_step_hf_eager', batch: 8, ctx: 1024, ms: 14.32},
  {model: 'llama-3.2-3b', kind: 'decode_step_hf_eager', batch: 32, ctx: 1024, ms: 20.273},
  {model: 'llama-3.2-3b', kind: 'decode_step_hf_eager', batch: 64, ctx: 1024, ms: 34.708},
  {model: 'llama-3.2-3b', kind: 'decode_step_hf_eager', batch: 32, ctx: 4096, ms: 62.432},
  {model: 'llama-3.1-8b', kind: 'prefill_cold', tokens: 128, ms: 15.07},
  {model: 'llama-3.1-8b', kind: 'prefill_cold', tokens: 512, ms: 18.328},
  {model: 'llama-3.1-8b', kind: 'prefill_cold', tokens: 1024, ms: 30.629},
  {model: 'llama-3.1-8b', kind: 'prefill_cold', tokens: 2048, ms: 59.382},
  {model: 'llama-3.1-8b', kind: 'prefill_cold', tokens: 4096, ms: 122.049},
  {model: 'llama-3.1-8b', kind: 'prefill_cold', tokens: 8192, ms: 257.377},
  {model: 'llama-3.1-8b', kind: 'prefill_on_cached_prefix', cached: 1024, tokens: 128, ms: 17.866},
  {model: 'llama-3.1-8b', kind: 'prefill_on_cached_prefix', cached: 2048, tokens: 128, ms: 17.319},
  {model: 'llama-3.1-8b', kind: 'prefill_on_cached_prefix', cached: 4096, tokens: 128, ms: 19.685},
  {model: 'llama-3.1-8b', kind: 'prefill_on_cached_prefix', cached: 4096, tokens: 512, ms: 28.244},
  {model: 'llama-3.1-8b', kind: 'prefill_on_cached_prefix', cached: 8000, tokens: 128, ms: 28.362},
  {model: 'llama-3.1-8b', kind: 'prefill_on_cached_prefix', cached: 8000, tokens: 1024, ms: 56.17},
  {model: 'llama-3.1-8b', kind: 'decode_step_hf_eager', batch: 1, ctx: 1024, ms: 14.798},
  {model: 'llama-3.1-8b', kind: 'decode_step_hf_eager', batch: 8, ctx: 1024, ms: 15.498},
  {model: 'llama-3.1-8b', kind: 'decode_step_hf_eager', batch: 32, ctx: 1024, ms: 25.194},
  {model: 'llama-3.1-8b', kind: 'decode_step_hf_eager', batch: 64, ctx: 1024, ms: 41.75},
  {model: 'llama-3.1-8b', kind: 'decode_step_hf_eager', batch: 32, ctx: 4096, ms: 73.128},
];
