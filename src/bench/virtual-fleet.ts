/**
 * The simulated fleet of a virtual-engine run, built once for both runners (open loop:
 * virtual-runner.ts, closed loop: closed-loop.ts): `replicas` {@link SimEngine}s on one
 * {@link ManualClock}, the router's view of them as endpoints, the scrape that refreshes those
 * endpoints' metrics, and (when a KV-event sink is given) the per-engine event batching.
 *
 *   engines[i]      SimEngine with the fleet's profile, capacity and seed
 *   endpoints[i]    id `sim-<i>`, metrics refreshed by refresh() at most every scrapeIntervalMs
 *   KV events       events one engine emits at one clock time form one batch; flush() hands the
 *                   pending batches to the sink engine by engine, in order, seq 0, 1, ... per engine
 */
import { setFlagsFromString } from 'node:v8';
import type { ManualClock } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import type { KvEvent, KvEventBatch, KvEventSink } from '../events/types.js';
import type { KvCacheEvent } from '../sim/block-manager.js';
import { SimEngine } from '../sim/engine.js';
import { getProfile, type ProfileId } from '../sim/profiles.js';
import type { SimTokenizer } from '../sim/tokenizer.js';
import type { CacheCounters } from './types.js';

/** The simulated fleet of a run. */
export interface FleetSpec {
  replicas: number;
  profile: ProfileId;
  /** KV capacity per replica in blocks (default: the profile's). */
  numGpuBlocks?: number;
  blockSize: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  seed: number;
}

/** What {@link createVirtualFleet} needs besides the spec. */
export interface VirtualFleetOptions {
  clock: ManualClock;
  tokenizer: SimTokenizer;
  model: string;
  /** Engine metrics refresh period (ms of simulated time), like the gateway's scrape interval. Default 50. */
  scrapeIntervalMs?: number;
  /** Receives the engines' KV events (batched per engine step); none are produced without it. */
  sink?: KvEventSink;
}

/** The fleet: engines, their endpoints, the scrape and the KV-event delivery. */
export interface VirtualFleet {
  ids: string[];
  engines: SimEngine[];
  endpoints: Endpoint[];
  /** Refreshes the endpoints' metrics when the last snapshot is at least one scrape interval old. */
  refresh(): void;
  /** Hands every pending KV-event batch to the sink (no-op without one). */
  flush(): Promise<void>;
  /** Prefix-cache counters per replica now. */
  counters(): CacheCounters[];
}

function toKvEvent(ev: KvCacheEvent): KvEvent {
  if (ev.type === 'BlockStored') {
    return { type: 'BlockStored', blockHashes: ev.blockHashes, parentBlockHash: ev.parentBlockHash, tokenIds: ev.tokenIds, blockSize: ev.blockSize, loraId: null, medium: ev.medium, loraName: null };
  }
  if (ev.type === 'BlockRemoved') return { type: 'BlockRemoved', blockHashes: ev.blockHashes, medium: ev.medium };
  return { type: 'AllBlocksCleared' };
}

/**
 * Per-engine event batching: events emitted at one clock time by one engine form one batch.
 * Engines with pending batches are listed (`#dirty`), so a flush costs the engines that emitted,
 * not the fleet size; they are flushed in engine order, as a scan of every engine would.
 */
class EventBatcher {
  #pending: { at: number; events: KvEvent[] }[][];
  #seq: bigint[];
  #dirty: number[] = [];
  constructor(n: number) {
    this.#pending = Array.from({ length: n }, () => []);
    this.#seq = Array.from({ length: n }, () => 0n);
  }
  push(engine: number, at: number, ev: KvCacheEvent): void {
    const q = this.#pending[engine];
    if (q.length === 0) this.#dirty.push(engine);
    const last = q[q.length - 1];
    if (last !== undefined && last.at === at) last.events.push(toKvEvent(ev));
    else q.push({ at, events: [toKvEvent(ev)] });
  }
  async flush(sink: KvEventSink, ids: readonly string[], model: string): Promise<void> {
    if (this.#dirty.length === 0) return;
    const dirty = this.#dirty.sort((a, b) => a - b);
    this.#dirty = [];
    for (const i of dirty) {
      const q = this.#pending[i];
      this.#pending[i] = [];
      for (const b of q) {
        const batch: KvEventBatch = { ts: b.at / 1000, events: b.events, dataParallelRank: null };
        await sink.applyBatch(ids[i], model, this.#seq[i]++, batch);
      }
    }
  }
}

/** Builds the simulated fleet of a virtual run (see the file comment). */
export function createVirtualFleet(spec: FleetSpec, o: VirtualFleetOptions): VirtualFleet {
  const { clock, tokenizer, sink } = o;
  const profile = getProfile(spec.profile);
  const n = spec.replicas;
  const ids = Array.from({ length: n }, (_, i) => `sim-${i}`);
  const batcher = sink !== undefined ? new EventBatcher(n) : undefined;
  const engines = ids.map(
    (_, i) =>
      new SimEngine({
        clock,
        stepModel: profile.step,
        blockSize: spec.blockSize,
        numGpuBlocks: spec.numGpuBlocks ?? profile.numGpuBlocks,
        maxNumSeqs: spec.maxNumSeqs ?? profile.maxNumSeqs,
        maxNumBatchedTokens: spec.maxNumBatchedTokens,
        seed: spec.seed,
        sampleToken: (r) => tokenizer.sampleToken(r),
        eosTokenId: tokenizer.eosTokenId,
        ...(batcher !== undefined ? { onKvEvent: (ev: KvCacheEvent) => batcher.push(i, clock.now(), ev) } : {}),
      }),
  );
  const endpoints: Endpoint[] = ids.map((id, i) => ({
    id,
    address: id,
    url: `virtual://${id}`,
    role: 'both',
    engine: 'vllm',
    index: i,
    labels: {},
    metrics: { waiting: 0, running: 0, kvUsage: 0, updatedAt: 0 },
    models: [o.model],
    healthy: true,
  }));
  const scrape = o.scrapeIntervalMs ?? 50;
  let lastScrape = -Infinity;
  return {
    ids,
    engines,
    endpoints,
    refresh() {
      const now = clock.now();
      if (now - lastScrape < scrape) return;
      lastScrape = now;
      for (let i = 0; i < n; i++) {
        const s = engines[i].stats();
        endpoints[i].metrics = {
          waiting: s.waiting, running: s.running, kvUsage: s.kvUsage, blockSize: s.blockSize, numGpuBlocks: s.numGpuBlocks,
          prefixQueries: s.prefixCacheQueries, prefixHits: s.prefixCacheHits, updatedAt: now,
        };
      }
    },
    async flush() {
      if (batcher !== undefined && sink !== undefined) await batcher.flush(sink, ids, o.model);
    },
    counters() {
      return engines.map((e) => {
        const s = e.stats();
        return { queries: s.prefixCacheQueries, hits: s.prefixCacheHits };
      });
    },
  };
}

/**
 * For a process that runs a large virtual bench (a batch job, not a server): lets V8's old
 * generation grow 30 % over the live set after each full GC instead of up to 4x while allocation
 * is fast, so peak RSS follows the live set (16 replicas x 12,000 requests: 519 -> 317 MiB at the
 * same CPU time; docs/benchmarks.md "Virtual engine speed"). Process-wide; call it from the
 * command that owns the process, not from library code.
 */
export function boundHeapGrowth(): void {
  setFlagsFromString('--heap-growing-percent=30');
}
