/**
 * Types of the request lifecycle (src/lifecycle/request-lifecycle.ts) shared by every front end:
 * the OpenAI gateway, the Envoy ext_proc endpoint picker, P/D disaggregation and the virtual bench.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { KvrError } from '../core/errors.js';
import type { CacheStatusLabel } from '../metrics/router-metrics.js';
import type { CachePrediction } from '../observability/cache-prediction.js';
import type { SchedulingResult } from '../scheduling/types.js';

/** Token usage as the engine reported it (`usage` of the OpenAI response). */
export interface Usage {
  promptTokens?: number;
  completionTokens?: number;
  /** `usage.prompt_tokens_details.cached_tokens`. */
  cachedTokens?: number;
}

/**
 * Where a request is in its life. Pre-upstream stages (`body`, `parse`, `tokenize`, `schedule`)
 * are the ones a front end wraps with {@link RequestLifecycleApi.run}; the lifecycle moves itself
 * through `dispatched` (upstream request open), `streaming` (first token seen) and `ended`.
 */
export type LifecycleStage = 'received' | 'body' | 'parse' | 'tokenize' | 'schedule' | 'decided' | 'dispatched' | 'streaming' | 'ended';

/**
 * Why an upstream attempt failed:
 * - `connect`: the connection was refused / unreachable (nothing was sent);
 * - `reset`: the connection died before the response completed (socket closed, replica died);
 * - `status`: the endpoint answered with an error status (5xx), see {@link UpstreamFailure.status};
 * - `ttfb-timeout`: no first token within the time-to-first-byte timeout;
 * - `timeout`: the whole upstream exchange took longer than the request timeout;
 * - `midstream`: the stream broke after bytes reached the client (never retried);
 * - `request`: anything else (bad upstream answer, protocol error).
 */
export type UpstreamFailureKind = 'connect' | 'reset' | 'status' | 'ttfb-timeout' | 'timeout' | 'midstream' | 'request';

/** One failed upstream attempt, as a front end reports it. */
export interface UpstreamFailure {
  kind: UpstreamFailureKind;
  /** HTTP status from the endpoint (kind `status`). */
  status?: number;
  message: string;
  cause?: unknown;
}

/** How a lifecycle ended. */
export type LifecycleOutcome =
  /** The endpoint answered 2xx and the response completed. */
  | 'ok'
  /** The endpoint answered a non-2xx status that was passed to the client. */
  | 'upstream-status'
  /** The upstream failed (no retry left); the client got a router error or a cut stream. */
  | 'upstream-failed'
  /** Rejected before dispatch (bad request, unknown model, no endpoint). */
  | 'rejected'
  /** The client went away (counted as 499, apart from errors). */
  | 'aborted';

/** Status the router logs/counts for a client that went away (nginx's convention). */
export const CLIENT_CLOSED_STATUS = 499;

/** What the lifecycle knows when it ended: exactly one per request. */
export interface LifecycleSummary {
  requestId: string;
  model: string | undefined;
  outcome: LifecycleOutcome;
  /** Status as logged and counted: the client's status, 499 for a client abort. */
  status: number;
  /** The router error when the router answered for the endpoint (rejected / upstream-failed). */
  error: KvrError | undefined;
  /** The stage the request was in when it was aborted / rejected. */
  stage: LifecycleStage;
  /** The endpoint of the last attempt (undefined when never dispatched). */
  endpoint: Endpoint | undefined;
  usage: Usage | undefined;
  /** Attempts after the first (retries on other endpoints). */
  retries: number;
  /** Arrival -> upstream request dispatched (ms). */
  overheadMs: number | undefined;
  /** Arrival -> first token (ms). */
  ttftMs: number | undefined;
  /** Arrival -> end (ms). */
  durationMs: number;
}

/** The scheduler's decision plus what the router predicted about the cache. */
export interface Decision {
  result: SchedulingResult;
  prediction: CachePrediction;
}

/** What the gateway remembers of a routed request (dashboards, `/debug/decisions`, tests). */
export interface DecisionRecord {
  requestId: string;
  model: string;
  at: number;
  result: SchedulingResult;
  servedBy: string;
  status: number;
  /** Engine-reported cached prompt tokens (usage.prompt_tokens_details.cached_tokens). */
  cachedTokens?: number;
  /** Engine-reported prompt tokens (usage.prompt_tokens). */
  promptTokens?: number;
  /** Predicted cache status of the chosen endpoint (hit / partial / miss / unknown). */
  cacheStatus?: CacheStatusLabel;
  /** Prompt tokens the router predicted cached on the chosen endpoint. */
  predictedCachedTokens?: number;
  /** Prompt tokens as the router counted them (exact when tokenized, else estimated). */
  routerPromptTokens?: number;
  /** Arrival -> first response byte (ms). */
  ttftMs?: number;
  /** Arrival -> response finished (ms). */
  durationMs?: number;
  /** Arrival -> upstream request sent (ms). */
  overheadMs?: number;
}

/** Options of one dispatch (one upstream attempt). */
export interface DispatchOptions {
  /**
   * False when the front end cannot see the first token (a non-streaming pass-through response
   * arrives whole): the time-to-first-byte timer is not armed and prefill ends at completion.
   * Default true.
   */
  firstTokenObservable?: boolean;
  /** Endpoint to send to (default: the decision's next ranked endpoint). For P/D legs. */
  endpoint?: Endpoint;
}
