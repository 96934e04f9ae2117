/**
 * After an endpoint's replay showed that a live message was not the pod's (another publisher on
 * its topic, see EndpointStream's `#recover`), messages numbered at or above it are dropped
 * without asking the replay socket again for `windowMs`; a warning is logged at most every
 * {@link FOREIGN_LOG_MS}. The clock is injected.
 */
import type { Clock } from '../core/clock.js';

/** At most one warning per endpoint per this long about messages from another publisher. */
export const FOREIGN_LOG_MS = 10_000;

/** The no-replay window after a foreign message (see the module comment). */
export class ForeignWindow {
  #from = -1n;
  #at = -Infinity;
  #loggedAt = -Infinity;

  constructor(
    readonly clock: Clock,
    readonly windowMs: number,
  ) {}

  /** Whether live message `seq` falls in the window (drop it without a replay). */
  covers(seq: bigint): boolean {
    if (this.#from < 0n || seq < this.#from) return false;
    if (this.clock.now() - this.#at >= this.windowMs) {
      this.#from = -1n;
      return false;
    }
    return true;
  }

  /** Opens the window at `seq`; true when this finding should be logged (rate-limited). */
  found(seq: bigint): boolean {
    this.#from = seq;
    this.#at = this.clock.now();
    if (this.#at - this.#loggedAt < FOREIGN_LOG_MS) return false;
    this.#loggedAt = this.#at;
    return true;
  }

  /** Closes the window (a new publisher process: its numbers start again). */
  reset(): void {
    this.#from = -1n;
  }
}
