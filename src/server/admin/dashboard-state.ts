/**
 * What the live dashboard shows, kept small and bounded: routed requests per endpoint (total and
 * in time buckets, for the routing-distribution chart), and samples of each endpoint's
 * prefix-cache counters (for a recent hit rate next to the cumulative one).
 *
 *   record(decision)  -> counts[endpoint] += 1, buckets[now / bucketMs][endpoint] += 1
 *   snapshot(...)     -> the JSON of GET /api/dashboard (see {@link DashboardData})
 *
 * Time comes from the injected clock; nothing here allocates per request beyond a Map entry per
 * new endpoint id or bucket.
 */
import type { Clock } from '../../core/clock.js';
import type { Endpoint } from '../../core/endpoint.js';
import type { EventIngestStats } from '../../events/types.js';
import type { IndexStats } from '../../kv-index/types.js';
import type { DecisionRecord } from '../openai/gateway.js';
import { decisionJson, type DecisionJson } from './decision-json.js';
import type { RouterSummary } from './router-summary.js';

/** One endpoint as the dashboard shows it. */
export interface DashboardEndpoint {
  id: string;
  url: string;
  healthy: boolean;
  waiting: number;
  running: number;
  kvUsage: number;
  inflight: number;
  /** Seconds since the endpoint's last good metrics scrape (-1: never). */
  metricsAgeS: number;
  /** Requests the router sent it (finished), since the router started. */
  routed: number;
  prefixHits: number | null;
  prefixQueries: number | null;
  /** hits / queries since the engine started; null when unknown or no queries. */
  hitRate: number | null;
  /** hits / queries over about the last minute of dashboard polls; null when no new queries. */
  recentHitRate: number | null;
  blockSize: number | null;
}

/** The JSON of GET /api/dashboard. */
export interface DashboardData {
  now: number;
  uptimeS: number;
  router: RouterSummary | null;
  totals: {
    requests: number;
    byStatus: Record<string, number>;
    byReason: Record<string, number>;
    byCache: Record<string, number>;
  };
  endpoints: DashboardEndpoint[];
  /** Routed requests per time bucket: `counts[b][e]` for bucket b (oldest first) and `endpoints[e]`. */
  series: { bucketMs: number; start: number; endpoints: string[]; counts: number[][] };
  /** The most recent decisions, newest first. */
  decisions: DecisionJson[];
  events: EventIngestStats | null;
  index: IndexStats | null;
}

/** Options of {@link DashboardRecorder}. */
export interface DashboardRecorderOptions {
  clock: Clock;
  /** Width of a routing-distribution bucket (default 5 s). */
  bucketMs?: number;
  /** Buckets kept (default 60: five minutes at 5 s). */
  buckets?: number;
  /** Window of the recent hit rate (default 60 s). */
  hitRateWindowMs?: number;
}

interface HitSample {
  at: number;
  hits: number;
  queries: number;
}

/** Accumulates what the dashboard shows; see the file comment. */
export class DashboardRecorder {
  readonly #clock: Clock;
  readonly #bucketMs: number;
  readonly #maxBuckets: number;
  readonly #windowMs: number;
  readonly #startedAt: number;
  readonly #routed = new Map<string, number>();
  readonly #byStatus = new Map<string, number>();
  readonly #byReason = new Map<string, number>();
  readonly #byCache = new Map<string, number>();
  /** bucket number -> endpoint id -> count. */
  readonly #buckets = new Map<number, Map<string, number>>();
  readonly #samples = new Map<string, HitSample[]>();
  #total = 0;

  constructor(opts: DashboardRecorderOptions) {
    this.#clock = opts.clock;
    this.#bucketMs = opts.bucketMs ?? 5000;
    this.#maxBuckets = opts.buckets ?? 60;
    this.#windowMs = opts.hitRateWindowMs ?? 60_000;
    this.#startedAt = opts.clock.now();
  }

  /** Counts one routed request (the gateway's onDecision). */
  record(d: DecisionRecord): void {
    this.#total++;
    inc(this.#routed, d.servedBy);
    inc(this.#byStatus, String(d.status));
    inc(this.#byReason, d.result.reason);
    inc(this.#byCache, d.cacheStatus ?? 'unknown');
    const b = Math.floor(this.#clock.now() / this.#bucketMs);
    let m = this.#buckets.get(b);
    if (m === undefined) {
      m = new Map();
      this.#buckets.set(b, m);
      const oldest = b - this.#maxBuckets + 1;
      for (const k of this.#buckets.keys()) if (k < oldest) this.#buckets.delete(k);
    }
    inc(m, d.servedBy);
  }

  /** Requests routed to `endpointId` so far. */
  routed(endpointId: string): number {
    return this.#routed.get(endpointId) ?? 0;
  }

  /** Builds the dashboard JSON. */
  snapshot(input: {
    endpoints: readonly Endpoint[];
    inflight: (ep: Endpoint) => number;
    decisions: readonly DecisionRecord[];
    recentDecisions?: number;
    router?: RouterSummary;
    events?: EventIngestStats;
    index?: IndexStats;
  }): DashboardData {
    const now = this.#clock.now();
    const endpoints = input.endpoints.map((ep) => this.#endpoint(ep, input.inflight(ep), now));
    const ids = new Set<string>(input.endpoints.map((e) => e.id));
    for (const id of this.#routed.keys()) ids.add(id);
    const idList = [...ids];
    const current = Math.floor(now / this.#bucketMs);
    const first = current - this.#maxBuckets + 1;
    const counts: number[][] = [];
    for (let b = first; b <= current; b++) {
      const m = this.#buckets.get(b);
      counts.push(idList.map((id) => m?.get(id) ?? 0));
    }
    const n = input.recentDecisions ?? 25;
    const recent = input.decisions.slice(-n).reverse().map(decisionJson);
    return {
      now,
      uptimeS: (now - this.#startedAt) / 1000,
      router: input.router ?? null,
      totals: {
        requests: this.#total,
        byStatus: Object.fromEntries(this.#byStatus),
        byReason: Object.fromEntries(this.#byReason),
        byCache: Object.fromEntries(this.#byCache),
      },
      endpoints,
      series: { bucketMs: this.#bucketMs, start: first * this.#bucketMs, endpoints: idList, counts },
      decisions: recent,
      events: input.events ?? null,
      index: input.index ?? null,
    };
  }

  #endpoint(ep: Endpoint, inflight: number, now: number): DashboardEndpoint {
    const m = ep.metrics;
    const hits = m.prefixHits ?? null;
    const queries = m.prefixQueries ?? null;
    let recent: number | null = null;
    if (hits !== null && queries !== null && m.updatedAt > 0) {
      let s = this.#samples.get(ep.id);
      if (s === undefined) this.#samples.set(ep.id, (s = []));
      const last = s[s.length - 1];
      // Counters went down: the engine restarted; start over.
      if (last !== undefined && (queries < last.queries || hits < last.hits)) s.length = 0;
      if (last === undefined || now - last.at >= 1000 || s.length === 0) s.push({ at: now, hits, queries });
      while (s.length > 2 && now - s[1].at >= this.#windowMs) s.shift();
      const base = s[0];
      const dq = queries - base.queries;
      if (dq > 0) recent = (hits - base.hits) / dq;
    }
    return {
      id: ep.id,
      url: ep.url,
      healthy: ep.healthy,
      waiting: m.waiting,
      running: m.running,
      kvUsage: m.kvUsage,
      inflight,
      metricsAgeS: m.updatedAt > 0 ? Math.max(0, now - m.updatedAt) / 1000 : -1,
      routed: this.routed(ep.id),
      prefixHits: hits,
      prefixQueries: queries,
      hitRate: hits !== null && queries !== null && queries > 0 ? hits / queries : null,
      recentHitRate: recent,
      blockSize: m.blockSize ?? null,
    };
  }
}

function inc(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}
