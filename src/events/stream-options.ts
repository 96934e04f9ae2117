/**
 * Options, limits and counters of one {@link EndpointStream} (src/events/endpoint-stream.ts):
 * what a stream is configured with, the defaults, their validation and the zeroed stats.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import type { EndpointStream } from './endpoint-stream.js';
import type { fetchReplay } from './replay-client.js';
import type { RestartSignal } from './restart-signal.js';
import type { EndpointEventStats, KvEventSink } from './types.js';

/** Limits of one stream (defaults in {@link STREAM_DEFAULTS}). */
export interface StreamLimits {
  /** Largest number of messages waiting (default 10,000). */
  maxQueue?: number;
  /**
   * Largest number of payload bytes waiting (default 16 MiB: ~300 full vLLM step batches, seconds
   * behind; beyond that dropping and replaying is cheaper than holding a flood in memory).
   */
  maxQueueBytes?: number;
  /**
   * Largest message payload accepted (default 1 MiB, ~300k token ids; a vLLM step's batch holds
   * at most max_num_batched_tokens token ids, ~50 KB at 16k). Decoding is synchronous (~55 ms
   * per MB), so this also bounds the longest pause one message can cause.
   */
  maxMessageBytes?: number;
  /** Largest number of blocks in one event (default 16,384). */
  maxBlocksPerEvent?: number;
  /** Blocks handed to the sink per slice; the pump yields to I/O after about this many (default 512). */
  sliceBlocks?: number;
  /** Lower-numbered messages in a row that confirm a restart when neither replay nor a restart signal can (default 3). */
  restartConfirmMessages?: number;
  /** After replay said "same process", further lower seqs are dropped unchecked for this long (default 1,000 ms). */
  lowSeqRecheckMs?: number;
  /** First back-off after a sink failure (default 200 ms; doubles up to 5,000 ms). */
  sinkRetryMs?: number;
}

/** Default {@link StreamLimits}. */
export const STREAM_DEFAULTS: Required<StreamLimits> = {
  maxQueue: 10_000,
  maxQueueBytes: 16 * 1024 * 1024,
  maxMessageBytes: 1024 * 1024,
  maxBlocksPerEvent: 16_384,
  sliceBlocks: 512,
  restartConfirmMessages: 3,
  lowSeqRecheckMs: 1_000,
  sinkRetryMs: 200,
};

/** What one {@link EndpointStream} needs. */
export interface EndpointStreamOptions extends StreamLimits {
  id: string;
  sink: KvEventSink;
  clock: Clock;
  logger: Logger;
  /** The pod's replay ROUTER address; undefined = no replay. */
  replayEndpoint?: string;
  /** Model passed to the sink when the topic does not name one. */
  model?: string;
  replayTimeoutMs?: number;
  /** Replay transport (tests and benchmarks may swap it). */
  fetch?: typeof fetchReplay;
  /** Process start times (confirms restarts). */
  restartSignal?: RestartSignal;
  /** Share of the event loop this stream's decoding and applying may use (default: unlimited, yields only). */
  loopShare?: number;
}

/** The limits of `o` over the defaults; KVR_ERR_CONFIG for a value that is not a positive integer. */
export function resolveLimits(o: StreamLimits): Required<StreamLimits> {
  const l = { ...STREAM_DEFAULTS };
  for (const k of Object.keys(STREAM_DEFAULTS) as (keyof StreamLimits)[]) {
    const v = o[k];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < (k === 'lowSeqRecheckMs' ? 0 : 1)) throw new KvrError('KVR_ERR_CONFIG', `KV-event ingestion: ${k} must be a positive integer, got ${String(v)}`);
    l[k] = v;
  }
  return l;
}

/** A stream's counters, all zero (lastSeq -1). */
export function newStreamStats(): Required<EndpointEventStats> {
  return {
    batches: 0,
    events: 0,
    malformedMessages: 0,
    malformedEvents: 0,
    gaps: 0,
    replays: 0,
    replayFailures: 0,
    resets: 0,
    restarts: 0,
    unconfirmedSeqResets: 0,
    foreignMessages: 0,
    oversizedMessages: 0,
    oversizedEvents: 0,
    queueDrops: 0,
    queuedBytes: 0,
    sinkFailures: 0,
    resyncChecks: 0,
    throttledMs: 0,
    lastSeq: -1,
    lastEventAt: 0,
    topic: '',
    connected: false,
  };
}
