/**
 * The share of the event loop one endpoint's KV-event ingestion may use, so a flood of events
 * (or one huge replay) can slow that endpoint's index updates down but never the router, nor
 * the other endpoints' streams (each has its own budget).
 *
 * Algorithm: a token bucket in milliseconds of synchronous work. Tokens accrue at `share` ms per
 * elapsed ms (injected clock), up to `burstMs`. Each piece of ingestion work is timed and
 * charged: one message's decode (synchronous), one slice handed to the sink (an asynchronous
 * call whose work runs in its continuations: charged the smaller of its wall time and the
 * process's CPU time meanwhile, so waiting on Redis is not loop time while the router is idle,
 * and everything the process did is, while it is busy).
 * Before the next piece, {@link LoopBudget.turn} yields: with tokens left, `setImmediate` (I/O
 * callbacks run first); in debt (a 1 MiB decode costs ~55 ms), a timer until the debt is paid
 * back, during which the loop serves everything else. Over a busy second ingestion thus takes
 * at most about `share` of the loop; an ordinary vLLM stream (a few hundred small batches per
 * second) stays far below it and is never delayed. Work that does not keep up waits in the
 * byte-bounded queues, then is dropped and recovered by replay.
 *
 * ```
 *   tokens = min(burst, tokens + share x (now - last))
 *   charge(ms): tokens -= ms
 *   turn():  tokens >= 0  -> setImmediate
 *            tokens <  0  -> sleep(-tokens / share)
 * ```
 */
import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';

/** Default share of the event loop for KV-event ingestion. */
export const DEFAULT_LOOP_SHARE = 0.2;

/** A token bucket of event-loop milliseconds (see the module comment). */
export class LoopBudget {
  readonly share: number;
  readonly burstMs: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;
  /** Milliseconds spent waiting for the budget (stats). */
  throttledMs = 0;

  readonly #cpuMs: () => number;

  /**
   * @param cpuMs the process's CPU time in ms (user + system, all threads), for {@link LoopBudget.measure};
   *   injected in tests
   */
  constructor(clock: Clock, share = DEFAULT_LOOP_SHARE, burstMs = 20, cpuMs: () => number = processCpuMs) {
    this.#cpuMs = cpuMs;
    if (!(share > 0 && share <= 1)) throw new KvrError('KVR_ERR_CONFIG', `KV-event ingestion: the event-loop share must be in (0, 1], got ${String(share)}`);
    if (!(burstMs > 0)) throw new KvrError('KVR_ERR_CONFIG', `KV-event ingestion: burstMs must be > 0, got ${String(burstMs)}`);
    this.share = share;
    this.burstMs = burstMs;
    this.#clock = clock;
    this.#tokens = burstMs;
    this.#last = clock.now();
  }

  /** Runs `fn` synchronously and charges its duration. */
  run<T>(fn: () => T): T {
    const t0 = this.#clock.now();
    try {
      return fn();
    } finally {
      this.#refill(t0);
      this.#tokens -= this.#clock.now() - t0;
    }
  }

  /**
   * Runs an asynchronous piece of work (a sink call whose work runs in its continuations) and
   * charges min(wall time, process CPU time during it): a Redis round trip costs the loop
   * nothing while the router is idle (the CPU time is only the command's encoding), so a
   * backlog drains at Redis's speed; while the router is busy the process's CPU time is about
   * the wall time and the piece is charged as before, which keeps the flood's share bounded.
   */
  async measure<T>(fn: () => Promise<T>): Promise<T> {
    const t0 = this.#clock.now();
    const c0 = this.#cpuMs();
    try {
      return await fn();
    } finally {
      this.charge(Math.min(this.#clock.now() - t0, this.#cpuMs() - c0));
    }
  }

  /** Charges `ms` of work measured by the caller. */
  charge(ms: number, now = this.#clock.now()): void {
    this.#refill(now);
    this.#tokens -= Math.max(0, ms);
  }

  /** Milliseconds of debt (0 when work may go on at once). */
  debtMs(): number {
    this.#refill(this.#clock.now());
    return this.#tokens >= 0 ? 0 : -this.#tokens / this.share;
  }

  /** Yields to the loop: at once (I/O first) with budget left, else until the debt is paid back. */
  async turn(): Promise<void> {
    const wait = this.debtMs();
    if (wait <= 0) {
      await yieldToIo();
      return;
    }
    this.throttledMs += wait;
    await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, wait));
    // A short wait's timer can fire in the next loop iteration's timers phase, before its poll
    // and check phases: yield once more so pending I/O always runs between two slices.
    await yieldToIo();
  }

  #refill(now: number): void {
    if (now > this.#last) {
      this.#tokens = Math.min(this.burstMs, this.#tokens + (now - this.#last) * this.share);
      this.#last = now;
    }
  }
}

/** The process's CPU time (user + system) in milliseconds. */
function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
