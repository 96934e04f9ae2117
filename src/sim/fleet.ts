/** Starts N simulated vLLM replicas in one process on consecutive loopback ports. */
import { systemClock, type Clock } from '../core/clock.js';
import { seededRng } from '../core/rng.js';
import type { KvCacheEvent } from './block-manager.js';
import { getProfile, type ProfileId } from './profiles.js';
import { SimReplica } from './replica-server.js';
import { loadTokenizer } from './tokenizer.js';

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
  numGpuBlocks?: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  enableChunkedPrefill?: boolean;
  maxModelLen?: number;
  /** A folder with a Hugging Face tokenizer.json (default: the built-in tokenizer). */
  tokenizerDir?: string;
  clock?: Clock;
  seed?: number;
  /** Receives each replica's KV-cache events, tagged with the replica id. */
  onKvEvent?: (replicaId: string, ev: KvCacheEvent) => void;
}

/** A running simulated fleet. */
export interface SimFleet {
  readonly replicas: SimReplica[];
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
        engine: {
          stepModel: profile.step,
          blockSize: opts.blockSize,
          numGpuBlocks: opts.numGpuBlocks ?? profile.numGpuBlocks,
          maxNumSeqs: opts.maxNumSeqs,
          maxNumBatchedTokens: opts.maxNumBatchedTokens,
          enableChunkedPrefill: opts.enableChunkedPrefill,
          timeScale: opts.timeScale,
          seed,
        },
      });
      replicas.push(r);
      await r.start();
    }
  } catch (e) {
    await Promise.all(replicas.map((r) => r.close()));
    throw e;
  }
  return { replicas, close: async () => void (await Promise.all(replicas.map((r) => r.close()))) };
}
