/**
 * KV blocks a prefill replica keeps for a decode replica to pull (vLLM NixlConnector: blocks of a
 * length-capped `do_remote_decode` request stay allocated until the decoder reads them or
 * `VLLM_NIXL_ABORT_REQUEST_TIMEOUT` fires).
 *
 *   pin(id, blocks)  -> held, expiry timer armed on the injected clock
 *   release(id)      -> freed (pulled, or told to free); timer cancelled
 *   expiry           -> freed and counted in `expired` (a leak the decoder never collected)
 *
 * `pinnedBlocks` is what the sim exports as a gauge, so stranded blocks are visible.
 */
import type { Clock, TimerHandle } from '../../core/clock.js';

interface Pin {
  blocks: number[];
  timer: TimerHandle;
}

/** See the file comment. */
export class PinStore {
  #pins = new Map<string, Pin>();
  #blocks = 0;
  /** Pins that timed out. */
  expired = 0;
  /** Pins ever taken. */
  pinned = 0;
  /** Pins released by a pull or a free. */
  released = 0;

  constructor(
    private readonly clock: Clock,
    /** Expiry of a pin (ms). */
    readonly timeoutMs: number,
    private readonly free: (blocks: readonly number[]) => void,
  ) {}

  /** Blocks held now. */
  get pinnedBlocks(): number {
    return this.#blocks;
  }

  /** Pins held now. */
  get size(): number {
    return this.#pins.size;
  }

  /** Whether `id` is pinned. */
  has(id: string): boolean {
    return this.#pins.has(id);
  }

  /** Blocks pinned under `id` (a copy), if any. */
  blocksOf(id: string): number[] | undefined {
    return this.#pins.get(id)?.blocks.slice();
  }

  /** Holds `blocks` (already referenced by the caller) under `id` until released or expired. */
  pin(id: string, blocks: number[]): void {
    this.release(id);
    const timer = this.clock.setTimeout(() => {
      if (this.#drop(id)) this.expired++;
    }, this.timeoutMs);
    this.#pins.set(id, { blocks, timer });
    this.#blocks += blocks.length;
    this.pinned++;
  }

  /** Frees the blocks of `id`; false when it was not pinned (unknown, pulled or expired). */
  release(id: string): boolean {
    if (!this.#drop(id)) return false;
    this.released++;
    return true;
  }

  /** Forgets every pin WITHOUT freeing (the engine was reset and its blocks are gone). */
  clear(): void {
    for (const p of this.#pins.values()) p.timer.cancel();
    this.#pins.clear();
    this.#blocks = 0;
  }

  #drop(id: string): boolean {
    const p = this.#pins.get(id);
    if (p === undefined) return false;
    this.#pins.delete(id);
    p.timer.cancel();
    this.#blocks -= p.blocks.length;
    this.free(p.blocks);
    return true;
  }
}
