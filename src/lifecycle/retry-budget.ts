/**
 * A retry budget so that retries cannot multiply the load: over a sliding window, retries may
 * not exceed `budgetPercent` of the requests, plus a small reserve (`minRetriesPerSec`) so a
 * quiet router can still retry. This is Finagle's RetryBudget (and gRPC's retry throttling)
 * rather than Envoy's concurrency-based `retry_budget`:
 *
 *   available = minRetriesPerSec x window/1 s + budgetPercent/100 x requests(window) - retries(window)
 *   a retry is allowed when available >= 1, and then counts as one retry
 *
 * Why not Envoy's "concurrent retries <= 20 % of active requests (min 3)": when a replica that
 * held a third of the in-flight requests dies, a third of the active requests need a retry at
 * the same moment, more than 20 % of active, so Envoy's budget drops retries that were safe and
 * cheap. A rate budget absorbs that one-off burst from the recent request volume and still caps
 * retries at 20 % of requests when failures are sustained (every request failing once costs at
 * most 1.2x the load, not 3x).
 *
 * The window is cut into 10 slots; counts older than the window fall out slot by slot.
 */
import type { Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';

/** Settings of {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /** Retries allowed as a percent of requests in the window (default 20). */
  budgetPercent?: number;
  /** Retries per second always allowed, whatever the volume (default 10). */
  minRetriesPerSec?: number;
  /** Sliding window (ms, default 10 000). */
  windowMs?: number;
}

const SLOTS = 10;

/** Rate-based retry budget; see the file comment. */
export class RetryBudget {
  readonly budgetPercent: number;
  readonly minRetriesPerSec: number;
  readonly windowMs: number;
  readonly #clock: Clock;
  readonly #requests = new Float64Array(SLOTS);
  readonly #retries = new Float64Array(SLOTS);
  #slot = 0;
  #slotStart: number;
  #active = 0;

  constructor(clock: Clock, o: RetryBudgetOptions = {}) {
    this.#clock = clock;
    this.budgetPercent = o.budgetPercent ?? 20;
    this.minRetriesPerSec = o.minRetriesPerSec ?? 10;
    this.windowMs = o.windowMs ?? 10_000;
    if (!(this.budgetPercent >= 0 && this.budgetPercent <= 100)) throw new KvrError('KVR_ERR_CONFIG', `retry budget percent must be in [0, 100], got ${this.budgetPercent}`);
    if (!(this.minRetriesPerSec >= 0)) throw new KvrError('KVR_ERR_CONFIG', `min retries per second must be >= 0, got ${this.minRetriesPerSec}`);
    if (!(this.windowMs >= 100)) throw new KvrError('KVR_ERR_CONFIG', `retry budget window must be >= 100 ms, got ${this.windowMs}`);
    this.#slotStart = clock.now();
  }

  /** Requests dispatched and not ended. */
  get active(): number {
    return this.#active;
  }

  /** Retries the budget would allow right now. */
  available(): number {
    this.#advance();
    let req = 0;
    let ret = 0;
    for (let i = 0; i < SLOTS; i++) {
      req += this.#requests[i];
      ret += this.#retries[i];
    }
    return (this.minRetriesPerSec * this.windowMs) / 1000 + (this.budgetPercent / 100) * req - ret;
  }

  /** A request was dispatched (deposits into the budget). */
  requestStarted(): void {
    this.#advance();
    this.#requests[this.#slot]++;
    this.#active++;
  }

  /** A dispatched request ended. */
  requestEnded(): void {
    this.#active = Math.max(0, this.#active - 1);
  }

  /** Takes one retry from the budget; false when it is used up. */
  tryAcquire(): boolean {
    if (this.available() < 1) return false;
    this.#retries[this.#slot]++;
    return true;
  }

  #advance(): void {
    const slotMs = this.windowMs / SLOTS;
    const now = this.#clock.now();
    let steps = Math.floor((now - this.#slotStart) / slotMs);
    if (steps <= 0) return;
    this.#slotStart += steps * slotMs;
    if (steps > SLOTS) steps = SLOTS;
    for (let i = 0; i < steps; i++) {
      this.#slot = (this.#slot + 1) % SLOTS;
      this.#requests[this.#slot] = 0;
      this.#retries[this.#slot] = 0;
    }
  }
}
