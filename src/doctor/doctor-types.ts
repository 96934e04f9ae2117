/**
 * Shapes of `kvroute doctor`: what it collects from the endpoints and the router, and what it
 * reports (findings, each with the fix).
 */
import type { EngineKind } from '../core/endpoint.js';
import type { EventIngestStats } from '../events/types.js';
import type { IndexStats } from '../kv-index/types.js';
import type { RouterSummary } from '../server/admin/router-summary.js';

/** Severity of a finding. `skip`: the check could not run (missing input), said why. */
export type FindingLevel = 'ok' | 'warn' | 'fail' | 'skip';

/** Stable ids of the checks (docs/doctor.md describes each). */
export type CheckId =
  | 'endpoint-reachable'
  | 'prefix-caching'
  | 'prefix-counters'
  | 'hit-rate'
  | 'probe-hit'
  | 'block-size'
  | 'router-reachable'
  | 'kv-events'
  | 'pod-id'
  | 'routing-locality'
  | 'load-concentration'
  | 'router-traffic'
  | 'engine'
  | 'endpoint-health'
  | 'pd-roles'
  | 'pd-prefill-port'
  | 'pd-connector';

/** One result of one check. */
export interface Finding {
  check: CheckId;
  level: FindingLevel;
  /** Endpoint the finding is about, when it is about one. */
  endpoint?: string;
  /** What was seen, with the numbers. */
  message: string;
  /** What to do about it (empty for ok). */
  fix: string;
}

/** What one endpoint's `/metrics` said. */
export interface EndpointSample {
  /** `host:port`. */
  address: string;
  url: string;
  reachable: boolean;
  /** When /metrics could not be read: whether /health answered (busy, not dead). */
  live?: boolean;
  error?: string;
  /** Engine detected from the metric prefixes (undefined when none is known). */
  engine?: EngineKind;
  /** `vllm:cache_config_info` labels (undefined when absent). */
  cacheConfig?: Record<string, string>;
  blockSize?: number;
  /** Prefix-cache counters (tokens), when exported. */
  queries?: number;
  hits?: number;
  /** Finished requests (`vllm:request_success_total`, else the e2e histogram count). */
  requests?: number;
  waiting?: number;
  running?: number;
  kvUsage?: number;
}

/** What the router's `GET /debug/stats` said (the parts doctor reads). */
export interface RouterStatsSample {
  router: RouterSummary | null;
  endpoints: Array<{ id: string; url: string; address: string; healthy: boolean; routed: number; engine?: EngineKind; engineSource?: string; reason?: string }>;
  events: EventIngestStats | null;
  index: IndexStats | null;
  preciseScorer: { precise: number; fallbacks: Record<string, number> } | null;
}

/** Result of the `--probe` requests against one target. */
export interface ProbeResult {
  /** `router` or an endpoint address. */
  target: string;
  ok: boolean;
  error?: string;
  /** Endpoint that served each of the two requests (router probes). */
  servedBy?: [string | undefined, string | undefined];
  /** Cached tokens of the second request (usage, else the hits counter delta); undefined if unknown. */
  secondCached?: number;
  /** Where `secondCached` came from (`usage.prompt_tokens_details.cached_tokens`, `timings.cache_n`, `hits counter`). */
  cachedFrom?: string;
  promptTokens?: number;
}

/** The whole report. */
export interface DoctorReport {
  /** True when no finding failed. */
  ok: boolean;
  counts: Record<FindingLevel, number>;
  findings: Finding[];
  /** Second (or only) sample of each endpoint. */
  endpoints: EndpointSample[];
  router: RouterStatsSample | null;
  probes: ProbeResult[];
  /** Length of the sampling window (ms); 0 = one sample, cumulative counters. */
  windowMs: number;
}
