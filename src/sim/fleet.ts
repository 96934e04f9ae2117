/** Starts N simulated vLLM replicas in one process on consecutive loopback ports. */
import { systemClock, type Clock } from '../core/clock.js';
import { seededRng } from '../core/rng.js';
import type { SimPdOptions } from './pd/create-pd-connector.js';
import type { KvCacheEvent } from './block-manager.js';
import { getProfile, profileKvBlocks, type ProfileId } from './profiles.js';
import type { EventEncoding } from '../events/codec.js';
import { SimReplica, type SimKvEventsOptions } from './replica-server.js';
import { loadTokenizer } from './tokenizer.js';
import type { SimDialectOptions } from './dialects/types.js';

/** KV-cache event publishing of every replica of a fleet. */
export interface SimFleetKvEventsOptions {
  /** Payload encoding (default 'array'). */
  encoding?: EventEncoding;
  /** Address the sockets bind on (default: the fleet's host). */
  host?: string;
  /** Replica i binds its PUB on basePort + 2i and its replay ROUTER on basePort + 2i + 1; 0 = ephemeral (default). */
  basePort?: number;
  /** Connect every PUB to this address (the router's bound SUB, e.g. `tcp://127.0.0.1:5557`) instead of binding. */
  connect?: string;
  /** Open replay sockets (default true). */
  replay?: boolean;
  /** Topic override, e.g. to simulate a pod-id mismatch (default `kv@<host:port>@<model>`). */
  topic?: string | ((replica: { id: string; index: number; address: string; model: string }) => string);
  /** Batches kept for replay (default 10,000). */
  bufferSteps?: number;
  /** Send AllBlocksCleared on a restart (old behaviour; default false, like vLLM). */
  clearOnRestart?: boolean;
}

/** Where one replica publishes its KV-cache events. */
export interface SimKvEventsInfo {
  replicaId: string;
  /** HTTP `host:port` of the replica. */
  address: string;
  /** PUB address (bound, or the address connected to). */
  endpoint: string;
  /** Whether the PUB is bound (else it connected to `endpoint`). */
  bound: boolean;
  /** Replay ROUTER address, if any. */
  replayEndpoint?: string;
  topic: string;
}

/** Options of {@link startFleet}. */
export interface SimFleetOptions {
  /** Number of replicas (default 4). */
  replicas?: number;
  /** First port; replica i listens on basePort + i. 0 = ephemeral ports (tests). Default 8001. */
  basePort?: number;
  host?: string;
  /** Served model name (default 'meta-llama/Llama-3.1-8B-Instruct'). */
  model?: string;
  profile?: ProfileId;
  timeScale?: number;
  blockSize?: number;
  /** KV blocks per replica (default: the profile's H200 capacity at `gpuMemoryUtilization`). */
  numGpuBlocks?: number;
  /** vLLM `--gpu-memory-utilization` used to derive the KV capacity (default 0.9). */
  gpuMemoryUtilization?: number;
  /** vLLM `--enable-prompt-tokens-details`: usage carries `prompt_tokens_details.cached_tokens` (default off, like vLLM). */
  enablePromptTokensDetails?: boolean;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  enableChunkedPrefill?: boolean;
  /** Prefix caching on every replica (default true; false = a fleet started without it). */
  enablePrefixCaching?: boolean;
  maxModelLen?: number;
  /** A folder with a Hugging Face tokenizer.json (default: the built-in tokenizer). */
  tokenizerDir?: string;
  clock?: Clock;
  seed?: number;
  /** Receives each replica's KV-cache events, tagged with the replica id. */
  onKvEvent?: (replicaId: string, ev: KvCacheEvent) => void;
  /** Publish each replica's KV-cache events over ZeroMQ like vLLM. */
  kvEvents?: SimFleetKvEventsOptions;
  /** Every replica speaks this engine's HTTP surface (default vLLM). */
  dialect?: SimDialectOptions;
  /** /metrics waits for the current engine step (default: llama.cpp dialect only). */
  slowMetrics?: boolean;
  /** P/D KV connector of every replica, or per replica index (undefined = none). */
  pd?: SimPdOptions | ((index: number) => SimPdOptions | undefined);
}

/** A running simulated fleet. */
export interface SimFleet {
  readonly replicas: SimReplica[];
  /** Where each replica publishes KV-cache events (empty without `kvEvents`). */
  readonly kvEvents: SimKvEventsInfo[];
  /** Stops every replica. */
  close(): Promise<void>;
}

/** Starts the fleet; rejects (closing what started) if a port is taken. */
export async function startFleet(opts: SimFleetOptions = {}): Promise<SimFleet> {
  const n = opts.replicas ?? 4;
  const basePort = opts.basePort ?? 8001;
  const profile = getProfile(opts.profile ?? 'llama-3.1-8b');
  const tokenizer = loadTokenizer(opts.tokenizerDir);
  const clock = opts.clock ?? systemClock;
  const seed = opts.seed ?? 0;
  const replicas: SimReplica[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const id = `sim-${i}`;
      const r = new SimReplica({
        id,
        host: opts.host ?? '127.0.0.1',
        port: basePort === 0 ? 0 : basePort + i,
        modelName: opts.model ?? 'meta-llama/Llama-3.1-8B-Instruct',
        maxModelLen: opts.maxModelLen ?? profile.maxModelLen,
        tokenizer,
        clock,
        rng: seededRng(seed * 7919 + i + 1),
        onKvEvent: opts.onKvEvent ? (ev) => opts.onKvEvent!(id, ev) : undefined,
        enablePromptTokensDetails: opts.enablePromptTokensDetails,
        kvEvents: opts.kvEvents ? replicaKvEvents(opts.kvEvents, opts.host ?? '127.0.0.1', i) : undefined,
        ...(opts.dialect ? { dialect: opts.dialect } : {}),
        ...(opts.slowMetrics !== undefined ? { slowMetrics: opts.slowMetrics } : {}),
        pd: typeof opts.pd === 'function' ? opts.pd(i) : opts.pd,
        engine: {
          stepModel: profile.step,
          blockSize: opts.blockSize,
          numGpuBlocks: opts.numGpuBlocks ?? profileKvBlocks(profile.id, opts.gpuMemoryUtilization, opts.blockSize ?? 16),
          maxNumSeqs: opts.maxNumSeqs ?? profile.maxNumSeqs,
          maxNumBatchedTokens: opts.maxNumBatchedTokens ?? profile.maxNumBatchedTokens,
          enableChunkedPrefill: opts.enableChunkedPrefill,
          enablePrefixCaching: opts.enablePrefixCaching,
          timeScale: opts.timeScale,
          seed,
        },
      });
      replicas.push(r);
      await r.start();
      const topic = opts.kvEvents?.topic;
      if (typeof topic === 'function' && r.kvEventPublisher) {
        r.kvEventPublisher.topic = topic({ id, index: i, address: `${r.host}:${r.port}`, model: opts.model ?? 'meta-llama/Llama-3.1-8B-Instruct' });
      }
    }
  } catch (e) {
    await Promise.all(replicas.map((r) => r.close()));
    throw e;
  }
  const kvEvents: SimKvEventsInfo[] = [];
  for (const r of replicas) {
    const p = r.kvEventPublisher;
    if (p) kvEvents.push({ replicaId: r.id, address: `${r.host}:${r.port}`, endpoint: p.endpoint, bound: opts.kvEvents?.connect === undefined, replayEndpoint: p.replayEndpoint, topic: p.topic });
  }
  return { replicas, kvEvents, close: async () => void (await Promise.all(replicas.map((r) => r.close()))) };
}

/**
 * The fleet as a `kvroute serve --endpoints` list: `host:port` per replica, with
 * `;events=<PUB>` (when the PUB is bound) and `;replay=<ROUTER>` when it publishes KV events.
 */
export function fleetEndpointList(fleet: SimFleet): string {
  const kv = new Map(fleet.kvEvents.map((k) => [k.replicaId, k]));
  return fleet.replicas
    .map((r) => {
      const k = kv.get(r.id);
      let s = `${r.host}:${r.port}`;
      if (k?.bound) s += `;events=${k.endpoint}`;
      if (k?.replayEndpoint) s += `;replay=${k.replayEndpoint}`;
      if (r.pd !== undefined && r.pd.role !== 'both') s += `;role=${r.pd.role}`;
      return s;
    })
    .join(',');
}

/** Socket addresses of replica `i` under the fleet's KV-event options. */
function replicaKvEvents(o: SimFleetKvEventsOptions, fleetHost: string, i: number): SimKvEventsOptions {
  const h = o.host ?? fleetHost;
  const host = h.includes(':') ? `[${h}]` : h;
  const base = o.basePort ?? 0;
  const at = (k: number): string => `tcp://${host}:${base === 0 ? '*' : base + 2 * i + k}`;
  return {
    encoding: o.encoding,
    endpoint: o.connect ?? at(0),
    bind: o.connect === undefined,
    replayEndpoint: o.replay === false ? null : at(1),
    topic: typeof o.topic === 'string' ? o.topic : undefined,
    bufferSteps: o.bufferSteps,
    clearOnRestart: o.clearOnRestart,
  };
}
