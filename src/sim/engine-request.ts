/**
 * One request inside a {@link SimEngine} (engine.ts): its tokens (the caller's prompt array, held
 * by reference and never written, then the outputs as they are sampled), block hashes as lanes, KV blocks, progress counters and its own deterministic
 * output-token stream (Mulberry32 seeded by FNV-1a of the prompt and the engine seed).
 */
import { newBlockLanes, type BlockLanes } from './block-hash.js';
import type { SimEngineCallbacks } from './engine-types.js';

/** Waiting for admission (or preempted). */
export const WAITING = 0;
/** Admitted: holds blocks, scheduled each step. */
export const RUNNING = 1;
/** Finished, failed or aborted. */
export const DONE = 2;

/** A request's engine state. */
export class Req {
  state = WAITING;
  /** The prompt (the submitter's array: never modified). */
  readonly prompt: readonly number[];
  /** Output tokens so far. */
  readonly out: number[] = [];
  /** Prompt + output tokens. */
  numTokens: number;
  hashes: BlockLanes;
  blocks: number[] = [];
  numComputed = 0;
  numCachedBlocks = 0;
  numOutput = 0;
  cachedTokens = 0;
  everScheduled = false;
  presetCached: number | undefined;
  scheduled = 0;
  lastTokenMs = 0;
  holdBlocks = false;
  rng: number;
  constructor(
    readonly id: string,
    prompt: readonly number[],
    readonly maxTokens: number,
    readonly ignoreEos: boolean,
    readonly cb: SimEngineCallbacks,
    readonly arrivalMs: number,
    seed: number,
    blockSize: number,
  ) {
    this.prompt = prompt;
    this.numTokens = prompt.length;
    this.hashes = newBlockLanes(Math.ceil((prompt.length + Math.min(maxTokens, 256)) / blockSize));
    let h = (0x811c9dc5 ^ seed) >>> 0;
    for (let i = 0; i < prompt.length; i++) h = Math.imul(h ^ prompt[i], 0x01000193) >>> 0;
    this.rng = h;
  }
  /** Mulberry32 step. */
  next(): number {
    this.rng = (this.rng + 0x6d2b79f5) >>> 0;
    let t = this.rng;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
