/**
 * The publishing side of router sync (src/sync/router-sync.ts): an in-memory queue of records
 * sent as ONE `XADD <stream> MAXLEN ~ <maxLen> * r <router> b <JSON batch>` per batch.
 *
 * Algorithm (adaptive batching, `flushMs` 0, the default): a record pushed while no XADD is in
 * flight is sent at the end of the current microtask run (records pushed in the same run share
 * the batch); records pushed while an XADD is in flight wait for it and then go as one batch.
 * At a low rate every record is on the wire at once (the delay to the other replicas is one
 * Redis round trip, no timer); under load batches grow with the rate and at most one XADD per
 * round trip is sent, one at a time, so batches stay in order. `flushMs` > 0 instead sends at
 * most once per `flushMs` (a timer from the injected clock; the former behaviour).
 *
 * Never throws and never blocks the caller: Redis not connected or an XADD failing drops the
 * batch (reported through `onDrop`); the queue is capped (`maxQueued`, then records are dropped).
 */
import type { Redis, Cluster } from 'ioredis';
import type { Clock } from '../core/clock.js';
import type { SyncRecord } from './sync-records.js';

/** Options of {@link SyncPublisher}. */
export interface SyncPublisherOptions {
  client: Redis | Cluster;
  stream: string;
  maxLen: number;
  routerId: string;
  /** 0: adaptive batching; > 0: at most one XADD per this many ms. */
  flushMs: number;
  clock: Clock;
  /** Records queued beyond this are dropped (default 50 000). */
  maxQueued?: number;
  onSent(records: number): void;
  onDrop(records: number, why: string, err?: unknown): void;
}

/** Queues sync records and sends them in batches; see the file comment. */
export class SyncPublisher {
  readonly #o: SyncPublisherOptions;
  #queue: SyncRecord[] = [];
  #timer: { cancel(): void } | undefined;
  #microtaskQueued = false;
  #inFlight: Promise<void> | undefined;
  #stopped = false;
  /** XADD calls that succeeded. */
  batches = 0;

  constructor(o: SyncPublisherOptions) {
    this.#o = o;
  }

  /** Queues `r` and arranges its send. */
  push(r: SyncRecord): void {
    if (this.#stopped) return;
    if (this.#queue.length >= (this.#o.maxQueued ?? 50_000)) {
      this.#o.onDrop(1, 'publish queue full');
      return;
    }
    this.#queue.push(r);
    this.#schedule();
  }

  /** Stops scheduling; with `last`, sends what is queued plus `last` (after any XADD in flight). */
  async stop(last?: SyncRecord): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    if (last === undefined) {
      this.#queue = [];
      return;
    }
    this.#queue.push(last);
    await this.#inFlight;
    await this.#send();
  }

  #schedule(): void {
    if (this.#stopped || this.#inFlight !== undefined || this.#queue.length === 0) return; // sent when the XADD in flight returns
    if (this.#o.flushMs > 0) {
      this.#timer ??= this.#o.clock.setTimeout(() => {
        this.#timer = undefined;
        void this.#send();
      }, this.#o.flushMs);
      return;
    }
    if (this.#microtaskQueued) return;
    this.#microtaskQueued = true;
    queueMicrotask(() => {
      this.#microtaskQueued = false;
      void this.#send();
    });
  }

  /** Sends the queue as one XADD unless one is in flight (then returns that one). */
  #send(): Promise<void> {
    if (this.#inFlight !== undefined || this.#queue.length === 0) return this.#inFlight ?? Promise.resolve();
    const batch = this.#queue;
    this.#queue = [];
    if (this.#o.client.status !== 'ready') {
      this.#o.onDrop(batch.length, 'Redis not connected');
      return Promise.resolve();
    }
    const sending = (async () => {
      try {
        await this.#o.client.xadd(this.#o.stream, 'MAXLEN', '~', this.#o.maxLen, '*', 'r', this.#o.routerId, 'b', JSON.stringify(batch));
        this.batches++;
        this.#o.onSent(batch.length);
      } catch (err) {
        this.#o.onDrop(batch.length, 'XADD failed', err);
      } finally {
        this.#inFlight = undefined;
        this.#schedule();
      }
    })();
    this.#inFlight = sending;
    return sending;
  }
}
