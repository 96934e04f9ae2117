/**
 * Prometheus metrics of one simulated replica, with vLLM's names and labels
 * (`model_name`, `engine="0"`), in a registry of its own. Gauges and counters mirror the engine
 * at scrape time (so a restart zeroes them); histograms are fed by the engine's observer.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SimEngine } from './engine.js';
import type { PdConnectorStats } from './pd/pd-connector.js';
import { ITL_BUCKETS, REQUEST_LATENCY_BUCKETS, TTFT_BUCKETS } from './latency-histogram.js';

/** The /metrics registry of a replica. */
export class SimMetrics {
  readonly registry = new Registry();
  #hist: Record<'ttft' | 'itl' | 'e2e' | 'queue', Histogram>;
  #labels: { model_name: string; engine: string };

  constructor(modelName: string, getEngine: () => SimEngine, cacheInfo: Record<string, string>) {
    const labels = { model_name: modelName, engine: '0' };
    this.#labels = labels;
    const labelNames = ['model_name', 'engine'];
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: (e: SimEngine) => number): void => {
      new Gauge({ name, help, labelNames, registers, collect() { this.set(labels, read(getEngine())); } });
    };
    const counter = (name: string, help: string, read: (e: SimEngine) => number): void => {
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          this.inc(labels, read(getEngine()));
        },
      });
    };
    gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', (e) => e.stats().running);
    gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', (e) => e.stats().waiting);
    gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', (e) => e.stats().kvUsage);
    counter('vllm:prefix_cache_queries_total', 'Prefix cache queries, in terms of number of queried tokens.', (e) => e.stats().prefixCacheQueries);
    counter('vllm:prefix_cache_hits_total', 'Prefix cache hits, in terms of number of cached tokens.', (e) => e.stats().prefixCacheHits);
    counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.', (e) => e.stats().promptTokens);
    counter('vllm:generation_tokens_total', 'Number of generation tokens processed.', (e) => e.stats().generationTokens);
    counter('vllm:num_preemptions_total', 'Cumulative number of preemption from the engine.', (e) => e.stats().preemptions);
    const success = new Counter({
      name: 'vllm:request_success_total',
      help: 'Count of successfully processed requests.',
      labelNames: [...labelNames, 'finished_reason'],
      registers,
    });
    success.inc({ ...labels, finished_reason: 'length' }, 0);
    this.#success = success;
    const info = new Gauge({
      name: 'vllm:cache_config_info',
      help: 'Information of the LLMEngine CacheConfig',
      labelNames: Object.keys(cacheInfo),
      registers,
    });
    info.set(cacheInfo, 1);
    const hist = (name: string, help: string, buckets: readonly number[]): Histogram =>
      new Histogram({ name, help, labelNames, buckets: [...buckets], registers });
    this.#hist = {
      ttft: hist('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', TTFT_BUCKETS),
      itl: hist('vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', ITL_BUCKETS),
      e2e: hist('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', REQUEST_LATENCY_BUCKETS),
      queue: hist('vllm:request_queue_time_seconds', 'Histogram of time spent in WAITING phase for request.', REQUEST_LATENCY_BUCKETS),
    };
    for (const h of Object.values(this.#hist)) h.zero(labels);
    this.registry.registerMetric(this.#startTime);
  }

  #success: Counter;
  #startTime = new Gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since unix epoch in seconds.', registers: [] });

  /** Sets `process_start_time_seconds` (a restart is a new process: the router confirms restarts with it). */
  setProcessStartTime(seconds: number): void {
    // Strictly increasing, even on a clock that did not move: each restart is a new process.
    this.#startSeconds = Math.max(seconds, this.#startSeconds + 0.001);
    this.#startTime.set(this.#startSeconds);
  }

  #startSeconds = 0;

  /** Feeds a latency observation (the engine's observer). */
  observe(kind: 'ttft' | 'itl' | 'e2e' | 'queue', seconds: number): void {
    this.#hist[kind].observe(this.#labels, seconds);
  }

  /** Counts a finished request by reason. */
  finished(reason: 'length' | 'stop'): void {
    this.#success.inc({ ...this.#labels, finished_reason: reason });
  }

  /** Zeroes histograms and success counts (a restart). */
  reset(): void {
    for (const h of Object.values(this.#hist)) {
      h.reset();
      h.zero(this.#labels);
    }
    this.#success.reset();
    this.#success.inc({ ...this.#labels, finished_reason: 'length' }, 0);
  }

  /**
   * P/D connector metrics (kvroute's, not vLLM's): pinned blocks now, pins taken / expired /
   * released, decode-side pulls by result, tokens received by transfer.
   */
  registerPd(read: () => PdConnectorStats): void {
    const labels = this.#labels;
    const registers = [this.registry];
    const labelNames = ['model_name', 'engine'];
    new Gauge({ name: 'kvroute_sim:pd_pinned_blocks', help: 'KV blocks pinned for a remote decoder to pull.', labelNames, registers, collect() { this.set(labels, read().pinnedBlocks); } });
    const counter = (name: string, help: string, get: (s: PdConnectorStats) => number): void => {
      new Counter({ name, help, labelNames, registers, collect() { this.reset(); this.inc(labels, get(read())); } });
    };
    counter('kvroute_sim:pd_pins_total', 'Requests whose KV blocks were pinned for a remote decoder.', (s) => s.pinsTotal);
    counter('kvroute_sim:pd_pins_expired_total', 'Pins freed by timeout because no decoder pulled them (leaks).', (s) => s.pinsExpired);
    counter('kvroute_sim:pd_pins_released_total', 'Pins freed by a pull or a free request.', (s) => s.pinsReleased);
    counter('kvroute_sim:pd_transferred_tokens_total', 'Prompt tokens received from prefill replicas.', (s) => s.transferredTokens);
    new Counter({
      name: 'kvroute_sim:pd_pulls_total',
      help: 'Decode-side KV pulls by result (ok, failed, invalid_params, local_hit).',
      labelNames: [...labelNames, 'result'],
      registers,
      collect() {
        this.reset();
        for (const [result, n] of Object.entries(read().pulls)) this.inc({ ...labels, result }, n);
      },
    });
  }

  /** Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
