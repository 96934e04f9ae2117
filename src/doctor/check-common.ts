/**
 * What the doctor checks share: their input, thresholds, the window of counters they compare
 * and the formatting of shares.
 */
import type { EndpointSample, ProbeResult, RouterStatsSample } from './doctor-types.js';

/** Everything the checks read. */
export interface CheckInput {
  /** Endpoint samples at the start of the window (same order as `after`); absent = one sample. */
  before?: readonly EndpointSample[];
  after: readonly EndpointSample[];
  router: RouterStatsSample | null;
  routerBefore?: RouterStatsSample | null;
  /** Why the router could not be read (admin URL given but unreachable). */
  routerError?: string;
  /** `--block-size`: the router's block size when the router admin is not available. */
  blockSize?: number;
  probes: readonly ProbeResult[];
  /** Requests doctor itself sent straight to each endpoint (address -> count), within the window. */
  directProbes: ReadonlyMap<string, number>;
}

/** Thresholds (documented in docs/doctor.md). */
export const DOCTOR_THRESHOLDS = {
  /** Hit rate below this over at least `minQueriesForHitRate` queried tokens is a warning. */
  lowHitRate: 0.05,
  minQueriesForHitRate: 2000,
  /** One endpoint with at least this share of at least `minRequestsForShare` requests is a hot spot. */
  hotSpotShare: 0.75,
  minRequestsForShare: 10,
  /** Requests served that the router did not send, beyond max(this count, 10 % of served), are a bypass. */
  bypassSlack: 3,
} as const;

/** A share as a percentage with one decimal. */
export const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

/** The fix for missing KV events: vLLM's --kv-events-config and the reachability it needs. */
export const FIX_EVENTS =
  'start every vLLM with --kv-events-config \'{"enable_kv_cache_events":true,"publisher":"zmq","endpoint":"tcp://*:5557","topic":"kv@<pod-ip:port>@<model>","replay_endpoint":"tcp://*:5558"}\' and make sure the router can reach the pods\' port 5557 (connect mode) or that the pods can reach the router\'s bound address (bind mode)';

/** Windowed delta when both samples have the value and it did not go down (restart), else the cumulative value. */
export function delta(after: number | undefined, before: number | undefined): number | undefined {
  if (after === undefined) return undefined;
  if (before === undefined || after < before) return after;
  return after - before;
}

/** Request, query and hit counts of one endpoint over the window (or since start). */
export interface Window {
  requests: number | undefined;
  queries: number | undefined;
  hits: number | undefined;
  windowed: boolean;
}
