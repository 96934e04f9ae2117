/**
 * Model profiles of the simulator: step-time coefficients calibrated on an H200, KV bytes per
 * token and default KV capacity. docs/simulator.md explains every number.
 *
 * Calibration was eager PyTorch; vLLM runs decode under CUDA graphs. {@link toVllmCoefficients}
 * turns an eager fit into vLLM-like coefficients:
 *  - prefill `a`, `b` are kept (compute-bound GEMM / attention, the same kernels either way);
 *  - decode is memory-bound: `d` = KV bytes per token / effective HBM bandwidth, `c` = `a`
 *    (a decode token does the same GEMM work as a prefill token);
 *  - `t0` = weight bytes / effective bandwidth (every step streams the weights) + a fixed
 *    per-step overhead, chosen so that Llama-3.1-8B decode at batch 8, context 1024 takes the
 *    published 6.5 ms on an H200. The eager ~7-15 ms launch floor is dropped.
 */
import type { StepCoefficients } from './step-model.js';

/** The profile ids. */
export type ProfileId = 'llama-3.2-1b' | 'llama-3.2-3b' | 'llama-3.1-8b';

/** Shape facts of a model that the profile derives numbers from. */
export interface ModelShape {
  params: number;
  /** bf16 weights. */
  weightBytes: number;
  /** 2 (K,V) x layers x kv heads x head dim x 2 bytes. */
  kvBytesPerToken: number;
}

/** A simulator profile. */
export interface SimProfile {
  id: ProfileId;
  /** Step-time coefficients for vLLM on an H200 (ms). */
  step: StepCoefficients;
  /** Eager-mode least-squares fit the step coefficients derive from. */
  eagerFit: StepCoefficients;
  kvBytesPerToken: number;
  /** Default KV capacity in blocks of 16 tokens. */
  numGpuBlocks: number;
  /** Default max_model_len. */
  maxModelLen: number;
}

/** Effective HBM bandwidth assumed for decode: 80 % of the H200's 4.8 TB/s. */
export const H200_EFFECTIVE_BW_BYTES_PER_MS = 0.8 * 4.8e12 / 1000;

export const MODEL_SHAPES: Record<ProfileId, ModelShape> = {
  'llama-3.2-1b': { params: 1.236e9, weightBytes: 2 * 1.236e9, kvBytesPerToken: 2 * 16 * 8 * 64 * 2 },
  'llama-3.2-3b': { params: 3.213e9, weightBytes: 2 * 3.213e9, kvBytesPerToken: 2 * 28 * 8 * 128 * 2 },
  'llama-3.1-8b': { params: 8.03e9, weightBytes: 2 * 8.03e9, kvBytesPerToken: 2 * 32 * 8 * 128 * 2 },
};

/**
 * Eager-mode fits printed by `bench/fit-calibration.ts` on the H200 calibration file
 * (relative-error least squares over all 17 rows of each model).
 */
export const EAGER_FITS: Record<ProfileId, StepCoefficients> = {
  'llama-3.2-1b': { t0: 7.290836534376121, a: 0.000917366338613297, b: 9.822933382993182e-7, c: -0.06921243527151831, d: 0.00011006898036432235 },
  'llama-3.2-3b': { t0: 13.404757279895435, a: 0.003985696487425078, b: 0.0000025516620118086653, c: -0.14419107041288515, d: 0.00040925107554105265 },
  'llama-3.1-8b': { t0: 13.946634468161893, a: 0.014962517475898525, b: 0.0000037898956780030156, c: -0.09895486299302646, d: 0.00047567688863842 },
};

/** Published anchor: vLLM Llama-3.1-8B decode step at batch 8 (context ~1024) on an H200. */
const ANCHOR_8B_DECODE_MS = 6.5;

function memoryBoundParts(eager: StepCoefficients, shape: ModelShape): { c: number; d: number; stream: number } {
  return {
    c: eager.a,
    d: shape.kvBytesPerToken / H200_EFFECTIVE_BW_BYTES_PER_MS,
    stream: shape.weightBytes / H200_EFFECTIVE_BW_BYTES_PER_MS,
  };
}

/** Fixed per-step overhead (scheduler, sampler, launch) implied by the 8B anchor. */
export function stepOverheadMs(): number {
  const p = memoryBoundParts(EAGER_FITS['llama-3.1-8b'], MODEL_SHAPES['llama-3.1-8b']);
  return ANCHOR_8B_DECODE_MS - p.stream - 8 * p.c - 8 * 1024 * p.d;
}

/** Converts an eager fit into vLLM-like coefficients (see the file comment). */
export function toVllmCoefficients(eager: StepCoefficients, shape: ModelShape): StepCoefficients {
  const p = memoryBoundParts(eager, shape);
  return { t0: p.stream + stepOverheadMs(), a: eager.a, b: eager.b, c: p.c, d: p.d };
}

/**
 * KV blocks of `blockSize` tokens that fit on a GPU of `gpuBytes` at `util` memory utilisation,
 * after the weights and `overheadBytes` of activations / CUDA graphs / non-torch memory.
 */
export function deriveNumGpuBlocks(
  shape: ModelShape,
  gpuBytes = 141e9,
  util = 0.9,
  overheadBytes = 5.7e9,
  blockSize = 16,
): number {
  return Math.floor((gpuBytes * util - shape.weightBytes - overheadBytes) / (shape.kvBytesPerToken * blockSize));
}

function profile(id: ProfileId, numGpuBlocks: number): SimProfile {
  return {
    id,
    step: toVllmCoefficients(EAGER_FITS[id], MODEL_SHAPES[id]),
    eagerFit: EAGER_FITS[id],
    kvBytesPerToken: MODEL_SHAPES[id].kvBytesPerToken,
    numGpuBlocks,
    maxModelLen: 131072,
  };
}

/**
 * The built-in profiles. 8B uses the published one-H100 (80 GB, 0.9 utilisation) capacity of
 * ~420,900 tokens = 26,300 blocks; 1B and 3B use {@link deriveNumGpuBlocks} for an H200
 * (141 GB, 0.9, overhead 5.7 GB: the overhead implied by the 8B H100 anchor).
 */
export const PROFILES: Record<ProfileId, SimProfile> = {
  'llama-3.2-1b': profile('llama-3.2-1b', deriveNumGpuBlocks(MODEL_SHAPES['llama-3.2-1b'])),
  'llama-3.2-3b': profile('llama-3.2-3b', deriveNumGpuBlocks(MODEL_SHAPES['llama-3.2-3b'])),
  'llama-3.1-8b': profile('llama-3.1-8b', 26_300),
};

/** The profile of `id`; throws a RangeError naming the valid ids otherwise. */
export function getProfile(id: string): SimProfile {
  const p = (PROFILES as Record<string, SimProfile | undefined>)[id];
  if (!p) throw new RangeError(`unknown simulator profile '${id}'; use one of ${Object.keys(PROFILES).join(', ')}`);
  return p;
}
