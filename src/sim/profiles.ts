/**
 * Model profiles of the simulator: step-time coefficients for vLLM on one H200, KV bytes per
 * token, default KV capacity and batch limits. docs/simulator.md explains every number.
 *
 * Step times (`STEP_FITS`, printed by `bench/fit-calibration.ts`):
 *  - llama-3.1-8b: weighted least squares (squared relative error) on the CUDA-graph
 *    measurement `h200-llama8b-cudagraph.json` (every row but two eager decode steps), with the
 *    attention occupancy floor `n0` chosen on a grid;
 *  - llama-3.2-1b / 3b: the eager file `h200-transformers-bf16.json`, each row scaled by the
 *    8B's graph/eager ratio on the same case (so both files agree on the 8B), same fit, same n0.
 *
 * KV capacity: `floor((gpu bytes x utilisation - weights - non-KV overhead) / (KV bytes per
 * token x 16))` with an H200's 143,771 MiB and the 5.7 GB overhead implied by vLLM's published
 * one-H100 8B capacity (~420,900 tokens at 0.9). 8B at 0.9: 54,320 blocks.
 */
import { KvrError } from '../core/errors.js';
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
  kvBytesPerToken: number;
  /** Default KV capacity in blocks of 16 tokens (H200 at {@link DEFAULT_GPU_MEMORY_UTILIZATION}). */
  numGpuBlocks: number;
  /** vLLM's default `max_num_seqs` on a GPU of >= 70 GiB that is not an A100 (OpenAI server): 1024. */
  maxNumSeqs: number;
  /** vLLM's default `max_num_batched_tokens` there (OpenAI server): 8192. */
  maxNumBatchedTokens: number;
  /** Default max_model_len. */
  maxModelLen: number;
}

/** H200 memory as CUDA reports it: 143,771 MiB. */
export const H200_GPU_BYTES = 143_771 * 1024 * 1024;
/** vLLM's default `--gpu-memory-utilization`. */
export const DEFAULT_GPU_MEMORY_UTILIZATION = 0.9;
/**
 * Non-KV memory besides the weights (activations, CUDA graphs, non-torch allocations) implied by
 * vLLM's published 8B capacity on one H100 (80 GB at 0.9: ~420,900 tokens = 26,300 blocks).
 */
export const NON_KV_OVERHEAD_BYTES = 5.7e9;

export const MODEL_SHAPES: Record<ProfileId, ModelShape> = {
  'llama-3.2-1b': { params: 1.236e9, weightBytes: 2 * 1.236e9, kvBytesPerToken: 2 * 16 * 8 * 64 * 2 },
  'llama-3.2-3b': { params: 3.213e9, weightBytes: 2 * 3.213e9, kvBytesPerToken: 2 * 28 * 8 * 128 * 2 },
  'llama-3.1-8b': { params: 8.03e9, weightBytes: 2 * 8.03e9, kvBytesPerToken: 2 * 32 * 8 * 128 * 2 },
};

/** Step-time fits printed by `bench/fit-calibration.ts` (see the file comment). */
export const STEP_FITS: Record<ProfileId, StepCoefficients> = {
  'llama-3.2-1b': { t0: 2.7827084669133133, a: 0.0047141107750125755, b: 3.1649810298776187e-07, c: 0, d: 7.605161188057974e-06, n0: 400 },
  'llama-3.2-3b': { t0: 5.981842054568481, a: 0.011755951944780758, b: 6.398445736551202e-07, c: 0.004577378153034992, d: 2.661806415820291e-05, n0: 400 },
  'llama-3.1-8b': { t0: 6.090574250740897, a: 0.02430531458394742, b: 1.0755111585114617e-06, c: 0.02053267620110775, d: 3.0420644752231897e-05, n0: 400 },
};

/**
 * KV blocks of `blockSize` tokens that fit on a GPU of `gpuBytes` at `util` memory utilisation,
 * after the weights and `overheadBytes` of activations / CUDA graphs / non-torch memory.
 */
export function deriveNumGpuBlocks(
  shape: ModelShape,
  gpuBytes = H200_GPU_BYTES,
  util = DEFAULT_GPU_MEMORY_UTILIZATION,
  overheadBytes = NON_KV_OVERHEAD_BYTES,
  blockSize = 16,
): number {
  if (!(util > 0 && util <= 1)) throw new RangeError(`gpu memory utilisation must be in (0, 1], got ${util}`);
  const blocks = Math.floor((gpuBytes * util - shape.weightBytes - overheadBytes) / (shape.kvBytesPerToken * blockSize));
  if (blocks < 1) throw new RangeError(`at utilisation ${util} no KV block fits beside the weights (${(shape.weightBytes / 1e9).toFixed(1)} GB); raise it`);
  return blocks;
}

/** KV blocks of profile `id` on an H200 at utilisation `util` (blocks of `blockSize` tokens). */
export function profileKvBlocks(id: ProfileId, util = DEFAULT_GPU_MEMORY_UTILIZATION, blockSize = 16): number {
  return deriveNumGpuBlocks(MODEL_SHAPES[id], H200_GPU_BYTES, util, NON_KV_OVERHEAD_BYTES, blockSize);
}

function profile(id: ProfileId): SimProfile {
  return {
    id,
    step: STEP_FITS[id],
    kvBytesPerToken: MODEL_SHAPES[id].kvBytesPerToken,
    numGpuBlocks: profileKvBlocks(id),
    maxNumSeqs: 1024,
    maxNumBatchedTokens: 8192,
    maxModelLen: 131072,
  };
}

/** The built-in profiles (one H200 each, vLLM's defaults for it). */
export const PROFILES: Record<ProfileId, SimProfile> = {
  'llama-3.2-1b': profile('llama-3.2-1b'),
  'llama-3.2-3b': profile('llama-3.2-3b'),
  'llama-3.1-8b': profile('llama-3.1-8b'),
};

/** The profile of `id`; throws a RangeError naming the valid ids otherwise. */
export function getProfile(id: string): SimProfile {
  const p = (PROFILES as Record<string, SimProfile | undefined>)[id];
  if (!p) throw new RangeError(`unknown simulator profile '${id}'; use one of ${Object.keys(PROFILES).join(', ')}`);
  return p;
}

/**
 * The KV block count the `sim` flags ask for: `--num-gpu-blocks` / `--kv-blocks` (the same
 * setting; both given must agree) or none (the fleet derives it, from `--gpu-memory-utilization`
 * when given). A block count together with a utilisation is refused: say one.
 */
export function resolveKvBlocks(numGpuBlocks?: number, kvBlocks?: number, gpuMemoryUtilization?: number): number | undefined {
  if (numGpuBlocks !== undefined && kvBlocks !== undefined && numGpuBlocks !== kvBlocks) {
    throw new KvrError('KVR_ERR_USAGE', `--num-gpu-blocks ${numGpuBlocks} and --kv-blocks ${kvBlocks} disagree; give one`);
  }
  const blocks = numGpuBlocks ?? kvBlocks;
  if (blocks !== undefined && gpuMemoryUtilization !== undefined) {
    throw new KvrError('KVR_ERR_USAGE', 'give a KV block count or --gpu-memory-utilization, not both (the utilisation only derives the block count)');
  }
  if (gpuMemoryUtilization !== undefined && !(gpuMemoryUtilization > 0 && gpuMemoryUtilization <= 1)) {
    throw new KvrError('KVR_ERR_USAGE', `--gpu-memory-utilization must be in (0, 1]; got ${gpuMemoryUtilization}`);
  }
  return blocks;
}
