/**
 * Which publisher process an endpoint's event stream follows, by its process start time (the
 * restart signal's `process_start_time_seconds`), so that one restart leads to one reset
 * whichever detector sees it first: the start time changing, a replay no longer holding the last
 * applied batch, or sequence numbers going back.
 *
 * After a reset the stream did on its own evidence (replay or sequence), the signal may still
 * name the old process (the scraper lags): the next start time signalled within
 * `awaitMs` is taken as the new process's, without a second reset (which would wipe what the
 * new process already published). Clock injected.
 */
import type { Clock } from '../core/clock.js';

/** How long after a reset a newly signalled start time is taken as the same restart's (scrapes lag by far less). */
export const AWAIT_START_MS = 10_000;

export class PublisherStart {
  /** Start time of the process whose batches the stream applies; undefined until known. */
  known: number | undefined;
  #awaitUntil = -Infinity;
  readonly #clock: Clock;
  readonly #awaitMs: number;

  constructor(clock: Clock, awaitMs = AWAIT_START_MS) {
    this.#clock = clock;
    this.#awaitMs = awaitMs;
  }

  /** The stream reset on its own evidence; `signalled` = the signal's start time now. */
  resetFoundByStream(signalled: number | undefined): void {
    const old = this.known;
    if (signalled !== undefined && old !== undefined && signalled !== old) {
      this.known = signalled; // the signal already names the new process
      this.#awaitUntil = -Infinity;
    } else {
      this.known = undefined;
      this.#awaitUntil = this.#clock.now() + this.#awaitMs;
    }
  }

  /**
   * The signal saw `startTime`: 'known' (this process, or a restart already handled), 'adopted'
   * (the new process of a reset the stream already did) or 'restart' (reset now, then {@link set}).
   */
  signalled(startTime: number): 'known' | 'adopted' | 'restart' {
    if (this.known === startTime) return 'known';
    if (this.known === undefined && this.#clock.now() < this.#awaitUntil) {
      this.set(startTime);
      return 'adopted';
    }
    return 'restart';
  }

  /** The start time is known for sure (after a reset caused by the signal). */
  set(startTime: number): void {
    this.known = startTime;
    this.#awaitUntil = -Infinity;
  }

  /** A batch was applied: learn the signal's start time unless a reset is still waiting for the new one. */
  learn(signalled: number | undefined): void {
    if (this.known === undefined && this.#clock.now() >= this.#awaitUntil) this.known = signalled;
  }
}
