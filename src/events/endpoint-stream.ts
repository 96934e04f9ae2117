/**
 * The ordered event stream of one endpoint: a bounded queue drained by one async pump, so the
 * sink sees the endpoint's batches one at a time in sequence order while other endpoints run
 * independently.
 *
 * ```
 *   live message seq s, last applied L, previous live P
 *     s <= P            pod restarted (a new process counts from 0): reset, L = -1
 *     s <= L            duplicate of a replayed batch: drop
 *     s == L + 1        apply
 *     s >  L + 1        gap (or late join when L = -1): replay L+1.. from the pod's ROUTER,
 *                       apply in order; live messages wait in the queue meanwhile.
 *                       Replay impossible / failed / buffer too short: reset, go on from s.
 *   queue full          the message is dropped: the next one shows a gap and is replayed
 * ```
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { decodeEventBatch } from './codec.js';
import { fetchReplay, type ReplayedBatch } from './replay-client.js';
import type { EndpointEventStats, KvEventSink } from './types.js';
import { parseTopic } from './wire.js';

/** What one {@link EndpointStream} needs. */
export interface EndpointStreamOptions {
  id: string;
  sink: KvEventSink;
  clock: Clock;
  logger: Logger;
  /** The pod's replay ROUTER address; undefined = no replay. */
  replayEndpoint?: string;
  /** Model passed to the sink when the topic does not name one. */
  model?: string;
  /** Largest number of messages waiting (default 10,000). */
  maxQueue?: number;
  replayTimeoutMs?: number;
  /** Replay transport (tests and benchmarks may swap it). */
  fetch?: typeof fetchReplay;
}

type Item = { kind: 'live'; seq: bigint; topic: string; payload: Uint8Array } | { kind: 'resync' };

/** One endpoint's sequence tracking, queue and stats. */
export class EndpointStream {
  readonly id: string;
  readonly stats: EndpointEventStats;
  #o: EndpointStreamOptions;
  #fetch: typeof fetchReplay;
  #maxQueue: number;
  #queue: Item[] = [];
  #qHead = 0;
  #pumping: Promise<void> | undefined;
  #closed = false;
  #last = -1n;
  #prevLive = -1n;
  #overflowing = false;
  #model: string;
  #abort = new AbortController();

  constructor(o: EndpointStreamOptions) {
    this.id = o.id;
    this.#o = o;
    this.#fetch = o.fetch ?? fetchReplay;
    this.#maxQueue = o.maxQueue ?? 10_000;
    this.#model = o.model ?? '';
    this.stats = {
      batches: 0,
      events: 0,
      malformedMessages: 0,
      malformedEvents: 0,
      gaps: 0,
      replays: 0,
      replayFailures: 0,
      resets: 0,
      lastSeq: -1,
      lastEventAt: 0,
      topic: '',
      connected: false,
    };
  }

  /** Messages waiting. */
  get queued(): number {
    return this.#queue.length - this.#qHead;
  }

  /** Takes one live message (frames as received); malformed framing is counted and dropped. */
  offer(frames: readonly Uint8Array[]): void {
    if (this.#closed) return;
    const topic = frames.length > 0 ? Buffer.from(frames[0]).toString('utf8') : '';
    if (frames.length !== 3 || frames[1].length !== 8) {
      this.stats.malformedMessages++;
      return;
    }
    const seq = Buffer.from(frames[1]).readBigUInt64BE(0);
    if (this.queued >= this.#maxQueue) {
      if (!this.#overflowing) this.#o.logger.warn({ endpoint: this.id, max: this.#maxQueue }, 'KV-event queue full; dropping messages (recovered by replay)');
      this.#overflowing = true;
      return;
    }
    this.#overflowing = false;
    this.#push({ kind: 'live', seq, topic, payload: frames[2] });
  }

  /** Re-learns everything: replay from 0 after the sink lost its state (e.g. Redis restarted). */
  resync(): void {
    if (!this.#closed) this.#push({ kind: 'resync' });
  }

  /** Resolves when the queue is empty and nothing is in flight. */
  async idle(): Promise<void> {
    while (this.#pumping) await this.#pumping;
  }

  /** Stops taking messages, waits for the batch in flight; the queue is dropped. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    this.#queue = [];
    this.#qHead = 0;
    this.stats.connected = false;
    await this.idle();
  }

  #push(item: Item): void {
    this.#queue.push(item);
    if (!this.#pumping) this.#pumping = this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      while (!this.#closed && this.#qHead < this.#queue.length) {
        const item = this.#queue[this.#qHead];
        this.#queue[this.#qHead++] = undefined as unknown as Item;
        if (this.#qHead > 1024 && this.#qHead * 2 > this.#queue.length) {
          this.#queue = this.#queue.slice(this.#qHead);
          this.#qHead = 0;
        }
        try {
          if (item.kind === 'live') await this.#live(item.seq, item.topic, item.payload);
          else await this.#resync();
        } catch (e) {
          this.#o.logger.warn({ endpoint: this.id, err: (e as Error).message }, 'KV-event processing failed');
        }
      }
    } finally {
      this.#pumping = undefined;
    }
  }

  async #live(seq: bigint, topic: string, payload: Uint8Array): Promise<void> {
    this.stats.topic = topic;
    if (this.#prevLive >= 0n && seq <= this.#prevLive) {
      this.#o.logger.info({ endpoint: this.id, seq: Number(seq), previous: Number(this.#prevLive) }, 'KV-event seq went backwards: endpoint restarted');
      await this.#reset();
      this.#last = -1n;
    }
    this.#prevLive = seq;
    if (seq <= this.#last) return;
    if (seq > this.#last + 1n) {
      if (this.#last >= 0n) this.stats.gaps++;
      await this.#recover(seq);
      if (this.#closed || seq <= this.#last) return;
    }
    await this.#apply(seq, topic, payload);
  }

  /** Fills [last+1, seq) from the replay socket; on failure resets and continues from `seq`. */
  async #recover(seq: bigint): Promise<void> {
    const from = this.#last + 1n;
    const got = await this.#replay(from);
    if (this.#closed) return;
    let failed = got === undefined;
    if (got !== undefined) {
      if (got.length > 0 && got[0].seq > from) {
        // The buffer no longer reaches back to `from`: what it still holds is a fresh start.
        failed = true;
        this.stats.replayFailures++;
        await this.#reset();
        this.#last = got[0].seq - 1n;
      }
      await this.#applyReplayed(got);
      if (this.#last + 1n >= seq) {
        if (!failed) this.stats.replays++;
        return;
      }
      // The replay stopped short of the live message: batches are missing for good.
      if (!failed) this.stats.replayFailures++;
    }
    await this.#reset();
    this.#last = seq - 1n;
  }

  /** The replayed batches, or undefined when replay is impossible or failed (counted). */
  async #replay(from: bigint): Promise<ReplayedBatch[] | undefined> {
    const ep = this.#o.replayEndpoint;
    if (!ep) {
      this.stats.replayFailures++;
      return undefined;
    }
    try {
      return await this.#fetch(ep, from, { clock: this.#o.clock, timeoutMs: this.#o.replayTimeoutMs, signal: this.#abort.signal });
    } catch (e) {
      if (this.#closed) return undefined;
      this.stats.replayFailures++;
      this.#o.logger.warn({ endpoint: this.id, from: Number(from), err: (e as Error).message }, 'KV-event replay failed');
      return undefined;
    }
  }

  async #resync(): Promise<void> {
    if (!this.#o.replayEndpoint) {
      this.stats.replayFailures++;
      return;
    }
    const got = await this.#replay(0n);
    if (!got || this.#closed) return;
    this.#last = -1n;
    if (got.length > 0 && got[0].seq > 0n) {
      // Older batches are gone from the pod's buffer: start clean from what it still has.
      this.stats.replayFailures++;
      await this.#reset();
      this.#last = got[0].seq - 1n;
    } else if (got.length > 0) this.stats.replays++;
    await this.#applyReplayed(got);
  }

  async #applyReplayed(got: readonly ReplayedBatch[]): Promise<void> {
    for (const b of got) {
      if (this.#closed) return;
      if (b.seq <= this.#last) continue;
      if (b.seq !== this.#last + 1n) return;
      await this.#apply(b.seq, this.stats.topic, b.payload);
    }
  }

  async #apply(seq: bigint, topic: string, payload: Uint8Array): Promise<void> {
    this.#last = seq;
    this.stats.lastSeq = Number(seq);
    let decoded;
    try {
      decoded = decodeEventBatch(payload);
    } catch (e) {
      this.stats.malformedMessages++;
      this.#o.logger.warn({ endpoint: this.id, seq: Number(seq), err: (e as Error).message }, 'malformed KV-event message skipped');
      return;
    }
    this.stats.malformedEvents += decoded.malformedEvents;
    const model = parseTopic(topic)?.model ?? this.#model;
    try {
      await this.#o.sink.applyBatch(this.id, model, seq, decoded.batch);
    } catch (e) {
      this.#o.logger.warn({ endpoint: this.id, seq: Number(seq), err: (e as Error).message }, 'KV-event sink failed to apply a batch');
    }
    this.stats.batches++;
    this.stats.events += decoded.batch.events.length;
    this.stats.lastEventAt = this.#o.clock.now();
  }

  async #reset(): Promise<void> {
    this.stats.resets++;
    try {
      await this.#o.sink.resetEndpoint(this.id);
    } catch (e) {
      this.#o.logger.warn({ endpoint: this.id, err: (e as Error).message }, 'KV-event sink failed to reset an endpoint');
    }
  }
}
