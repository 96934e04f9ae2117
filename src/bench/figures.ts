/**
 * The figures of one strategy run, defined once (benchmarks.md) and computed the same way for
 * both engines. Only measured requests (phase other than `warmup`) count.
 *
 * - hitRate: sum over replicas of delta prefix_cache_hits / delta prefix_cache_queries (tokens).
 * - oracleHitRate, vsOracle: the pooled-cache bound and hitRate / bound.
 * - ttftMs / itlMs / e2eMs: p50, p90, p99 and mean over successful requests (ITL per request =
 *   (e2e - ttft) / (output tokens - 1), then the distribution over requests).
 * - goodput: requests per second (over the measured window) that met BOTH targets: TTFT <= slo.ttftMs
 *   and TPOT (time per output token after the first) <= slo.tpotMs; defaults {@link DEFAULT_SLO}.
 *   The headline rate figure of an open-loop run.
 * - optHitRate, vsOpt: Belady/OPT on the pooled cache (belady.ts), the real upper bound, and hitRate / it.
 * - outputTokensPerSecond, requestsPerSecond: over the measured window (first measured arrival
 *   to last measured completion). In an open-loop run these mostly measure how the last requests
 *   drain, not capacity; saturation throughput comes from a closed-loop run (closed-loop.ts).
 * - balance: max / mean over replicas of busy time (engine step time) when known, else of
 *   prefill tokens computed (prompt - cached).
 * - stickiness: per session, the share of its requests on its most-used replica; request-weighted mean.
 * - concentration: share of requests on the busiest replica.
 */
import type { EngineRun, RequestRecord } from './types.js';

/** p50 / p90 / p99 / mean of a latency (ms); null when there were no samples. */
export interface Dist {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  mean: number | null;
}

/** One replica's share of a run. */
export interface ReplicaFigures {
  name: string;
  requests: number;
  promptTokens: number;
  prefillTokens: number;
  prefixQueries: number;
  prefixHits: number;
  hitRate: number;
  /** Busy time (ms), null when unknown (external endpoints). */
  busyMs: number | null;
}

/** Hit rate of one phase. */
export interface PhaseFigures {
  name: string;
  requests: number;
  failed: number;
  hitRate: number;
  ttftP50Ms: number | null;
}

/** The seeds' cache-hit test verdicts. */
export interface SeedsFigures {
  /** Fleet delta hit rate over the measured loop. */
  aggregateDeltaHitRate: number;
  /** Cumulative hit rate (since the restart) of the replica that served most requests. */
  overallPodHitRate: number;
  primaryReplica: string;
  stickinessVerdict: string;
}

/** Latency targets of goodput. */
export interface Slo {
  /** Time to first token target (ms). */
  ttftMs: number;
  /** Time per output token target (ms), after the first token. */
  tpotMs: number;
}

/** Default goodput targets: interactive chat, TTFT <= 1 s and TPOT <= 50 ms (20 tokens/s per user). */
export const DEFAULT_SLO: Slo = { ttftMs: 1000, tpotMs: 50 };

/** Goodput of a run. */
export interface GoodputFigures {
  /** Requests per second that met both targets. */
  requestsPerSecond: number;
  /** Share of measured requests that met both targets. */
  share: number;
  slo: Slo;
}

/** Every figure of one strategy (the `strategies[]` items of the JSON report). */
export interface StrategyFigures {
  requests: number;
  failed: number;
  hitRate: number;
  /** The pooled-LRU reference (kept under its old name in the JSON). */
  oracleHitRate: number;
  vsOracle: number;
  /** Belady/OPT bound on the pooled cache and hitRate / it. */
  optHitRate: number;
  vsOpt: number;
  goodput: GoodputFigures;
  ttftMs: Dist;
  itlMs: Dist;
  e2eMs: Dist;
  outputTokensPerSecond: number;
  requestsPerSecond: number;
  durationS: number;
  balance: number;
  balanceBasis: 'busy-time' | 'prefill-tokens';
  stickiness: number;
  concentration: number;
  phases: PhaseFigures[];
  seeds: SeedsFigures;
  replicas: ReplicaFigures[];
  /** TTFT quantiles 0, 1, ..., 100 % (ms), for the CDF chart; empty when none. */
  ttftCdfMs: number[];
  /** Requests in flight per replica, sampled at the middle of `timeline.bucketMs` buckets. */
  timeline: { bucketMs: number; inflight: number[][] };
}

function sortedQuantile(s: readonly number[], q: number): number | null {
  if (s.length === 0) return null;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Distribution figures of `xs`. */
export function dist(xs: number[]): Dist {
  const s = xs.slice().sort((a, b) => a - b);
  return {
    p50: sortedQuantile(s, 0.5),
    p90: sortedQuantile(s, 0.9),
    p99: sortedQuantile(s, 0.99),
    mean: s.length === 0 ? null : s.reduce((a, b) => a + b, 0) / s.length,
  };
}

function ratio(a: number, b: number): number {
  return b > 0 ? a / b : 0;
}

/** Stickiness verdict wording of the seeds' pipeline. */
export function stickinessVerdict(stickiness: number, concentration: number): string {
  if (stickiness >= 0.99 && concentration >= 0.99) return 'EXCELLENT (all traffic to one pod)';
  if (stickiness >= 0.99) return 'EXCELLENT (every session on one pod)';
  if (stickiness >= 0.9) return 'GOOD';
  if (stickiness >= 0.7) return 'FAIR';
  return 'POOR (sessions spread over pods)';
}

/** Computes every figure of a run; `oracleHitRate` is the pooled-LRU reference. */
export function computeFigures(run: EngineRun, oracleHitRate: number, timelineBuckets = 60, extra: { optHitRate?: number; slo?: Slo } = {}): StrategyFigures {
  const slo = extra.slo ?? DEFAULT_SLO;
  const n = run.replicaNames.length;
  const recs = run.records.filter((r) => r.phase !== 'warmup');
  const ok = recs.filter((r) => r.ok);
  const q = run.measured.reduce((a, c) => a + c.queries, 0);
  const h = run.measured.reduce((a, c) => a + c.hits, 0);
  const hitRate = ratio(h, q);
  const ttfts = ok.filter((r) => r.ttftMs !== undefined).map((r) => r.ttftMs!);
  const itls = ok.filter((r) => r.outputTokens > 1 && r.ttftMs !== undefined && r.e2eMs !== undefined).map((r) => (r.e2eMs! - r.ttftMs!) / (r.outputTokens - 1));
  const e2es = ok.filter((r) => r.e2eMs !== undefined).map((r) => r.e2eMs!);
  const durS = run.durationMs / 1000;
  // A request whose first token was not observed (live, non-streaming: one JSON body) meets the
  // targets when its whole answer came within the deadline both imply: TTFT + TPOT x (n - 1).
  const meets = (r: RequestRecord): boolean =>
    r.ttftMs !== undefined
      ? r.ttftMs <= slo.ttftMs && (r.outputTokens <= 1 || (r.e2eMs! - r.ttftMs) / (r.outputTokens - 1) <= slo.tpotMs)
      : r.streamed === false && r.e2eMs !== undefined && r.e2eMs <= slo.ttftMs + slo.tpotMs * Math.max(0, r.outputTokens - 1);
  const good = ok.filter(meets).length;
  const outTok = ok.reduce((a, r) => a + r.outputTokens, 0);

  const perReq = new Array<number>(n).fill(0);
  const perPrompt = new Array<number>(n).fill(0);
  const perPrefill = new Array<number>(n).fill(0);
  for (const r of recs) {
    if (r.replica < 0) continue;
    perReq[r.replica]++;
    perPrompt[r.replica] += r.promptTokens;
    perPrefill[r.replica] += Math.max(0, r.promptTokens - r.cachedTokens);
  }
  const basis: 'busy-time' | 'prefill-tokens' = run.busyMs !== undefined ? 'busy-time' : 'prefill-tokens';
  const load = run.busyMs ?? perPrefill;
  const meanLoad = load.reduce((a, b) => a + b, 0) / Math.max(1, n);
  const balance = meanLoad > 0 ? Math.max(...load) / meanLoad : 1;

  const bySession = new Map<string, Map<number, number>>();
  for (const r of recs) {
    if (r.replica < 0) continue;
    let m = bySession.get(r.session);
    if (m === undefined) bySession.set(r.session, (m = new Map()));
    m.set(r.replica, (m.get(r.replica) ?? 0) + 1);
  }
  let stickW = 0;
  let stickN = 0;
  for (const m of bySession.values()) {
    let tot = 0;
    let best = 0;
    for (const c of m.values()) {
      tot += c;
      if (c > best) best = c;
    }
    stickW += best;
    stickN += tot;
  }
  const stickiness = ratio(stickW, stickN);
  const routed = perReq.reduce((a, b) => a + b, 0);
  const concentration = ratio(Math.max(0, ...perReq), routed);

  const phases: PhaseFigures[] = run.phases.map((p) => {
    const pr = run.records.filter((r) => r.phase === p.name);
    const pq = p.counters.reduce((a, c) => a + c.queries, 0);
    const ph = p.counters.reduce((a, c) => a + c.hits, 0);
    return {
      name: p.name,
      requests: pr.length,
      failed: pr.filter((r) => !r.ok).length,
      hitRate: ratio(ph, pq),
      ttftP50Ms: dist(pr.filter((r) => r.ok && r.ttftMs !== undefined).map((r) => r.ttftMs!)).p50,
    };
  });

  let primary = 0;
  for (let i = 1; i < n; i++) if (perReq[i] > perReq[primary]) primary = i;
  const seeds: SeedsFigures = {
    aggregateDeltaHitRate: hitRate,
    overallPodHitRate: ratio(run.total[primary]?.hits ?? 0, run.total[primary]?.queries ?? 0),
    primaryReplica: run.replicaNames[primary] ?? '',
    stickinessVerdict: stickinessVerdict(stickiness, concentration),
  };

  const sortedTtft = ttfts.slice().sort((a, b) => a - b);
  const ttftCdfMs = sortedTtft.length === 0 ? [] : Array.from({ length: 101 }, (_, i) => sortedQuantile(sortedTtft, i / 100)!);

  // In-flight requests per replica over time: +1 at arrival, -1 at completion, sampled per bucket.
  let t0 = Infinity; // a loop, not Math.min(...records): a spread of a million arguments overflows the stack
  for (const r of run.records) if (r.arrivalMs < t0) t0 = r.arrivalMs;
  let tEnd = t0;
  for (const r of run.records) tEnd = Math.max(tEnd, r.arrivalMs + (r.e2eMs ?? 0));
  const span = Math.max(1, tEnd - (Number.isFinite(t0) ? t0 : 0));
  const bucketMs = span / timelineBuckets;
  const inflight = Array.from({ length: n }, () => new Array<number>(timelineBuckets).fill(0));
  if (Number.isFinite(t0)) {
    for (const r of run.records) {
      if (r.replica < 0) continue;
      const a = r.arrivalMs - t0;
      const b = a + (r.e2eMs ?? 0);
      const first = Math.max(0, Math.ceil(a / bucketMs - 0.5));
      const last = Math.min(timelineBuckets - 1, Math.floor(b / bucketMs - 0.5));
      for (let k = first; k <= last; k++) inflight[r.replica][k]++;
    }
  }

  return {
    requests: recs.length,
    failed: recs.filter((r) => !r.ok).length,
    hitRate,
    oracleHitRate,
    vsOracle: ratio(hitRate, oracleHitRate),
    optHitRate: extra.optHitRate ?? oracleHitRate,
    vsOpt: ratio(hitRate, extra.optHitRate ?? oracleHitRate),
    goodput: { requestsPerSecond: durS > 0 ? good / durS : 0, share: ratio(good, recs.length), slo },
    ttftMs: dist(ttfts),
    itlMs: dist(itls),
    e2eMs: dist(e2es),
    outputTokensPerSecond: durS > 0 ? outTok / durS : 0,
    requestsPerSecond: durS > 0 ? ok.length / durS : 0,
    durationS: durS,
    balance,
    balanceBasis: basis,
    stickiness,
    concentration,
    phases,
    seeds,
    replicas: run.replicaNames.map((name, i) => ({
      name,
      requests: perReq[i],
      promptTokens: perPrompt[i],
      prefillTokens: perPrefill[i],
      prefixQueries: run.measured[i]?.queries ?? 0,
      prefixHits: run.measured[i]?.hits ?? 0,
      hitRate: ratio(run.measured[i]?.hits ?? 0, run.measured[i]?.queries ?? 0),
      busyMs: run.busyMs?.[i] ?? null,
    })),
    ttftCdfMs,
    timeline: { bucketMs, inflight },
  };
}

/** Records of requests that failed, for diagnostics (first few errors). */
export function firstErrors(records: readonly RequestRecord[], max = 3): string[] {
  const out: string[] = [];
  for (const r of records) {
    if (!r.ok && r.error !== undefined && out.length < max && !out.includes(r.error)) out.push(r.error);
  }
  return out;
}
