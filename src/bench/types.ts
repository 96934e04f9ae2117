/**
 * Shapes shared by the parts of `kvroute bench`: workload requests, per-request records that the
 * engines (live, virtual) produce, and the report (the `--json` schema, docs/bench.md).
 */
import type { ChatMessage } from '../sim/tokenizer.js';

/** The prompt of one request, built when the request is sent (never kept for the whole run). */
export type BenchPrompt =
  | {
      api: 'completions';
      text: string;
      /** Token ids under the simulator's built-in tokenizer, when the generator knows them. */
      tokens?: number[];
    }
  | {
      api: 'chat';
      messages: ChatMessage[];
      tokens?: number[];
    };

/** One request of a workload. Arrival times are offsets from the start of the run. */
export interface BenchRequest {
  /** Index in the workload (0..n-1), also the request id suffix. */
  readonly index: number;
  /** Arrival offset (ms of simulated time; live runs multiply by the time scale). */
  readonly atMs: number;
  readonly maxTokens: number;
  /** Session / user / conversation id (for stickiness). */
  readonly session: string;
  /** Client address sent as X-Forwarded-For (what client-IP affinity keys on). */
  readonly clientIp: string;
  /** Phase name (e.g. `warmup`, `measured`, `populate`); figures cover non-`warmup` requests. */
  readonly phase: string;
  /**
   * Wait until every earlier request finished before this one arrives (phase boundaries of the
   * seeds' scripted tests); later arrival offsets shift by the wait.
   */
  readonly barrier?: boolean;
  /** False: sent without streaming (the client reads one JSON body). Absent = streaming. */
  readonly stream?: boolean;
  /** Extra request headers (e.g. `x-session-id`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Builds the prompt (called once per send; deterministic). */
  prompt(): BenchPrompt;
}

/** A generated workload. */
export interface Workload {
  readonly name: string;
  /** One line: what it is and its parameters. */
  readonly description: string;
  /** Model name sent in request bodies. */
  readonly model: string;
  readonly requests: readonly BenchRequest[];
  /** Parameters after defaults (reported in the JSON). */
  readonly params: Readonly<Record<string, unknown>>;
}

/** What one engine run records of one request. Times are ms relative to the run start (simulated time). */
export interface RequestRecord {
  index: number;
  phase: string;
  session: string;
  /** Replica index (0..n-1), -1 when never routed. */
  replica: number;
  arrivalMs: number;
  /** Time to first token (ms); undefined when none came. */
  ttftMs?: number;
  /** End-to-end latency (ms). */
  e2eMs?: number;
  /** False: sent without streaming and read as one body (live: no TTFT observed). Absent = streamed. */
  streamed?: boolean;
  promptTokens: number;
  cachedTokens: number;
  outputTokens: number;
  ok: boolean;
  error?: string;
}

/** Prefix-cache counters of one replica (tokens), as vLLM's metrics. */
export interface CacheCounters {
  queries: number;
  hits: number;
}

/** What an engine run returns for one strategy. */
export interface EngineRun {
  records: RequestRecord[];
  /** Counter deltas per replica over the measured window (non-warm-up requests). */
  measured: CacheCounters[];
  /** Counter deltas per replica per phase (in phase order of first appearance). */
  phases: { name: string; counters: CacheCounters[] }[];
  /** Cumulative counters per replica since the fleet (re)start. */
  total: CacheCounters[];
  /** Busy time per replica (ms of simulated GPU time), when known. */
  busyMs?: number[];
  /** Duration of the measured window (ms, simulated time). */
  durationMs: number;
  /** Replica names, in index order. */
  replicaNames: string[];
  /** Free-form notes (e.g. how hit rates were read). */
  notes: string[];
}
