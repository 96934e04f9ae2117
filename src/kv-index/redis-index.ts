/**
 * The block index in Redis, shared by every router replica (llm-d's `KVCACHE_INDEXER_REDIS_ADDR`),
 * on one Redis / Valkey node or on a Redis Cluster (`redis-cluster://host:port,...`).
 *
 * Key layout (redis-keys.ts, docs/kv-index.md; version 2): per endpoint a holdings hash (block
 * key -> tiers and recency generation), a recency log, an engine-hash map, a copies hash and a
 * fence hash, all under the endpoint's hash tag (one slot per endpoint), plus one `epoch` run id.
 *
 * Writes are Lua scripts (redis-scripts.ts) that touch only the keys they declare: an engine
 * batch is fenced and applied in parts of at most `maxBlocksPerCall` blocks (each part atomic and
 * far below the command timeout; the fence records the next part, so a retry resumes and nothing
 * is applied twice), and routers applying the same stream in any interleaving end in the same
 * state. Concurrent writes of several endpoints are coalesced into one call on a single node
 * (redis-write-queue.ts). Lookups are a read-only script per chunk of 512 keys (one call for all
 * candidates on a single node; on a cluster one per candidate, sent together and pipelined per
 * node by ioredis); each candidate stops at its first missing key and the next chunk is read
 * only for candidates still going. After a lookup the holders' recency and TTLs are touched in the
 * background (redis-touch.ts), at most once per key per `touchIntervalMs`.
 *
 * Run id: every endpoint's fence hash records the run id it was written under. A write that finds
 * no fence (a new endpoint, or its data gone) or another run's fence makes the client read the
 * `epoch` key: when that is missing or changed the index content is gone and `onIndexLost`
 * listeners fire (ingestion then replays each endpoint's stream from 0); otherwise the write is
 * retried as verified and takes the endpoint over.
 *
 * Failure behaviour: no offline queue, short command timeouts, no resend after a reconnect, so
 * with Redis down every call rejects at once with KVR_ERR_INDEX_UNAVAILABLE (the precise scorer
 * then falls back to approximate routing) and `stats().available` is false; ioredis reconnects
 * by itself (and follows slot moves on a cluster).
 */
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { keyFromString, keyToString, type RouterKey } from './block-keys.js';
import { type ApplyOutcome, type BlockKey, type EngineBatch, type KvBlockIndex, type PrefixRun } from './kv-block-index.js';
import { RedisIndexCalls } from './redis-calls.js';
import { resolveRedisIndexOptions, type RedisBlockIndexOptions, type ResolvedRedisIndexOptions } from './redis-index-options.js';
import { checkEndpointId, checkPrefix, endpointKeys, engineParts, epochKey, keyParts, type OpPart } from './redis-keys.js';
import { RedisToucher } from './redis-touch.js';
import { RedisWriteQueue, type SectionReply, type WriteSection } from './redis-write-queue.js';
import { DEFAULT_OTHER_TIER_WEIGHT, DEFAULT_TIER_WEIGHTS, TierWeighter } from './tiers.js';
import type { IndexStats } from './types.js';

export type { RedisBlockIndexOptions };

/** Part ids of one ingestion part's script calls: part * PART_STRIDE + call. */
const PART_STRIDE = 65_536;
/** Keys per lookup script call (bounds the time Redis spends in one call). */
const LOOKUP_CHUNK = 512;
const CODE: Record<number, ApplyOutcome> = { 0: 'stale', 1: 'applied', 2: 'restarted', 3: 'rebased' };
const UNFENCED: [string, string, string, string, string] = ['', '0', 'next', '0', '0'];

/** The Redis {@link KvBlockIndex}. */
export class RedisBlockIndex implements KvBlockIndex {
  readonly backend = 'redis' as const;
  readonly shared = true;
  readonly prefix: string;
  /** True on a Redis Cluster (one script call per endpoint). */
  readonly cluster: boolean;
  readonly #calls: RedisIndexCalls;
  readonly #opts: ResolvedRedisIndexOptions;
  readonly #weighter: TierWeighter;
  readonly #clock: Clock;
  readonly #runId: () => string;
  readonly #lost: (() => void)[] = [];
  readonly #resolveCache = new Map<string, Map<bigint, RouterKey>>();
  /** Endpoints written by this router -> when their TTLs were last refreshed (clock ms). */
  readonly #known = new Map<string, number>();
  readonly #lookupHead: string[];
  readonly #writes: RedisWriteQueue;
  readonly #toucher: RedisToucher;
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
    checkPrefix(this.prefix);
    this.#opts = resolveRedisIndexOptions(opts);
    this.#weighter = new TierWeighter(opts.tierWeights ?? DEFAULT_TIER_WEIGHTS, opts.otherTierWeight ?? DEFAULT_OTHER_TIER_WEIGHT);
    this.#clock = opts.clock ?? systemClock;
    this.#runId = opts.runId ?? randomUUID;
    this.#calls = new RedisIndexCalls(opts.url ?? 'redis://127.0.0.1:6379', this.prefix, {
      commandTimeoutMs: this.#opts.commandTimeoutMs,
      ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
      ...(opts.maxReconnectDelayMs !== undefined ? { maxReconnectDelayMs: opts.maxReconnectDelayMs } : {}),
    });
    this.cluster = this.#calls.cluster;
    const tiers = this.#weighter.entries();
    this.#lookupHead = [String(tiers.length), ...tiers.flatMap(([t, w]) => [t, String(w)]), String(this.#weighter.other)];
    const consts: [number, number, number] = [this.#opts.clockToleranceS, this.#opts.ttlSeconds, this.#opts.maxKeysPerEndpoint];
    this.#writes = new RedisWriteQueue({ send: (s) => this.#calls.apply(this.#epoch as string, consts, s), groupOf: (ep) => (this.cluster ? ep : ''), maxBlocks: this.#opts.maxBlocksPerCall });
    this.#toucher = new RedisToucher({
      clock: this.#clock,
      intervalMs: this.#opts.touchIntervalMs,
      maxKeys: Math.min(this.#opts.maxBlocksPerCall, 1_000),
      send: (keys, holders) => this.#calls.touch(this.#opts.ttlSeconds, keys, holders),
    });
    this.#calls.client.on('error', () => {
      // Connection errors surface as rejected calls and available=false; ioredis retries.
    });
    this.#calls.client.on('ready', () => {
      this.#sync().catch(() => undefined);
    });
  }

  /** Connects and reads (or creates) the run id; rejects with KVR_ERR_INDEX_UNAVAILABLE when Redis cannot be reached (it keeps retrying in the background). */
  async connect(): Promise<void> {
    try {
      if (this.#calls.client.status === 'wait') await this.#calls.client.connect();
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
    const strs: string[] = [];
    try {
      this.#ensureReady();
      let alive = Array.from({ length: n }, (_, c) => c).filter((c) => endpointIds[c] !== '');
      for (let i = 0; i < limit && alive.length > 0; ) {
        const end = Math.min(limit, i + LOOKUP_CHUNK);
        const chunk: string[] = [];
        for (let k = i; k < end; k++) chunk.push(keyToString(keys[k] as number));
        for (const s of chunk) strs.push(s);
        const got = await this.#calls.lookup(alive.map((c) => endpointIds[c]), this.#lookupHead, chunk);
        const next: number[] = [];
        alive.forEach((c, j) => {
          runs[c] += got[j][0];
          weights[c] += got[j][1];
          if (got[j][0] === end - i) next.push(c);
        });
        alive = next;
        i = end;
      }
    } catch (err) {
      throw this.#fail(err);
    }
    this.#healthy = true;
    const holders: [string, number][] = [];
    for (let c = 0; c < n; c++) if (runs[c] > 0) holders.push([endpointIds[c], runs[c]]);
    if (holders.length > 0) this.#toucher.touch(strs, holders);
    const out = new Array<PrefixRun>(n);
    for (let c = 0; c < n; c++) out[c] = { blocks: runs[c], weighted: weights[c] };
    return out;
  }

  async add(endpointId: string, tier: string, keys: ArrayLike<RouterKey>): Promise<void> {
    checkEndpointId(endpointId);
    for (const part of keyParts('A', tier, keys, this.#opts.maxBlocksPerCall)) await this.#write(endpointId, UNFENCED, part);
  }

  async remove(endpointId: string, tier: string, keys: ArrayLike<RouterKey>): Promise<void> {
    checkEndpointId(endpointId);
    for (const part of keyParts('D', tier, keys, this.#opts.maxBlocksPerCall)) await this.#write(endpointId, UNFENCED, part);
  }

  async clearEndpoint(endpointId: string): Promise<void> {
    checkEndpointId(endpointId);
    await this.#write(endpointId, UNFENCED, { ops: ['C'], blocks: 1 });
    this.#resolveCache.delete(endpointId);
  }

  async applyEngineBatch(batch: EngineBatch): Promise<ApplyOutcome> {
    checkEndpointId(batch.endpointId);
    const parts = engineParts(batch, this.#opts.maxBlocksPerCall);
    // Part ids: ingestion part * 65,536 + call index; the last call of the last part completes it.
    const base = (batch.part ?? 0) * PART_STRIDE;
    const lastOfBatch = (batch.part ?? 0) + 1 >= (batch.parts ?? 1);
    const nextBase = lastOfBatch ? 0 : base + PART_STRIDE;
    if (parts.length >= PART_STRIDE) throw new KvrError('KVR_ERR_BAD_REQUEST', `engine batch too large: ${parts.length} calls of ${this.#opts.maxBlocksPerCall} blocks`);
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
    if (missing.length === 0 || endpointId === '') return out;
    const vals: (string | null)[] = [];
    try {
      this.#ensureReady();
      const mk = endpointKeys(this.prefix, endpointId)[2];
      for (let from = 0; from < missing.length; from += this.#opts.maxBlocksPerCall) {
        const fields: string[] = [];
        for (let j = from; j < Math.min(missing.length, from + this.#opts.maxBlocksPerCall); j++) fields.push(engineHashes[missing[j]].toString(16));
        for (const v of await this.#calls.client.hmget(mk, ...fields)) vals.push(v);
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

  /** Waits for the background touch in flight, then reads entry counts (per endpoint this router has written) and Redis memory (summed over a cluster's masters). */
  async refreshStats(): Promise<void> {
    await this.#toucher.idle();
    this.#ensureReady();
    const ids = [...this.#known.keys()];
    const [counts, bytes] = await Promise.all([this.#calls.counts(ids), this.#calls.usedMemory()]);
    const endpoints: Record<string, number> = {};
    let entries = 0;
    ids.forEach((id, i) => {
      if (counts[i] > 0) endpoints[id] = counts[i];
      entries += counts[i];
    });
    this.#snapshot = { entries, bytes, endpoints, at: this.#clock.now() };
  }

  /** Touch calls sent (for tests and benchmarks). */
  get touches(): number {
    return this.#toucher.sent;
  }

  /** Write script calls sent and write sections they carried (for benchmarks). */
  get writeCalls(): { calls: number; sections: number } {
    return { calls: this.#writes.calls, sections: this.#writes.sections };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#calls.client.disconnect(false);
  }

  #refresh(): void {
    if (this.#refreshing || !this.available) return;
    this.#refreshing = true;
    this.#snapshot.at = this.#clock.now();
    this.refreshStats()
      .catch(() => undefined)
      .finally(() => (this.#refreshing = false));
  }

  async #write(endpointId: string, fence: [string, string, string, string, string], part: OpPart): Promise<ApplyOutcome> {
    let reply: SectionReply;
    try {
      this.#ensureReady();
      const now = this.#clock.now();
      const last = this.#known.get(endpointId);
      const refresh = last === undefined || now - last >= this.#opts.touchIntervalMs;
      if (refresh && (last !== undefined || this.#known.size < 100_000)) this.#known.set(endpointId, now);
      const section: WriteSection = { endpointId, verified: false, refresh, fence, ops: part.ops, blocks: Math.max(1, part.blocks) };
      reply = await this.#writes.submit(section);
      if (reply[0] < 0) {
        // No fence, or another run's: is the index itself gone (epoch missing or changed)?
        const had = this.#epoch;
        await this.#sync();
        if (this.#epoch !== had) return 'lost';
        reply = await this.#writes.submit({ ...section, verified: true, refresh: true });
        if (reply[0] < 0) throw new Error(`the endpoint's run id did not settle (code ${reply[0]})`);
      }
    } catch (err) {
      throw this.#fail(err);
    }
    this.#healthy = true;
    this.#counts.added += reply[1];
    this.#counts.removed += reply[2];
    this.#counts.evicted += reply[3];
    return CODE[reply[0]] ?? 'stale';
  }

  #connected(): boolean {
    return !this.#closed && this.#calls.client.status === 'ready' && this.#epoch !== undefined;
  }

  #ensureReady(): void {
    if (this.#closed) throw new KvrError('KVR_ERR_INDEX_UNAVAILABLE', 'block index closed');
    if (!this.#connected()) throw new Error(`not connected (status ${this.#calls.client.status})`);
  }

  /** Reads the run id, creating it when missing; fires the lost listeners when it changed. */
  #sync(): Promise<void> {
    if (this.#syncing) return this.#syncing;
    const run = async (): Promise<void> => {
      const key = epochKey(this.prefix);
      let id = await this.#calls.client.get(key);
      if (id === null) {
        await this.#calls.client.set(key, this.#runId(), 'NX');
        id = await this.#calls.client.get(key);
      }
      this.#healthy = true;
      if (id === null || id === this.#epoch) return;
      const had = this.#epoch;
      this.#epoch = id;
      this.#resolveCache.clear();
      this.#known.clear();
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
