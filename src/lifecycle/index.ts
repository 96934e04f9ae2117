/** The request lifecycle shared by every front end (see request-lifecycle.ts for usage). */
export { RequestLifecycles, RequestLifecycle, UpstreamAttempt, DEFAULT_RETRY_STATUSES, type LifecycleOptions, type LifecycleInit } from './request-lifecycle.js';
export { OutlierDetector, type OutlierOptions, type EjectionListener } from './outlier-detector.js';
export { RetryBudget, type RetryBudgetOptions } from './retry-budget.js';
export { classifyUpstreamError, failureError, isClientClosed } from './upstream-errors.js';
export * from './types.js';
export { SignalSourced } from './signal-sourced.js';
