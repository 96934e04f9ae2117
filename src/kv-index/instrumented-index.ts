/**
 * A {@link KvBlockIndex} decorator that counts and times every call (llm-d's instrumented index).
 * It exposes plain objects: {@link InstrumentedBlockIndex.operationStats} for counters and latency
 * summaries (count, errors, mean / p50 / p99 / max over the last `window` calls), for the
 * observability code to publish; the wrapped index's own stats pass through {@link stats}.
 */
import { systemClock, type Clock } from '../core/clock.js';
import type { RouterKey } from './block-keys.js';
import type { ApplyOutcome, BlockKey, EngineBatch, KvBlockIndex, PrefixRun } from './kv-block-index.js';
import type { IndexStats } from './types.js';

/** Operations counted by {@link InstrumentedBlockIndex}. */
export type IndexOperation = 'lookup' | 'add' | 'remove' | 'clear' | 'apply' | 'resolve';

/** Counters and latency summary of one operation (milliseconds). */
export interface OperationStats {
  calls: number;
  errors: number;
  /** Summary of the last `window` successful or failed calls. */
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Batches by outcome (see {@link ApplyOutcome}). */
export type ApplyOutcomeCounts = Record<ApplyOutcome, number>;

const OPS: readonly IndexOperation[] = ['lookup', 'add', 'remove', 'clear', 'apply', 'resolve'];

class Timings {
  calls = 0;
  errors = 0;
  readonly #samples: Float64Array;
  #next = 0;
  #size = 0;

  constructor(window: number) {
    this.#samples = new Float64Array(window);
  }

  record(ms: number, ok: boolean): void {
    this.calls++;
    if (!ok) this.errors++;
    this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#samples.length;
    if (this.#size < this.#samples.length) this.#size++;
  }

  summary(): OperationStats {
    const s = this.#samples.slice(0, this.#size).sort();
    const q = (p: number) => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(p * s.length))]);
    let sum = 0;
    for (const v of s) sum += v;
    return { calls: this.calls, errors: this.errors, meanMs: s.length === 0 ? 0 : sum / s.length, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: s.length === 0 ? 0 : s[s.length - 1] };
  }
}

/** Counts and times the calls of an inner index. */
export class InstrumentedBlockIndex implements KvBlockIndex {
  readonly inner: KvBlockIndex;
  readonly #clock: Clock;
  readonly #t: Record<IndexOperation, Timings>;
  readonly #outcomes: ApplyOutcomeCounts = { applied: 0, stale: 0, restarted: 0, rebased: 0, lost: 0 };

  /**
   * @param inner the index to decorate
   * @param opts `window`: calls kept for the latency summaries (default 1,024); `clock`: time source
   */
  constructor(inner: KvBlockIndex, opts: { window?: number; clock?: Clock } = {}) {
    this.inner = inner;
    this.#clock = opts.clock ?? systemClock;
    const w = opts.window ?? 1024;
    this.#t = Object.fromEntries(OPS.map((o) => [o, new Timings(w)])) as Record<IndexOperation, Timings>;
  }

  get backend(): 'memory' | 'redis' {
    return this.inner.backend;
  }

  get shared(): boolean {
    return this.inner.shared;
  }

  lookup(keys: ArrayLike<BlockKey>, endpointIds: readonly string[]): Promise<PrefixRun[]> {
    return this.#time('lookup', () => this.inner.lookup(keys, endpointIds));
  }

  add(endpointId: string, tier: string, keys: ArrayLike<RouterKey>): Promise<void> {
    return this.#time('add', () => this.inner.add(endpointId, tier, keys));
  }

  remove(endpointId: string, tier: string, keys: ArrayLike<RouterKey>): Promise<void> {
    return this.#time('remove', () => this.inner.remove(endpointId, tier, keys));
  }

  clearEndpoint(endpointId: string): Promise<void> {
    return this.#time('clear', () => this.inner.clearEndpoint(endpointId));
  }

  async applyEngineBatch(batch: EngineBatch): Promise<ApplyOutcome> {
    const outcome = await this.#time('apply', () => this.inner.applyEngineBatch(batch));
    this.#outcomes[outcome]++;
    return outcome;
  }

  resolveEngineHashes(endpointId: string, engineHashes: readonly bigint[]): Promise<(RouterKey | undefined)[]> {
    return this.#time('resolve', () => this.inner.resolveEngineHashes(endpointId, engineHashes));
  }

  onIndexLost(listener: () => void): void {
    this.inner.onIndexLost(listener);
  }

  stats(): IndexStats {
    return this.inner.stats();
  }

  /** Counters and latency summaries per operation. */
  operationStats(): Record<IndexOperation, OperationStats> {
    return Object.fromEntries(OPS.map((o) => [o, this.#t[o].summary()])) as Record<IndexOperation, OperationStats>;
  }

  /** Engine batches by outcome. */
  applyOutcomes(): ApplyOutcomeCounts {
    return { ...this.#outcomes };
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async #time<T>(op: IndexOperation, fn: () => Promise<T>): Promise<T> {
    const t0 = this.#clock.now();
    try {
      const v = await fn();
      this.#t[op].record(this.#clock.now() - t0, true);
      return v;
    } catch (err) {
      this.#t[op].record(this.#clock.now() - t0, false);
      throw err;
    }
  }
}
