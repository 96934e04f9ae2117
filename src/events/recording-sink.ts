/**
 * A {@link KvEventSink} that records what it is given (tests, `kvroute doctor`, debugging), can
 * hold an endpoint's batches at a gate, and lets callers await a condition instead of sleeping.
 */
import { systemClock, type Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import type { KvEventBatch, KvEventSink } from './types.js';

/** One recorded `applyBatch` call. */
export interface RecordedBatch {
  endpointId: string;
  model: string;
  seq: bigint;
  batch: KvEventBatch;
}

/** Records batches and resets. */
export class RecordingSink implements KvEventSink {
  readonly batches: RecordedBatch[] = [];
  /** Endpoint ids in the order they were reset. */
  readonly resets: string[] = [];
  /** Highest number of `applyBatch` calls of one endpoint seen running at once (must stay 1). */
  maxConcurrentPerEndpoint = 0;
  #running = new Map<string, number>();
  #gates = new Map<string, Promise<void>>();
  #waiters: { check: () => boolean; resolve: () => void }[] = [];
  #clock: Clock;

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  async applyBatch(endpointId: string, model: string, seq: bigint, batch: KvEventBatch): Promise<void> {
    const n = (this.#running.get(endpointId) ?? 0) + 1;
    this.#running.set(endpointId, n);
    this.maxConcurrentPerEndpoint = Math.max(this.maxConcurrentPerEndpoint, n);
    try {
      const gate = this.#gates.get(endpointId);
      if (gate) await gate;
      this.batches.push({ endpointId, model, seq, batch });
    } finally {
      this.#running.set(endpointId, (this.#running.get(endpointId) ?? 1) - 1);
    }
    this.#notify();
  }

  async resetEndpoint(endpointId: string): Promise<void> {
    this.resets.push(endpointId);
    this.#notify();
  }

  /** Sequence numbers applied for an endpoint, in order. */
  seqs(endpointId: string): number[] {
    return this.batches.filter((b) => b.endpointId === endpointId).map((b) => Number(b.seq));
  }

  /** Holds the endpoint's batches until the returned function is called. */
  hold(endpointId: string): () => void {
    let release!: () => void;
    this.#gates.set(endpointId, new Promise<void>((r) => (release = r)));
    return () => {
      this.#gates.delete(endpointId);
      release();
    };
  }

  /** Resolves once `check()` holds (re-checked after every call); rejects after `timeoutMs`. */
  waitFor(check: () => boolean, what = 'condition', timeoutMs = 5000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        check,
        resolve: () => {
          timer.cancel();
          resolve();
        },
      };
      const timer = this.#clock.setTimeout(() => {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        reject(new KvrError('KVR_ERR_UPSTREAM_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  #notify(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }
}
