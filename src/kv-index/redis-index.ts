/**
 * The block index in Redis, shared by every router replica (llm-d's `KVCACHE_INDEXER_REDIS_ADDR`).
 *
 * Key layout under `prefix` (default `kvroute:`):
 *
 *   epoch            run id; created once; gone = Redis was flushed or restarted without data
 *   b:<key>          hash  endpoint id -> tiers held ("gpu" or "gpu,cpu")       TTL refreshed on store and lookup
 *   e:<endpoint>     zset  keys the endpoint holds, scored by recency            TTL refreshed on store and lookup
 *   m:<endpoint>     hash  engine hash (hex) -> key                              TTL refreshed on store and lookup
 *   n:<endpoint>     hash  "<key>|<tier>" -> extra copies (vLLM stores a recomputed block twice)
 *   f:<endpoint>     hash  stream fence {s: seq, t: ts, p: next part} and the recency counter q
 *
 * Writes are Lua scripts (redis-scripts.ts): an engine batch is fenced and applied in parts of at
 * most `maxBlocksPerCall` blocks (each part atomic and far below the command timeout; the fence
 * records the next part, so a retry resumes and nothing is applied twice), and routers applying
 * the same stream in any interleaving end in the same state. Arguments are built in loops, never
 * spread from a batch-sized array (a 120k-block batch would overflow the stack). After a lookup
 * the keys it hit are touched (TTL refreshed, recency re-scored) in the background, at most once
 * per key per `touchIntervalMs`, so hot prefixes neither expire nor get evicted while read.
 * Lookups are a read-only script too, one call per chunk of 512 keys: for each key it reads
 * (`HMGET b:<key>`) only the candidates whose run is still going, and stops at the first key
 * that continues none; the next chunk is sent only for the candidates still going. One call per
 * chunk instead of a pipeline of one command per key: a pipeline of 500 `HGETALL`s spends most
 * of its time creating and parsing 500 commands and replies in the client (bench/kv-index-bench.ts).
 *
 * Failure behaviour: no offline queue, short command timeouts, no resend after a reconnect, so
 * with Redis down every call rejects at once with KVR_ERR_INDEX_UNAVAILABLE (the precise scorer
 * then falls back to approximate routing) and `stats().available` is false; ioredis reconnects
 * by itself. On every (re)connect and on every write the `epoch` run id is checked: when it is
 * missing or changed the index content is gone, and `onIndexLost` listeners fire (ingestion then
 * replays each endpoint's stream from 0).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { systemClock, type Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { keyFromString, keyToString, type RouterKey } from './block-keys.js';
import {
  DEFAULT_CLOCK_TOLERANCE_S,
  type ApplyOutcome,
  type BlockKey,
  type EngineBatch,
  type KvBlockIndex,
  type PrefixRun,
} from './kv-block-index.js';
import { APPLY_LUA, LOOKUP_LUA, TOUCH_LUA } from './redis-scripts.js';
import { checkTier, DEFAULT_OTHER_TIER_WEIGHT, DEFAULT_TIER_WEIGHTS, TierWeighter, type TierWeights } from './tiers.js';
import type { IndexStats } from './types.js';

/** Options of {@link RedisBlockIndex}. */
export interface RedisBlockIndexOptions {
  /** `redis://host:port[/db]` or `host:port` (default `redis://127.0.0.1:6379`). */
  url?: string;
  /** Prefix of every key (default `kvroute:`). */
  prefix?: string;
  /** Per-command timeout (default 500 ms). */
  commandTimeoutMs?: number;
  /** Connect timeout (default 1,000 ms); reconnect delays grow to `maxReconnectDelayMs` (1,000). */
  connectTimeoutMs?: number;
  maxReconnectDelayMs?: number;
  /** TTL of block, endpoint and fence keys, refreshed on store (default 86,400 s). */
  ttlSeconds?: number;
  /** Most keys per endpoint; past it the least recently stored or read keys (chain tails) are dropped (default 1,000,000). */
  maxKeysPerEndpoint?: number;
  /** Most blocks per write script call (default 2,000; bounds one call's time well below the command timeout). */
  maxBlocksPerCall?: number;
  /** A key hit by lookups has its TTL refreshed at most this often (default TTL / 8, at least 1,000 ms). */
  touchIntervalMs?: number;
  tierWeights?: TierWeights;
  otherTierWeight?: number;
  clockToleranceS?: number;
  /** Minimum interval between stats refreshes from Redis (default 5,000 ms). */
  statsIntervalMs?: number;
  /** Most engine hashes cached locally per endpoint to resolve parents (default 100,000). */
  resolveCacheSize?: number;
  clock?: Clock;
  /** Run id generator (default crypto.randomUUID). */
  runId?: () => string;
}

type ApplyReply = [number, number, number, number];
interface ScriptedRedis extends Redis {
  kvrApply(...args: string[]): Promise<ApplyReply>;
  kvrTouch(...args: string[]): Promise<number>;
  kvrLookup(...args: string[]): Promise<(number | string)[]>;
}

/** Part ids of one ingestion part's script calls: part * PART_STRIDE + call. */
const PART_STRIDE = 65_536;

/** Keys per lookup script call (bounds the time Redis spends in one call). */
const LOOKUP_CHUNK = 512;

const CODE: Record<number, ApplyOutcome> = { [-1]: 'lost', 0: 'stale', 1: 'applied', 2: 'restarted', 3: 'rebased' };

/** The Redis {@link KvBlockIndex}. */
export class RedisBlockIndex implements KvBlockIndex {
  readonly backend = 'redis' as const;
  readonly shared = true;
  readonly prefix: string;
  readonly #client: ScriptedRedis;
  readonly #opts: Required<Pick<RedisBlockIndexOptions, 'commandTimeoutMs' | 'ttlSeconds' | 'maxKeysPerEndpoint' | 'clockToleranceS' | 'statsIntervalMs' | 'resolveCacheSize' | 'maxBlocksPerCall' | 'touchIntervalMs'>>;
  /** Last touch (clock ms) per key string; bounded, cleared when full. */
  readonly #touched = new Map<string, number>();
  readonly #weighter: TierWeighter;
  readonly #clock: Clock;
  readonly #runId: () => string;
  readonly #lost: (() => void)[] = [];
  readonly #resolveCache = new Map<string, Map<bigint, RouterKey>>();
  readonly #known = new Set<string>();
  readonly #lookupHead: string[];
  #epoch: string | undefined;
  #syncing: Promise<void> | undefined;
  #closed = false;
  /** False from a failed call until the next call that succeeds (or the next reconnect). */
  #healthy = true;
  #counts = { added: 0, removed: 0, evicted: 0, lookups: 0, errors: 0 };
  #snapshot = { entries: 0, bytes: 0, endpoints: {} as Record<string, number>, at: -Infinity };
  #refreshing = false;

  constructor(opts: RedisBlockIndexOptions = {}) {
    this.prefix = opts.prefix ?? 'kvroute:';
    this.#opts = {
      commandTimeoutMs: opts.commandTimeoutMs ?? 500,
      ttlSeconds: opts.ttlSeconds ?? 86_400,
      maxKeysPerEndpoint: opts.maxKeysPerEndpoint ?? 1_000_000,
      clockToleranceS: opts.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S,
      statsIntervalMs: opts.statsIntervalMs ?? 5_000,
      resolveCacheSize: opts.resolveCacheSize ?? 100_000,
      maxBlocksPerCall: opts.maxBlocksPerCall ?? 2_000,
      touchIntervalMs: opts.touchIntervalMs ?? Math.max(1_000, ((opts.ttlSeconds ?? 86_400) * 1000) / 8),
    };
    if (!Number.isInteger(this.#opts.maxBlocksPerCall) || this.#opts.maxBlocksPerCall < 1) {
      throw new KvrError('KVR_ERR_CONFIG', `Redis index: maxBlocksPerCall must be an integer >= 1, got ${String(opts.maxBlocksPerCall)}`);
    }
    this.#weighter = new TierWeighter(opts.tierWeights ?? DEFAULT_TIER_WEIGHTS, opts.otherTierWeight ?? DEFAULT_OTHER_TIER_WEIGHT);
    this.#clock = opts.clock ?? systemClock;
    this.#runId = opts.runId ?? randomUUID;
    let url = opts.url ?? 'redis://127.0.0.1:6379';
    if (!/^rediss?:\/\//.test(url)) url = `redis://${url}`;
    const maxDelay = opts.maxReconnectDelayMs ?? 1_000;
    this.#client = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      commandTimeout: this.#opts.commandTimeoutMs,
      connectTimeout: opts.connectTimeoutMs ?? 1_000,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), maxDelay),
    }) as ScriptedRedis;
    this.#client.defineCommand('kvrApply', { lua: APPLY_LUA, numberOfKeys: 0 });
    this.#client.defineCommand('kvrLookup', { lua: LOOKUP_LUA, numberOfKeys: 0, readOnly: true });
    this.#client.defineCommand('kvrTouch', { lua: TOUCH_LUA, numberOfKeys: 0 });
    const tiers = this.#weighter.entries();
    this.#lookupHead = [this.prefix, String(tiers.length), ...tiers.flatMap(([t, w]) => [t, String(w)]), String(this.#weighter.other)];
    this.#client.on('error', () => {
      // Connection errors surface as rejected calls and available=false; ioredis retries.
    });
    this.#client.on('ready', () => {
      this.#sync().catch(() => undefined);
    });
  }

  /** Connects and reads (or creates) the run id; rejects with KVR_ERR_INDEX_UNAVAILABLE when Redis cannot be reached (it keeps retrying in the background). */
  async connect(): Promise<void> {
    try {
      if (this.#client.status === 'wait') await this.#client.connect();
      await this.#sync();
    } catch (err) {
      throw this.#fail(err);
    }
  }

  /** True when connected, the run id is known and the last call did not fail. */
  get available(): boolean {
    return this.#healthy && this.#connected();
  }

  async lookup(keys: ArrayLike<BlockKey>, endpointIds: readonly string[]): Promise<PrefixRun[]> {
    this.#counts.lookups++;
    const n = endpointIds.length;
    const runs = new Array<number>(n).fill(0);
    const weights = new Array<number>(n).fill(0);
    let limit = 0;
    while (limit < keys.length && typeof keys[limit] === 'number') limit++;
    try {
      this.#ensureReady();
      let alive = Array.from({ length: n }, (_, c) => c);
      for (let i = 0; i < limit && alive.length > 0; ) {
        const end = Math.min(limit, i + LOOKUP_CHUNK);
        const args = [...this.#lookupHead, String(alive.length)];
        for (const c of alive) args.push(endpointIds[c]);
        for (let k = i; k < end; k++) args.push(keyToString(keys[k] as number));
        const reply = await this.#client.kvrLookup(...args);
        const next: number[] = [];
        alive.forEach((c, j) => {
          const got = Number(reply[2 * j]);
          runs[c] += got;
          weights[c] += Number(reply[2 * j + 1]);
          if (got === end - i) next.push(c);
        });
        alive = next;
        i = end;
      }
    } catch (err) {
      throw this.#fail(err);
    }
    this.#healthy = true;
    let hit = 0;
    for (let c = 0; c < n; c++) hit = Math.max(hit, runs[c]);
    if (hit > 0) this.#touch(keys, hit);
    const out = new Array<PrefixRun>(n);
    for (let c = 0; c < n; c++) out[c] = { blocks: runs[c], weighted: weights[c] };
    return out;
  }

  async add(endpointId: string, tier: string, keys: ArrayLike<RouterKey>): Promise<void> {
    checkTier(tier);
    for (const part of this.#keyParts('A', tier, keys)) await this.#write(endpointId, ['', '0', 'next', '0', '0'], part);
  }

  async remove(endpointId: string, tier: string, keys: ArrayLike<RouterKey>): Promise<void> {
    checkTier(tier);
    for (const part of this.#keyParts('D', tier, keys)) await this.#write(endpointId, ['', '0', 'next', '0', '0'], part);
  }

  async clearEndpoint(endpointId: string): Promise<void> {
    await this.#write(endpointId, ['', '0', 'next', '0', '0'], ['C']);
    this.#resolveCache.delete(endpointId);
  }

  async applyEngineBatch(batch: EngineBatch): Promise<ApplyOutcome> {
    // Cut the ops into parts of at most maxBlocksPerCall blocks (validating everything first).
    const max = this.#opts.maxBlocksPerCall;
    const parts: string[][] = [[]];
    let inPart = 0;
    const room = (): string[] => {
      if (inPart >= max) {
        parts.push([]);
        inPart = 0;
      }
      return parts[parts.length - 1];
    };
    for (const op of batch.ops) {
      if (op.kind !== 'clear') checkTier(op.tier);
      if (op.kind === 'store' && op.keys.length !== op.engineHashes.length) {
        throw new KvrError('KVR_ERR_BAD_REQUEST', `store op: ${op.keys.length} keys for ${op.engineHashes.length} engine hashes`);
      }
    }
    for (const op of batch.ops) {
      if (op.kind === 'clear') {
        room().push('C');
        inPart++;
        continue;
      }
      const total = op.engineHashes.length;
      for (let from = 0; from < total; ) {
        const args = room();
        const n = Math.min(total - from, max - inPart);
        args.push(op.kind === 'remove' ? 'R' : 'S', op.tier, String(n));
        for (let j = from; j < from + n; j++) {
          args.push(op.engineHashes[j].toString(16));
          if (op.kind === 'store') args.push(keyToString(op.keys[j]));
        }
        inPart += n;
        from += n;
      }
    }
    // Part ids: ingestion part * 65,536 + call index; the last call of the last part completes it.
    const base = (batch.part ?? 0) * PART_STRIDE;
    const lastOfBatch = (batch.part ?? 0) + 1 >= (batch.parts ?? 1);
    const nextBase = lastOfBatch ? 0 : base + PART_STRIDE;
    if (parts.length >= PART_STRIDE) throw new KvrError('KVR_ERR_BAD_REQUEST', `engine batch too large: ${parts.length} calls of ${max} blocks`);
    let outcome: ApplyOutcome = 'stale';
    for (let p = 0; p < parts.length; p++) {
      const next = p + 1 < parts.length ? base + p + 1 : nextBase;
      const got = await this.#write(batch.endpointId, [String(batch.seq), String(batch.ts), batch.mode, String(base + p), String(next)], parts[p]);
      if (got === 'lost') return 'lost';
      if (p === 0) outcome = got;
      else if (outcome === 'stale' && got !== 'stale') outcome = 'applied'; // resumed a batch left incomplete
    }
    if (outcome === 'stale') return outcome;
    if (outcome !== 'applied') this.#resolveCache.delete(batch.endpointId);
    for (const op of batch.ops) {
      if (op.kind === 'clear') this.#resolveCache.delete(batch.endpointId);
      else if (op.kind === 'store') for (let j = 0; j < op.keys.length; j++) this.#cache(batch.endpointId, op.engineHashes[j], op.keys[j]);
      else {
        const c = this.#resolveCache.get(batch.endpointId);
        if (c !== undefined) for (const h of op.engineHashes) c.delete(h);
      }
    }
    return outcome;
  }

  async resolveEngineHashes(endpointId: string, engineHashes: readonly bigint[]): Promise<(RouterKey | undefined)[]> {
    const cache = this.#resolveCache.get(endpointId);
    const out = engineHashes.map((h) => cache?.get(h));
    const missing: number[] = [];
    out.forEach((k, i) => k === undefined && missing.push(i));
    if (missing.length === 0) return out;
    const vals: (string | null)[] = [];
    try {
      this.#ensureReady();
      for (let from = 0; from < missing.length; from += this.#opts.maxBlocksPerCall) {
        const fields: string[] = [];
        for (let j = from; j < Math.min(missing.length, from + this.#opts.maxBlocksPerCall); j++) fields.push(engineHashes[missing[j]].toString(16));
        const got = await this.#client.hmget(`${this.prefix}m:${endpointId}`, ...fields);
        for (const v of got) vals.push(v);
      }
    } catch (err) {
      throw this.#fail(err);
    }
    this.#healthy = true;
    missing.forEach((i, j) => {
      const v = vals[j];
      const k = v === null || v === undefined ? undefined : keyFromString(v);
      if (k !== undefined) {
        out[i] = k;
        this.#cache(endpointId, engineHashes[i], k);
      }
    });
    return out;
  }

  onIndexLost(listener: () => void): void {
    this.#lost.push(listener);
  }

  stats(): IndexStats {
    if (this.#clock.now() - this.#snapshot.at >= this.#opts.statsIntervalMs) this.#refresh();
    return {
      backend: 'redis',
      available: this.available,
      entries: this.#snapshot.entries,
      bytes: this.#snapshot.bytes,
      endpoints: { ...this.#snapshot.endpoints },
      ...this.#counts,
      unknownParents: 0,
    };
  }

  /** Reads entry counts (per endpoint this router has seen) and Redis memory now. */
  async refreshStats(): Promise<void> {
    this.#ensureReady();
    const ids = [...this.#known];
    const pipe = this.#client.pipeline();
    for (const id of ids) pipe.zcard(`${this.prefix}e:${id}`);
    pipe.info('memory');
    const replies = (await pipe.exec()) ?? [];
    const endpoints: Record<string, number> = {};
    let entries = 0;
    ids.forEach((id, i) => {
      const v = Number(replies[i]?.[1] ?? 0);
      if (v > 0) endpoints[id] = v;
      entries += v;
    });
    const info = String(replies[ids.length]?.[1] ?? '');
    const m = /used_memory:(\d+)/.exec(info);
    this.#snapshot = { entries, bytes: m ? Number(m[1]) : 0, endpoints, at: this.#clock.now() };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#client.disconnect(false);
  }

  #refresh(): void {
    if (this.#refreshing || !this.available) return;
    this.#refreshing = true;
    this.#snapshot.at = this.#clock.now();
    this.refreshStats()
      .catch(() => undefined)
      .finally(() => (this.#refreshing = false));
  }

  /** Plain add / remove ops, cut into parts of at most maxBlocksPerCall keys. */
  #keyParts(op: 'A' | 'D', tier: string, keys: ArrayLike<RouterKey>): string[][] {
    const out: string[][] = [];
    const max = this.#opts.maxBlocksPerCall;
    for (let from = 0; from < keys.length; from += max) {
      const n = Math.min(max, keys.length - from);
      const args = [op, tier, String(n)];
      for (let j = from; j < from + n; j++) args.push(keyToString(keys[j]));
      out.push(args);
    }
    return out;
  }

  /**
   * Refreshes, in the background, the TTL and recency of the first `hit` keys not touched lately:
   * one call in flight at a time, at most maxBlocksPerCall keys per call (the rest goes with a
   * later lookup), so touches never queue up in front of writes and lookups.
   */
  #touch(keys: ArrayLike<BlockKey>, hit: number): void {
    if (this.#touching) return;
    const now = this.#clock.now();
    const every = this.#opts.touchIntervalMs;
    const max = this.#opts.maxBlocksPerCall;
    const args = [this.prefix, String(this.#opts.ttlSeconds)];
    for (let i = 0; i < hit && args.length - 2 < max; i++) {
      const k = keyToString(keys[i] as number);
      const last = this.#touched.get(k);
      if (last !== undefined && now - last < every) continue;
      if (this.#touched.size >= 200_000) this.#touched.clear();
      this.#touched.set(k, now);
      args.push(k);
    }
    if (args.length === 2) return;
    this.#touches++;
    this.#touching = true;
    this.#client
      .kvrTouch(...args)
      .catch(() => {
        // Best effort: a missed refresh only shortens a key's life to its store-time TTL.
        for (let i = 2; i < args.length; i++) this.#touched.delete(args[i]);
      })
      .finally(() => (this.#touching = false));
  }

  #touching = false;

  /** Touch calls sent (for tests and benchmarks). */
  get touches(): number {
    return this.#touches;
  }

  #touches = 0;

  async #write(endpointId: string, fence: [string, string, string, string, string], ops: string[]): Promise<ApplyOutcome> {
    let reply: ApplyReply;
    try {
      this.#ensureReady();
      if (this.#known.size < 100_000) this.#known.add(endpointId);
      const o = this.#opts;
      reply = await this.#client.kvrApply(this.prefix, this.#epoch as string, endpointId, fence[0], fence[1], fence[2], String(o.clockToleranceS), String(o.ttlSeconds), String(o.maxKeysPerEndpoint), fence[3], fence[4], ...ops);
    } catch (err) {
      throw this.#fail(err);
    }
    this.#healthy = true;
    const outcome = CODE[reply[0]] ?? 'stale';
    this.#counts.added += reply[1];
    this.#counts.removed += reply[2];
    this.#counts.evicted += reply[3];
    if (outcome === 'lost') await this.#sync().catch(() => undefined);
    return outcome;
  }

  #connected(): boolean {
    return !this.#closed && this.#client.status === 'ready' && this.#epoch !== undefined;
  }

  #ensureReady(): void {
    if (this.#closed) throw new KvrError('KVR_ERR_INDEX_UNAVAILABLE', 'block index closed');
    if (!this.#connected()) throw new Error(`not connected (status ${this.#client.status})`);
  }

  /** Reads the run id, creating it when missing; fires the lost listeners when it changed. */
  #sync(): Promise<void> {
    if (this.#syncing) return this.#syncing;
    const run = async (): Promise<void> => {
      const key = `${this.prefix}epoch`;
      let id = await this.#client.get(key);
      if (id === null) {
        await this.#client.set(key, this.#runId(), 'NX');
        id = await this.#client.get(key);
      }
      this.#healthy = true;
      if (id === null || id === this.#epoch) return;
      const had = this.#epoch;
      this.#epoch = id;
      this.#resolveCache.clear();
      if (had !== undefined) {
        for (const l of this.#lost) {
          try {
            l();
          } catch {
            // A listener's failure must not stop the others.
          }
        }
      }
    };
    this.#syncing = run().finally(() => (this.#syncing = undefined));
    return this.#syncing;
  }

  #cache(endpointId: string, hash: bigint, key: RouterKey): void {
    let c = this.#resolveCache.get(endpointId);
    if (c === undefined) {
      if (this.#resolveCache.size >= 10_000) this.#resolveCache.clear();
      c = new Map();
      this.#resolveCache.set(endpointId, c);
    }
    if (c.size >= this.#opts.resolveCacheSize) c.delete(c.keys().next().value as bigint);
    c.set(hash, key);
  }

  #fail(err: unknown): KvrError {
    this.#counts.errors++;
    if (err instanceof KvrError) return err;
    this.#healthy = false;
    const msg = err instanceof Error ? err.message : String(err);
    return new KvrError(
      'KVR_ERR_INDEX_UNAVAILABLE',
      `block index unavailable (Redis: ${msg}); precise routing falls back to approximate until Redis answers again: check that Redis is running and reachable`,
      { cause: err },
    );
  }
}
