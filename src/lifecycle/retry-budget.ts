/**
 * A retry budget after Envoy's (`retry_budget`): retries in progress may not exceed
 * `budgetPercent` of the requests in flight, with a floor of `minRetryConcurrency`, so a
 * fleet-wide failure cannot turn every request into two or three upstream requests.
 *
 *   allowed(retrying) = retrying < max(minRetryConcurrency, budgetPercent / 100 x active)
 *
 * `active` counts requests between {@link RetryBudget.requestStarted} and
 * {@link RetryBudget.requestEnded}; a retry holds its slot until its request ends.
 */
import { KvrError } from '../core/errors.js';

/** Settings of {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /** Percent of active requests that may be retrying at once (default 20, Envoy's default). */
  budgetPercent?: number;
  /** Retries always allowed at once whatever the load (default 3, Envoy's default). */
  minRetryConcurrency?: number;
}

/** Envoy-like retry budget; see the file comment. */
export class RetryBudget {
  readonly budgetPercent: number;
  readonly minRetryConcurrency: number;
  #active = 0;
  #retrying = 0;

  constructor(o: RetryBudgetOptions = {}) {
    this.budgetPercent = o.budgetPercent ?? 20;
    this.minRetryConcurrency = o.minRetryConcurrency ?? 3;
    if (!(this.budgetPercent >= 0 && this.budgetPercent <= 100)) throw new KvrError('KVR_ERR_CONFIG', `retry budget percent must be in [0, 100], got ${this.budgetPercent}`);
    if (!(Number.isInteger(this.minRetryConcurrency) && this.minRetryConcurrency >= 0)) throw new KvrError('KVR_ERR_CONFIG', `min retry concurrency must be an integer >= 0, got ${this.minRetryConcurrency}`);
  }

  /** Requests in flight. */
  get active(): number {
    return this.#active;
  }

  /** Retries in progress. */
  get retrying(): number {
    return this.#retrying;
  }

  requestStarted(): void {
    this.#active++;
  }

  requestEnded(heldRetry: boolean): void {
    this.#active = Math.max(0, this.#active - 1);
    if (heldRetry) this.#retrying = Math.max(0, this.#retrying - 1);
  }

  /** Takes a retry slot when the budget allows (the caller's request must hold at most one). */
  tryAcquire(): boolean {
    const cap = Math.max(this.minRetryConcurrency, (this.budgetPercent / 100) * this.#active);
    if (this.#retrying >= cap) return false;
    this.#retrying++;
    return true;
  }
}
