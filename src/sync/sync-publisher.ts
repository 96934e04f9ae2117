/**
 * The publishing side of router sync (src/sync/router-sync.ts): an in-memory queue of records
 * sent as ONE `XADD <stream> MAXLEN ~ <maxLen> * r <router> b <JSON batch>` per batch.
 *
 * Algorithm (leading-edge batching): at most one XADD is in flight, and two XADDs start at least
 * `flushMs` apart (default 5). A record pushed when neither holds (the last XADD started
 * `flushMs` or more ago and has returned) is sent at the end of the current microtask run
 * (records pushed in the same run share the batch); otherwise it waits until both hold and goes
 * with everything queued meanwhile. At a low rate every record is on the wire at once (the delay
 * to the other replicas is one Redis round trip, no timer); under load there is at most one XADD
 * per `flushMs` (or per round trip when slower), so the CPU per request stays that of batching.
 * `flushMs` 0: no spacing, only one XADD in flight. `leading: false`: every batch waits `flushMs`
 * from its first record (a plain timer; the behaviour before, kept to measure against).
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
  /** Least time between two XADDs' starts, ms (0: only one in flight). */
  flushMs: number;
  /** false: every batch waits `flushMs` from its first record (default true, see the file comment). */
  leading?: boolean;
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
  #lastStart = -Infinity;
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
    if (this.#stopped || this.#inFlight !== undefined || this.#queue.length === 0 || this.#timer !== undefined) return; // sent when the XADD in flight returns / the timer fires
    const wait = this.#o.leading === false ? this.#o.flushMs : this.#lastStart + this.#o.flushMs - this.#o.clock.now();
    if (wait > 0) {
      this.#timer = this.#o.clock.setTimeout(() => {
        this.#timer = undefined;
        void this.#send();
      }, wait);
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
    this.#lastStart = this.#o.clock.now();
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
