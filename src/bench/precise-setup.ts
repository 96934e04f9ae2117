/**
 * Where precise prefix routing plugs into the benchmark. A strategy whose configuration uses
 * `precise-prefix-cache-scorer` asks for "KV events on": the runner calls a
 * {@link PreciseSetupFactory} once per strategy run (fresh fleet, fresh index) and
 *
 * - passes `setup.services` to the scheduler (`buildSchedulerWithConfig({ kvCache })`);
 * - virtual engine: converts each simulated engine's KvCacheEvents into one `KvEventBatch` per
 *   engine step and hands them, in order, to `setup.sink.applyBatch(endpointId, model, seq, batch)`
 *   before every scheduling decision;
 * - live engine: the fleet publishes its events over ZeroMQ; the setup subscribes itself (it gets
 *   the endpoints' ids and URLs) and `sink` is not used.
 *
 * {@link defaultPreciseSetup} is THE place the router's real services (tokenizer + block index +
 * event ingestion, src/app/kv-cache.ts) are plugged in. Until then it returns the bench's
 * reference setup in virtual mode (an exact in-process index keyed on the simulator's own block
 * hashes, fed by the engines' events: the best a precise index can know) and `undefined` in live
 * mode, where precise strategies are skipped with a note.
 */
import type { Clock } from '../core/clock.js';
import type { InferenceRequest } from '../core/request.js';
import type { KvEventBatch, KvEventSink } from '../events/types.js';
import type { BlockKey, KvCacheServices, PrefixRun } from '../scheduling/kv-cache-services.js';
import { extendBlockHashes } from '../sim/block-hash.js';
import { createKvCache } from '../app/kv-cache.js';
import { KvIndexer } from '../kv-index/kv-indexer.js';
import { MemoryBlockIndex } from '../kv-index/memory-index.js';
import type { RouterKvCache } from '../server/router.js';

/** Memo key under which the runners store a request's exact prompt token ids (virtual engine). */
export const BENCH_TOKENS_MEMO = 'bench/prompt-tokens';

/** What a {@link PreciseSetupFactory} is told. */
export interface PreciseSetupContext {
  mode: 'virtual' | 'live';
  clock: Clock;
  model: string;
  /** Engine block size in tokens. */
  blockSize: number;
  /** The endpoints as the scheduler names them (`id`), with their base URL and KV-event sockets in live mode. */
  endpoints: { id: string; url?: string; events?: string; replay?: string }[];
}

/** Precise routing services for one strategy run. */
export interface PreciseSetup {
  services: KvCacheServices;
  /** Receives the engines' event batches (virtual engine); absent when the setup subscribes itself. */
  sink?: KvEventSink;
  /** Live engine: the router's event ingestion + index, handed to `startRouter` (which closes it). */
  routerKvCache?: RouterKvCache;
  /** One line for the report (which index, fed how). */
  description: string;
  close(): Promise<void>;
}

/** Builds precise services for a run; `undefined` = not available in this mode (strategy skipped). */
export type PreciseSetupFactory = (ctx: PreciseSetupContext) => Promise<PreciseSetup | undefined>;

/**
 * The factory the CLI uses: the router's own parts. Virtual engine: kvroute's KvIndexer over the
 * in-memory block index, fed the engines' events in order. Live engine: `createKvCache` (built-in
 * tokenizer, memory index, a ZeroMQ subscriber per replica), attached by the router itself.
 */
export const defaultPreciseSetup: PreciseSetupFactory = async (ctx) => (ctx.mode === 'virtual' ? routerPreciseSetup(ctx) : livePreciseSetup(ctx));

/** The prompt tokens the virtual runner memoized on the request ({@link BENCH_TOKENS_MEMO}). */
async function tokensFromMemo(req: InferenceRequest): Promise<readonly number[]> {
  const t = req.memo.get(BENCH_TOKENS_MEMO) as readonly number[] | undefined;
  if (t === undefined) throw new Error(`request ${req.id} carries no prompt tokens`);
  return t;
}

/** Virtual engine: the router's KvIndexer + memory index; tokens from the request memo. */
export function routerPreciseSetup(ctx: PreciseSetupContext): PreciseSetup {
  const index = new MemoryBlockIndex();
  const indexer = new KvIndexer({ index });
  const bs = ctx.blockSize;
  const services: KvCacheServices = {
    blockSize: bs,
    tokenize: tokensFromMemo,
    requestKeys: (model, tokens) => indexer.requestKeys(model, tokens, bs),
    lookup: (keys, ids) => index.lookup(keys as ArrayLike<number>, ids),
  };
  return { services, sink: indexer, description: 'kvroute KvIndexer over the in-memory block index, fed the engines\' KV events', close: () => index.close() };
}

/** Live engine: the router's full precise runtime over ZeroMQ; undefined when the replicas publish no events. */
export async function livePreciseSetup(ctx: PreciseSetupContext): Promise<PreciseSetup | undefined> {
  if (!ctx.endpoints.every((e) => e.events !== undefined)) return undefined;
  const kv = await createKvCache({ blockSize: ctx.blockSize, tokenizer: { type: 'builtin' }, events: 'connect', clock: ctx.clock });
  return {
    services: kv.services,
    routerKvCache: kv,
    description: 'kvroute KV events over ZeroMQ (connect mode) into the in-memory block index, built-in tokenizer',
    close: async () => undefined, // the router closes it
  };
}

/**
 * The bench's reference precise setup (virtual engine only): tokens come from the request memo
 * ({@link BENCH_TOKENS_MEMO}), keys are the simulator's chained block hashes, and the index is a
 * set of hashes per endpoint maintained from BlockStored / BlockRemoved / AllBlocksCleared.
 */
export function referencePreciseSetup(ctx: PreciseSetupContext): PreciseSetup {
  const held = new Map<string, Set<bigint>>();
  for (const e of ctx.endpoints) held.set(e.id, new Set());
  const bs = ctx.blockSize;
  const services: KvCacheServices = {
    blockSize: bs,
    tokenize: tokensFromMemo,
    requestKeys(_model: string, tokens: readonly number[]): ArrayLike<BlockKey> {
      return extendBlockHashes(tokens, bs, []);
    },
    async lookup(keys: ArrayLike<BlockKey>, endpointIds: readonly string[]): Promise<PrefixRun[]> {
      return endpointIds.map((id) => {
        const s = held.get(id);
        let n = 0;
        if (s !== undefined) while (n < keys.length && s.has(keys[n] as bigint)) n++;
        return { blocks: n, weighted: n };
      });
    },
  };
  const sink: KvEventSink = {
    async applyBatch(endpointId: string, _model: string, _seq: bigint, batch: KvEventBatch): Promise<void> {
      let s = held.get(endpointId);
      if (s === undefined) held.set(endpointId, (s = new Set()));
      for (const ev of batch.events) {
        if (ev.type === 'BlockStored') for (const h of ev.blockHashes) s.add(h);
        else if (ev.type === 'BlockRemoved') for (const h of ev.blockHashes) s.delete(h);
        else s.clear();
      }
    },
    async resetEndpoint(endpointId: string): Promise<void> {
      held.get(endpointId)?.clear();
    },
  };
  return { services, sink, description: 'bench reference index (in-process, exact, fed by the simulated engines\' KV events)', close: async () => held.clear() };
}
