/**
 * Precise prefix routing assembled from its parts, for the gateway and the benchmarks:
 *
 *   tokenizer (src/tokenize) ─┐
 *                             ├─> KvCacheServices ──> precise-prefix-cache-scorer
 *   block index (memory|Redis)┘        ^
 *        ^                             │ requestKeys / lookup
 *        └── KvIndexer <── EventIngestor <── vLLM KV events over ZeroMQ (connect or bind)
 *
 * `createKvCache` builds the tokenizer, the index and the indexer (everything the scheduler
 * needs), `attach(endpoints)` then starts event ingestion for the router's endpoints. When the
 * index loses its content (Redis flushed or restarted) every stream is replayed from 0.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { KvrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import type { StreamLimits } from '../events/endpoint-stream.js';
import { EventIngestor, ingestEndpointOf } from '../events/event-ingestor.js';
import { ProcessStartSignal } from '../events/restart-signal.js';
import type { EventIngestStats, KvEventSink } from '../events/types.js';
import { createBlockIndex } from '../kv-index/create-block-index.js';
import { parseRedisTarget } from '../kv-index/redis-client.js';
import type { InstrumentedBlockIndex } from '../kv-index/instrumented-index.js';
import { KvIndexer } from '../kv-index/kv-indexer.js';
import type { IndexStats } from '../kv-index/types.js';
import type { KvCacheServices } from '../scheduling/kv-cache-services.js';
import { createRequestTokenizer, type RequestTokenizer, type RequestTokenizerConfig } from '../tokenize/request-tokenizer.js';

/** Where the router's tokenizer comes from. */
export type TokenizerSource = RequestTokenizerConfig['source'];

/** Options of {@link createKvCache}. */
export interface KvCacheOptions {
  /** Engine block size in tokens (vLLM's --block-size; default 16). */
  blockSize?: number;
  tokenizer: TokenizerSource;
  /** Options of a local tokenizer (`dir`, `builtin`): prefix cache, worker threads and their queue, fast BPE. */
  tokenizerOptions?: Omit<RequestTokenizerConfig, 'source'>;
  /** Redis URL or host:port of a shared index; memory when absent. */
  redis?: string;
  /** Redis key prefix (default `kvroute:`). */
  redisPrefix?: string;
  /** Memory index bounds. */
  maxEntries?: number;
  /** 'connect' (a SUB per endpoint with `events=`), 'bind' (one SUB pods connect to), or 'off'. */
  events?: 'connect' | 'bind' | 'off';
  /** Bind mode: the SUB's address (default tcp://127.0.0.1:5557: loopback; bind a routable address explicitly). */
  bindAddress?: string;
  /** Bind mode: publisher addresses / CIDRs allowed to connect (ZeroMQ ZAP); default anyone. */
  allowFrom?: readonly string[];
  /** Ingestion caps (message bytes, blocks per event, queue bytes, slice size); defaults in STREAM_DEFAULTS. */
  eventLimits?: StreamLimits;
  /** Periodic check of every stream against its replay socket, ms (default 30,000; 0 = off). */
  resyncIntervalMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** Precise routing's running parts. */
export interface KvCache {
  readonly services: KvCacheServices;
  readonly tokenizer: RequestTokenizer;
  readonly index: InstrumentedBlockIndex;
  readonly indexer: KvIndexer;
  /** Observes the time of each tokenization (seconds); the router points it at its histogram. */
  onTokenized: ((seconds: number) => void) | undefined;
  /** Present once {@link KvCache.attach} ran with events on. */
  readonly ingestor: EventIngestor | undefined;
  /**
   * Where the datalayer reports each endpoint's `process_start_time_seconds` (from its scrapes):
   * a changed value confirms a restart and resets the endpoint's index entries.
   */
  readonly restartSignal: ProcessStartSignal;
  /** Starts event ingestion for `endpoints` (bind mode binds here). */
  attach(endpoints: readonly Endpoint[]): Promise<void>;
  /** An endpoint joined the pool. */
  addEndpoint(endpoint: Endpoint): void;
  /** An endpoint restarted (its cache is empty): its index entries go, its subscription stays. */
  resetEndpoint(endpointId: string): Promise<void>;
  /** An endpoint left the pool for good: its subscription closes and its entries go. */
  removeEndpoint(endpointId: string): Promise<void>;
  eventStats(): EventIngestStats | undefined;
  indexStats(): IndexStats;
  close(): Promise<void>;
}

/** Builds tokenizer, index and indexer; see the file comment. Throws KvrError on bad options. */
export async function createKvCache(o: KvCacheOptions): Promise<KvCache> {
  const blockSize = o.blockSize ?? 16;
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 1024) {
    throw new KvrError('KVR_ERR_USAGE', `block size ${blockSize} is not valid; pass the engines' --block-size (vLLM's default is 16)`);
  }
  const logger = o.logger ?? silentLogger;
  const clock = o.clock ?? systemClock;
  if (o.tokenizerOptions !== undefined && o.tokenizer.type !== 'dir' && o.tokenizer.type !== 'builtin') {
    throw new KvrError('KVR_ERR_USAGE', `tokenizer options (e.g. --tokenizer-max-queued) apply to a local tokenizer; pass --tokenizer <folder with tokenizer.json> or builtin (this source is '${o.tokenizer.type}')`);
  }
  const tokenizer = createRequestTokenizer({ ...o.tokenizerOptions, source: o.tokenizer });
  const index = await createBlockIndex(
    o.redis !== undefined
      ? { backend: 'redis', options: { url: redisUrl(o.redis), ...(o.redisPrefix !== undefined ? { prefix: o.redisPrefix } : {}) } }
      : { backend: 'memory', options: o.maxEntries !== undefined ? { maxEntries: o.maxEntries } : {} },
    logger,
  );
  let ingestor: EventIngestor | undefined;
  const indexer = new KvIndexer({
    index,
    logger,
    onIndexLost: () => {
      logger.warn('block index lost its content; replaying every endpoint\'s KV events from 0');
      ingestor?.resyncAll();
    },
  });
  const mode = o.events ?? 'connect';
  const resetListeners: ((endpointId: string) => void)[] = [];
  const announceReset = (id: string): void => {
    for (const l of resetListeners) l(id);
  };
  // The ingestor's sink: the indexer, plus telling the scorer when an endpoint's cache is gone.
  const restartSignal = new ProcessStartSignal();
  const sink: KvEventSink = {
    async applyBatch(endpointId, model, seq, batch, part) {
      await indexer.applyBatch(endpointId, model, seq, batch, part);
      if (batch.events.some((e) => e.type === 'AllBlocksCleared')) announceReset(endpointId);
    },
    async resetEndpoint(endpointId) {
      await indexer.resetEndpoint(endpointId);
      announceReset(endpointId);
    },
  };
  const services: KvCacheServices = {
    blockSize,
    tokenize: async (req) => {
      req.signal?.throwIfAborted(); // the client went away: do not tokenize for nobody
      const t0 = clock.now();
      const ids = await tokenizer.tokenize(req);
      cache.onTokenized?.((clock.now() - t0) / 1000);
      return ids;
    },
    requestKeys: (model, tokens) => indexer.requestKeys(model, tokens, blockSize),
    lookup: (keys, ids) => index.lookup(keys as ArrayLike<number>, ids),
    onEndpointReset: (l) => void resetListeners.push(l),
  };
  const addEndpoint = (ep: Endpoint): void => {
    if (ingestor === undefined) return;
    const ie = ingestEndpointOf(ep) ?? (mode === 'bind' ? { id: ep.id, address: ep.address } : undefined);
    if (ie === undefined) {
      logger.warn({ endpoint: ep.id }, 'endpoint has no KV events address (events=tcp://host:port); precise routing will not see its cache');
      return;
    }
    ingestor.add(ie);
  };
  const cache: KvCache = {
    onTokenized: undefined,
    services,
    tokenizer,
    index,
    indexer,
    get ingestor() {
      return ingestor;
    },
    restartSignal,
    async attach(endpoints) {
      tokenizer.useEndpoints(() => endpoints);
      if (mode === 'off' || ingestor !== undefined) return;
      ingestor = new EventIngestor({
        sink,
        mode,
        clock,
        logger,
        ...(o.bindAddress !== undefined ? { bindAddress: o.bindAddress } : {}),
        ...(o.allowFrom !== undefined ? { allowFrom: o.allowFrom } : {}),
        ...(o.eventLimits ?? {}),
        ...(o.resyncIntervalMs !== undefined ? { resyncIntervalMs: o.resyncIntervalMs } : {}),
        restartSignal,
      });
      await ingestor.start();
      for (const ep of endpoints) addEndpoint(ep);
    },
    addEndpoint,
    async resetEndpoint(id) {
      // With a replay socket the endpoint's event stream verifies the restart and resets itself
      // once (EventIngestor.verifyRestart); the scorer forgets its speculative entries at once.
      if (!ingestor?.verifyRestart(id)) await indexer.resetEndpoint(id);
      announceReset(id);
    },
    async removeEndpoint(id) {
      restartSignal.forget(id);
      await ingestor?.remove(id);
      await indexer.forgetEndpoint(id);
    },
    eventStats: () => ingestor?.stats(),
    indexStats: () => indexer.stats(),
    async close() {
      await ingestor?.close();
      await tokenizer.close();
      await index.close();
    },
  };
  return cache;
}

/**
 * A Redis address as the index takes it: `host:port` -> `redis://host:port`; redis:// and
 * rediss:// URLs and `redis-cluster://host1:port1,host2:port2` (Redis Cluster) as given; anything
 * else is refused with the accepted forms (KVR_ERR_USAGE).
 */
export function redisUrl(addr: string): string {
  const t = parseRedisTarget(addr);
  return t.kind === 'node' ? t.url : addr.trim();
}

/**
 * The tokenizer source from a command-line value: `builtin` (the simulator's tokenizer), an
 * `http(s)://` URL (ask that vLLM endpoint's /tokenize), or a folder holding tokenizer.json (the
 * recommended, local source). Without a value, the pool's own endpoints tokenize, round robin,
 * each in its engine's format (one round trip per request, no single replica as hot spot).
 */
export function tokenizerSourceFrom(value: string | undefined, firstEndpointUrl: string | undefined): TokenizerSource {
  const v = value?.trim();
  if (v === undefined || v === '') {
    if (firstEndpointUrl === undefined) throw new KvrError('KVR_ERR_USAGE', 'precise routing needs a tokenizer: pass --tokenizer <folder with tokenizer.json | builtin | http://endpoint>');
    return { type: 'endpoints' };
  }
  if (v === 'builtin') return { type: 'builtin' };
  if (/^https?:\/\//.test(v)) return { type: 'endpoint', url: v };
  return { type: 'dir', dir: v };
}
