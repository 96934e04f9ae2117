/**
 * What every request lifecycle of one router shares (request-lifecycle.ts): the settings and
 * services given to `RequestLifecycles`, the per-request start, and the internal shared view.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import type { FastHistogramChild } from '../metrics/fast-children.js';
import type { RouterMetrics } from '../metrics/router-metrics.js';
import type { Scheduler } from '../scheduling/types.js';
import type { OutlierDetector } from './outlier-detector.js';
import type { RetryBudget } from './retry-budget.js';
import type { DecisionRecord, LifecycleSummary } from './types.js';

/** Statuses retried on another replica when nothing reached the client (Envoy's `5xx` set minus 501/505+). */
export const DEFAULT_RETRY_STATUSES: readonly number[] = [500, 502, 503, 504];

/** Shared settings and services of every lifecycle of one router. */
export interface LifecycleOptions {
  scheduler: Scheduler;
  clock: Clock;
  metrics: RouterMetrics;
  /** Default: silent. Each lifecycle logs through `begin({ log })` when given. */
  logger?: Logger;
  /** Ejects failing replicas; without it nothing is ejected. */
  outliers?: OutlierDetector;
  /** Bounds concurrent retries; without it retries are bounded only by `maxRetries`. */
  retryBudget?: RetryBudget;
  /** Retries per request on other replicas (default 2; 0 disables retries). */
  maxRetries?: number;
  /** Upstream statuses retried when nothing reached the client (default 500, 502, 503, 504). */
  retryStatuses?: readonly number[];
  /** Whole upstream exchange, from the first dispatch, in ms (0 = none; default 600 000). */
  upstreamTimeoutMs?: number;
  /** Dispatch -> first token of each attempt, in ms (0 = none; default 0). */
  ttfbTimeoutMs?: number;
  /** Called once per decided request when it ends (dashboards, `/debug/decisions`). */
  onDecision?: (d: DecisionRecord) => void;
  /** Called once per request when it ends, whatever happened (tests, soak, ext_proc). */
  onEnd?: (s: LifecycleSummary) => void;
  /** Called when a request is assigned to an endpoint (decision, retry, P/D leg): load moves there. */
  onAssigned?: (ep: Endpoint) => void;
}

/** Per-request start of {@link RequestLifecycles.begin}. */
export interface LifecycleInit {
  id: string;
  /** Clock time the request arrived (default: now). */
  arrivedAt?: number;
  /**
   * The request's logger (default: the shared logger with `reqId`), or a function making it: then
   * it is made on first use only (a pino child serializes its bindings; most requests log nothing).
   * A function's logger must log at the shared logger's level (a child of it): levels are read there.
   */
  log?: Logger | (() => Logger);
  /** An outside signal that aborts the lifecycle (e.g. the ext_proc stream's). */
  signal?: AbortSignal;
}

/** Internal view the lifecycle and its attempts share. */
export interface LifecycleShared {
  readonly o: LifecycleOptions;
  readonly scorerTypes: ReadonlyMap<string, string>;
  readonly retryStatuses: ReadonlySet<number>;
  /** Per scorer name: its score histogram's children for the chosen candidate and the others (filled on first use). */
  readonly scoreChildren: Map<string, readonly [FastHistogramChild, FastHistogramChild]>;
  active: number;
}
