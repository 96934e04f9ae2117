/**
 * The ordered event stream of one endpoint: a byte-bounded queue drained by one async pump, so
 * the sink sees the endpoint's batches one at a time in sequence order while other endpoints run
 * independently, and the pump yields to I/O between slices so no message can stall the router.
 *
 * ```
 *   live message seq s, last applied L, previous live P
 *     s <= P, or s <= L with a payload unlike the batch applied as s:
 *                       seq went back. Wiped only when CONFIRMED as a restart (a forged or stray
 *                       message must not wipe the endpoint): the process start time changed, or
 *                       the replay socket no longer holds batch L as we applied it, or (with
 *                       neither source) `restartConfirmMessages` lower-numbered messages came in
 *                       a row. Confirmed: reset, L = -1. Else: dropped, counted.
 *     s <= L            duplicate of a replayed batch: drop
 *     s == L + 1        apply (in slices of `sliceBlocks` blocks, yielding to I/O in between)
 *     s >  L + 1        gap (or late join when L = -1): replay L+1.. from the pod's ROUTER,
 *                       apply in order; live messages wait in the queue meanwhile.
 *                       Replay impossible / failed / buffer too short: reset, go on from s.
 *                       The replay (asked from L) shows batch L as applied and ends before s:
 *                       the pod never sent s (another publisher on its topic): s dropped,
 *                       counted; later s' >= s dropped without replay for `lowSeqRecheckMs`.
 *   arrived before a replay that applied through s: a duplicate, dropped.
 *   queue bytes full    the message is dropped: the next one shows a gap and is replayed
 *   message too big     dropped and counted (its seq counts as consumed)
 *   sink fails          the batch is NOT applied (L stays before it); live messages are dropped
 *                       for a growing back-off, then the gap is replayed. No replay socket: the
 *                       endpoint is reset so the index rebases on the next batch.
 *   check (periodic)    replay from L: batch L gone or different = the pod restarted silently
 *                       (reset, replay from 0); later batches = missed messages (applied).
 * ```
 */
import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { TimerHandle } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { sliceBatch } from './batch-slicer.js';
import { AppliedHistory } from './applied-history.js';
import { decodeEventBatch } from './codec.js';
import { LoopBudget } from './loop-budget.js';
import { PublisherStart } from './publisher-start.js';
import { ForeignWindow } from './foreign-window.js';
import { fetchReplay, type ReplayedBatch } from './replay-client.js';
import type { EndpointEventStats } from './types.js';
import { parseTopic } from './wire.js';
import { newStreamStats, resolveLimits, type EndpointStreamOptions, type StreamLimits } from './stream-options.js';

export { STREAM_DEFAULTS, type EndpointStreamOptions, type StreamLimits } from './stream-options.js';

type Item =
  | { kind: 'live'; seq: bigint; topic: string; payload: Uint8Array; size: number; rx: number }
  | { kind: 'resync' }
  | { kind: 'check' }
  | { kind: 'retry' }
  | { kind: 'restart'; startTime: number };

const ITEM_OVERHEAD = 64;
const MAX_BACKOFF_MS = 5_000;

/** One endpoint's sequence tracking, queue and stats. */
export class EndpointStream {
  readonly id: string;
  readonly stats: Required<EndpointEventStats>;
  #o: EndpointStreamOptions;
  #l: Required<StreamLimits>;
  #fetch: typeof fetchReplay;
  #queue: Item[] = [];
  #qHead = 0;
  #pumping: Promise<void> | undefined;
  #closed = false;
  #last = -1n;
  #prevLive = -1n;
  #overflowing = false;
  #model: string;
  #abort = new AbortController();
  #budget: number;
  #lowStreak = 0;
  #lowCheckedAt = -Infinity;
  readonly #foreign: ForeignWindow;
  /** Live messages received so far; the count when the last replay was asked for; what the last applied replay covers. */
  #rx = 0;
  #replayRx = 0;
  #coveredRx = 0;
  #coveredSeq = -1n;
  /** The publisher process followed (one reset per restart, see publisher-start.ts). */
  readonly #start: PublisherStart;
  #sinkDownUntil = -Infinity;
  #backoff: number;
  #retryTimer: TimerHandle | undefined;
  readonly #history = new AppliedHistory();
  readonly #loop: LoopBudget | undefined;

  constructor(o: EndpointStreamOptions) {
    this.id = o.id;
    this.#o = o;
    this.#l = resolveLimits(o);
    this.#foreign = new ForeignWindow(o.clock, this.#l.lowSeqRecheckMs);
    this.#fetch = o.fetch ?? fetchReplay;
    this.#loop = o.loopShare !== undefined ? new LoopBudget(o.clock, o.loopShare) : undefined;
    this.#start = new PublisherStart(o.clock);
    this.#model = o.model ?? '';
    this.#budget = this.#l.sliceBlocks;
    this.#backoff = this.#l.sinkRetryMs;
    this.stats = newStreamStats();
  }

  /** Messages waiting. */
  get queued(): number {
    return this.#queue.length - this.#qHead;
  }

  /** Takes one live message (frames as received); malformed framing is counted and dropped. */
  offer(frames: readonly Uint8Array[]): void {
    if (this.#closed) return;
    if (frames.length !== 3 || frames[1].length !== 8) {
      this.stats.malformedMessages++;
      return;
    }
    const topic = Buffer.from(frames[0]).toString('utf8');
    const seq = Buffer.from(frames[1]).readBigUInt64BE(0);
    const oversized = frames[2].length > this.#l.maxMessageBytes;
    const payload = oversized ? new Uint8Array(0) : frames[2];
    const bytes = payload.length + ITEM_OVERHEAD;
    if (this.queued >= this.#l.maxQueue || this.stats.queuedBytes + bytes > this.#l.maxQueueBytes) {
      this.stats.queueDrops++;
      if (!this.#overflowing) this.#o.logger.warn({ endpoint: this.id, maxQueue: this.#l.maxQueue, maxQueueBytes: this.#l.maxQueueBytes }, 'KV-event queue full; dropping messages (recovered by replay)');
      this.#overflowing = true;
      return;
    }
    this.#overflowing = false;
    this.#push({ kind: 'live', seq, topic, payload, size: frames[2].length, rx: ++this.#rx });
  }

  /** Re-learns everything: replay from 0 after the sink lost its state (e.g. Redis restarted). */
  resync(): void {
    if (!this.#closed) this.#push({ kind: 'resync' });
  }

  /** Periodic check: replay from the last applied batch to find missed batches or a silent restart. */
  check(): void {
    if (!this.#closed && this.#o.replayEndpoint) this.#push({ kind: 'check' });
  }

  /** The restart signal saw a new process start time: reset (unless already handled) and re-learn. */
  restarted(startTime: number): void {
    if (!this.#closed) this.#push({ kind: 'restart', startTime });
  }

  /** Resolves when the queue is empty and nothing is in flight. */
  async idle(): Promise<void> {
    while (this.#pumping) await this.#pumping;
  }

  /** Stops taking messages, waits for the batch in flight; the queue is dropped. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#retryTimer?.cancel();
    this.#abort.abort();
    this.#queue = [];
    this.#qHead = 0;
    this.stats.queuedBytes = 0;
    this.stats.connected = false;
    await this.idle();
  }

  #push(item: Item): void {
    this.#queue.push(item);
    if (item.kind === 'live') this.stats.queuedBytes += item.payload.length + ITEM_OVERHEAD;
    if (!this.#pumping) this.#pumping = this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      while (!this.#closed && this.#qHead < this.#queue.length) {
        if (this.#budget <= 0 || this.#inDebt()) {
          await this.#yield();
          if (this.#closed) break;
        }
        const item = this.#queue[this.#qHead];
        this.#queue[this.#qHead++] = undefined as unknown as Item;
        if (this.#qHead > 1024 && this.#qHead * 2 > this.#queue.length) {
          this.#queue = this.#queue.slice(this.#qHead);
          this.#qHead = 0;
        }
        this.#budget -= 16;
        try {
          if (item.kind === 'live') {
            this.stats.queuedBytes -= item.payload.length + ITEM_OVERHEAD;
            await this.#live(item.seq, item.topic, item.payload, item.size, item.rx);
          } else if (item.kind === 'resync') await this.#resync();
          else if (item.kind === 'check') await this.#check();
          else if (item.kind === 'retry') await this.#retry();
          else await this.#signalled(item.startTime);
        } catch (e) {
          this.#o.logger.warn({ endpoint: this.id, err: (e as Error).message }, 'KV-event processing failed');
        }
      }
    } finally {
      this.#pumping = undefined;
    }
  }

  /**
   * `size`: the message's payload bytes as received (`payload` is empty when that is over the
   * cap); `rx`: its place in the order of arrival.
   */
  async #live(seq: bigint, topic: string, payload: Uint8Array, size: number, rx: number): Promise<void> {
    // Received before a replay that was applied through its number: the replay held it (a
    // publisher buffers each batch as it sends it), or it was never the pod's. A duplicate.
    if (rx <= this.#coveredRx && seq <= this.#coveredSeq) return;
    const oversized = size > this.#l.maxMessageBytes;
    this.stats.topic = topic;
    if (seq > this.#last + 1n && this.#foreign.covers(seq)) {
      this.stats.foreignMessages++;
      return;
    }
    const back = (this.#prevLive >= 0n && seq <= this.#prevLive) || (seq <= this.#last && !oversized && this.#history.differs(seq, payload));
    if (back) {
      if (!(await this.#confirmRestart())) {
        this.stats.unconfirmedSeqResets++;
        return;
      }
      this.#o.logger.info({ endpoint: this.id, seq: Number(seq), previous: Number(this.#prevLive) }, 'KV-event seq went backwards and the restart is confirmed: endpoint reset');
      await this.#restart();
    } else this.#lowStreak = 0;
    // `#prevLive` moves only to a seq known to be the pod's (in order, a duplicate of an applied
    // batch, or confirmed by replay): one from another publisher on the topic must not make the
    // pod's own next messages look like a restart.
    if (this.#o.clock.now() < this.#sinkDownUntil) return; // the sink is failing: recovered by replay later
    if (seq <= this.#last) {
      this.#prevLive = seq;
      return;
    }
    if (seq > this.#last + 1n) {
      if (this.#last >= 0n) this.stats.gaps++;
      if ((await this.#recover(seq)) !== 'applied' || this.#closed) return;
      this.#prevLive = seq;
      if (seq <= this.#last) return;
    }
    this.#prevLive = seq;
    await this.#apply(seq, topic, payload, size);
  }

  /** Whether a lower sequence number really is a new publisher process (see the module comment). */
  async #confirmRestart(): Promise<boolean> {
    if (this.#last < 0n) return true; // nothing held: nothing to protect
    const sig = this.#o.restartSignal?.processStartTime(this.id);
    if (sig !== undefined && this.#start.known !== undefined && sig !== this.#start.known) return true;
    if (this.#o.replayEndpoint) {
      const now = this.#o.clock.now();
      if (now - this.#lowCheckedAt < this.#l.lowSeqRecheckMs) return false;
      const got = await this.#replay(this.#last);
      if (got !== undefined) {
        if (this.#sameProcess(got)) {
          this.#lowCheckedAt = now;
          return false;
        }
        return true;
      }
    }
    return ++this.#lowStreak >= this.#l.restartConfirmMessages;
  }

  /** Whether a replay from `last` shows the batch we applied last, byte for byte. */
  #sameProcess(got: readonly ReplayedBatch[]): boolean {
    return this.#history.replayHoldsLast(got, this.#last);
  }

  async #restart(): Promise<void> {
    this.stats.restarts++;
    await this.#reset();
    this.#last = -1n;
    this.#history.clear();
    this.#prevLive = -1n;
    this.#lowStreak = 0;
    this.#lowCheckedAt = -Infinity;
    this.#foreign.reset();
    this.#coveredSeq = -1n;
    this.#start.resetFoundByStream(this.#o.restartSignal?.processStartTime(this.id));
  }

  async #signalled(startTime: number): Promise<void> {
    // 'adopted': the replay or the sequence numbers found this restart first (same new process).
    if (this.#start.signalled(startTime) !== 'restart') return;
    this.#o.logger.info({ endpoint: this.id, startTime }, 'endpoint process restarted (process start time changed): endpoint reset');
    await this.#restart();
    this.#start.set(startTime);
    if (this.#o.replayEndpoint) await this.#resync();
  }

  async #check(): Promise<void> {
    if (this.#last < 0n || this.#o.clock.now() < this.#sinkDownUntil) return;
    const got = await this.#replay(this.#last);
    if (got === undefined || this.#closed) return;
    this.stats.resyncChecks++;
    if (this.#sameProcess(got)) {
      const before = this.#last;
      await this.#applyReplayed(got);
      if (this.#last > before) this.stats.replays++;
      return;
    }
    this.#o.logger.info({ endpoint: this.id, last: Number(this.#last) }, 'KV-event replay no longer holds the last applied batch: the publisher restarted; endpoint reset');
    await this.#restart();
    await this.#resync();
  }

  /** After a sink failure: replay from the first batch not applied. */
  async #retry(): Promise<void> {
    this.#retryTimer = undefined;
    const from = this.#last + 1n;
    const got = await this.#replay(from);
    if (got === undefined || this.#closed) return;
    if (got.length > 0 && got[0].seq > from) {
      this.stats.replayFailures++;
      await this.#reset();
      this.#last = got[0].seq - 1n;
    }
    if (await this.#applyReplayed(got)) this.stats.replays++;
  }

  /**
   * Fills [last+1, seq) from the replay socket; when replay is impossible or failed, resets and
   * continues from `seq`. 'sink-failed' when the sink failed.
   *
   * 'foreign' when the replay shows the pod never sent `seq`: a publisher appends each batch to
   * its replay buffer as it sends it (vLLM's ZmqEventPublisher does, in the thread that also
   * serves replays), so a replay requested after `seq` arrived holds `seq` if that publisher
   * sent it. The replay is asked from the last applied batch L, so that it proves itself to be
   * from the process followed (batch L byte for byte; or, with nothing applied yet, the batches
   * it gave were just applied); when its newest batch is still below `seq`, the message came
   * from another publisher on this endpoint's topic and is dropped, keeping what the index holds.
   */
  async #recover(seq: bigint): Promise<'applied' | 'sink-failed' | 'foreign'> {
    const from = this.#last + 1n;
    const anchored = this.#last >= 0n && this.#history.anchored;
    let got = await this.#replay(anchored ? this.#last : from);
    if (this.#closed) return 'sink-failed';
    let failed = got === undefined;
    if (got !== undefined) {
      const same = anchored ? this.#sameProcess(got) : got.length > 0 && got[0].seq === from;
      if (anchored && got.length > 0 && got[0].seq === this.#last) got = got.slice(1);
      if (got.length > 0 && got[0].seq > from) {
        // The buffer no longer reaches back to `from`: what it still holds is a fresh start.
        failed = true;
        this.stats.replayFailures++;
        await this.#reset();
        this.#last = got[0].seq - 1n;
      }
      if (!(await this.#applyReplayed(got))) return 'sink-failed';
      if (this.#last + 1n >= seq) {
        if (!failed) this.stats.replays++;
        return 'applied';
      }
      const head = got.length > 0 ? got[got.length - 1].seq : from - 1n;
      if (same && head < seq) return this.#foreignFound(seq, head);
      // The replay skipped batches, or cannot be tied to the process followed: missing for good.
      if (!failed) this.stats.replayFailures++;
    }
    await this.#reset();
    this.#last = seq - 1n;
    return 'applied';
  }

  /** Counts and (at most every 10 s) logs a message found foreign; opens the no-replay window. */
  #foreignFound(seq: bigint, head: bigint): 'foreign' {
    this.stats.replays++;
    this.stats.foreignMessages++;
    if (this.#foreign.found(seq)) {
      this.#o.logger.warn({ endpoint: this.id, seq: Number(seq), replayHead: Number(head) }, 'KV-event message not held by the endpoint\'s replay socket: another publisher uses this topic; dropped (check the publishers\' topics and --kv-events-allow-from)');
    }
    return 'foreign';
  }

  /** The replayed batches, or undefined when replay is impossible or failed (counted). */
  async #replay(from: bigint): Promise<ReplayedBatch[] | undefined> {
    const ep = this.#o.replayEndpoint;
    if (!ep) {
      this.stats.replayFailures++;
      return undefined;
    }
    try {
      this.#replayRx = this.#rx;
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

  /** Applies replayed batches in order; false when the sink failed (the rest waits for a retry). */
  async #applyReplayed(got: readonly ReplayedBatch[]): Promise<boolean> {
    let ok = true;
    for (const b of got) {
      if (this.#closed) break;
      if (b.seq <= this.#last) continue;
      if (b.seq !== this.#last + 1n) break; // a hole: the rest waits for the next replay
      if (!(await this.#apply(b.seq, this.stats.topic, b.payload, b.payload.length))) {
        ok = false;
        break;
      }
    }
    // Live messages received before this replay was asked for, up to what it applied, are covered.
    this.#coveredRx = this.#replayRx;
    this.#coveredSeq = this.#last;
    return ok;
  }

  /** Decodes and applies one batch in slices; false when the sink failed (the batch stays unapplied). */
  async #apply(seq: bigint, topic: string, payload: Uint8Array, size: number): Promise<boolean> {
    if (size > this.#l.maxMessageBytes) {
      this.#last = seq;
      this.#history.recordUnread(seq, size);
      this.stats.lastSeq = Number(seq);
      this.stats.oversizedMessages++;
      this.#o.logger.warn({ endpoint: this.id, seq: Number(seq), max: this.#l.maxMessageBytes }, 'KV-event message over the byte cap dropped');
      return true;
    }
    let decoded;
    try {
      decoded = this.#sync(() => decodeEventBatch(payload));
    } catch (e) {
      this.#last = seq;
      this.#history.record(seq, payload);
      this.stats.lastSeq = Number(seq);
      this.stats.malformedMessages++;
      this.#o.logger.warn({ endpoint: this.id, seq: Number(seq), err: (e as Error).message }, 'malformed KV-event message skipped');
      return true;
    }
    this.stats.malformedEvents += decoded.malformedEvents;
    const model = parseTopic(topic)?.model ?? this.#model;
    const batch = decoded.batch;
    const { slices, oversizedEvents } = this.#sync(() => sliceBatch(batch, this.#l.sliceBlocks, this.#l.maxBlocksPerEvent));
    this.stats.oversizedEvents += oversizedEvents;
    try {
      for (let i = 0; i < slices.length; i++) {
        if (i > 0 || this.#budget <= 0 || this.#inDebt()) {
          await this.#yield();
          if (this.#closed) throw new KvrError('KVR_ERR_UPSTREAM', 'KV-event stream closed');
        }
        // The whole call is charged: the index works in its continuations (see LoopBudget.measure).
        const apply = () => this.#o.sink.applyBatch(this.id, model, seq, slices[i], slices.length > 1 ? { index: i, count: slices.length } : undefined);
        await (this.#loop ? this.#loop.measure(apply) : apply());
        for (const ev of slices[i].events) this.#budget -= ev.type === 'AllBlocksCleared' ? 1 : ev.blockHashes.length;
      }
    } catch (e) {
      if (this.#closed) return false;
      if (e instanceof KvrError && e.code === 'KVR_ERR_BAD_REQUEST') {
        // A batch the sink can never apply: counted and skipped, like a malformed message.
        this.#last = seq;
        this.stats.malformedMessages++;
        this.#o.logger.warn({ endpoint: this.id, seq: Number(seq), err: e.message }, 'KV-event batch rejected by the sink; skipped');
        return true;
      }
      await this.#sinkFailed(seq, e as Error);
      return false;
    }
    this.#last = seq;
    this.#history.record(seq, payload);
    this.#backoff = this.#l.sinkRetryMs;
    this.#start.learn(this.#o.restartSignal?.processStartTime(this.id));
    this.stats.lastSeq = Number(seq);
    this.stats.batches++;
    this.stats.events += decoded.batch.events.length;
    this.stats.lastEventAt = this.#o.clock.now();
    return true;
  }

  async #sinkFailed(seq: bigint, err: Error): Promise<void> {
    this.stats.sinkFailures++;
    this.#o.logger.warn({ endpoint: this.id, seq: Number(seq), err: err.message, retryMs: this.#backoff }, 'KV-event sink failed to apply a batch; it will be replayed');
    if (!this.#o.replayEndpoint) {
      // Nothing can bring the batch back: the index rebases on the next batch.
      await this.#reset();
      this.#last = seq;
      return;
    }
    this.#last = seq - 1n;
    this.#sinkDownUntil = this.#o.clock.now() + this.#backoff;
    this.#retryTimer?.cancel();
    this.#retryTimer = this.#o.clock.setTimeout(() => {
      if (!this.#closed) this.#push({ kind: 'retry' });
    }, this.#backoff);
    this.#backoff = Math.min(MAX_BACKOFF_MS, this.#backoff * 2);
  }

  /** Runs synchronous ingestion work, charged to the shared event-loop budget. */
  #sync<T>(fn: () => T): T {
    return this.#loop ? this.#loop.run(fn) : fn();
  }

  #inDebt(): boolean {
    return this.#loop !== undefined && this.#loop.debtMs() > 0;
  }

  /** Yields to the event loop: I/O first, and while the ingestion budget is spent, until it is paid back. */
  async #yield(): Promise<void> {
    this.#budget = this.#l.sliceBlocks;
    if (this.#loop) {
      await this.#loop.turn();
      this.stats.throttledMs = Math.round(this.#loop.throttledMs);
    } else await yieldToIo();
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
