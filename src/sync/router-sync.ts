/**
 * RouterSync: active-active router replicas over one Redis Stream (design: docs/active-active.md).
 *
 * Publish (hot path, no I/O): as a scheduler observer, every local pick, first token and
 * completion becomes a compact record (src/sync/sync-records.ts) queued in memory and sent as ONE
 * `XADD <stream> MAXLEN ~ <maxLen> * r <router> b <batch>` per batch by a SyncPublisher
 * (src/sync/sync-publisher.ts): leading-edge batching (at once when no XADD is in flight and the
 * last started `flushMs` ago or more; else what queues meanwhile goes as one batch when both hold).
 * A heartbeat record is queued every `heartbeatMs`; it carries this router's in-flight requests
 * per endpoint, against which the others reconcile their entries of it (RemoteLoad.reconcile).
 *
 * Apply (a second connection): a loop of blocking `XREAD BLOCK <ms> STREAMS <stream> <lastId>`.
 * Other routers' records go through the scheduler's public methods: a pick's keys and cold flag
 * through `scheduler.applyRemotePick` (approximate prefix index, cold-request spreaders), its
 * in-flight work into {@link RemoteLoad}, whose per-endpoint sums feed `LoadTracker.setRemote`
 * (kept apart from local work). A remote entry expires `remoteTtlMs` after its pick; a router not
 * heard from for `deadAfterMs` (or that said bye) loses all its entries.
 *
 * Late start: before the first XREAD the loop replays the stream's last `replayEntries` entries
 * (XREVRANGE), oldest first, so a new replica knows what is cached where and what is in flight
 * before it serves; `start()` waits for that replay (at most `startWaitMs`). Entries of its own
 * router id (a restart with a fixed --router-id) teach it keys, never load.
 *
 * Redis down: publishing drops its batch (counted, logged at most every 10 s) and the loop retries
 * every `retryMs`; routing goes on with local state; when Redis is back, reading resumes from the
 * last applied id (a fresh, empty Redis simply has nothing older).
 */
import { hostname } from 'node:os';
import { Redis, type Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { KvrError } from '../core/errors.js';
import { createRedisClient, parseRedisTarget } from '../kv-index/redis-client.js';
import { silentLogger } from '../core/logger.js';
import type { RouterMetrics } from '../metrics/router-metrics.js';
import { predictedCachedTokens, promptTokensOf } from '../prefix/prefix-prediction.js';
import { isColdRequest } from '../scheduling/scorers/cold-request.js';
import type { RequestObserver, SchedulingContext } from '../scheduling/types.js';
import type { PickKeys, RemotePick } from './remote-pick.js';
import { RemoteLoad } from './remote-load.js';
import { SyncPublisher } from './sync-publisher.js';
import { decodeKeys, encodeKeys, parseBatch, streamIdMs, type SyncRecord } from './sync-records.js';

/** What RouterSync needs of the scheduler (KvrouteScheduler has it). */
export interface SyncableScheduler {
  addObserver(observer: RequestObserver): void;
  pickKeysOf(request: SchedulingContext['request']): PickKeys | undefined;
  applyRemotePick(pick: RemotePick): void;
  readonly load: { setRemote(endpointId: string, prefillTokens: number, inflight: number): void };
}

/** Options of {@link RouterSync}. */
export interface RouterSyncOptions {
  /** Redis URL (`redis://host:port`), `host:port`, or `redis-cluster://host1:port1,host2:port2` (Redis Cluster: the stream is one key, on one node). */
  url: string;
  /** This replica's id (default hostname:pid). Replicas must have distinct ids. */
  routerId?: string;
  scheduler: SyncableScheduler;
  /** Resolves endpoint ids in records to this router's endpoints. */
  endpoints: { get(id: string): Endpoint | undefined };
  clock: Clock;
  logger?: Logger;
  metrics?: RouterMetrics;
  /** Stream key (default `kvroute:sync`); replicas of one fleet share it. */
  stream?: string;
  /** Approximate stream cap in entries (default 20 000). */
  maxLen?: number;
  /** Least time between two XADDs' starts, ms (default 5; 0: only one in flight); a record queued after a quiet spell goes at once. */
  flushMs?: number;
  /** false: every batch waits `flushMs` from its first record (the behaviour before; default true). */
  flushLeading?: boolean;
  heartbeatMs?: number;
  /** A router not heard from this long loses its remote load (default 3 x heartbeat + 1 s). */
  deadAfterMs?: number;
  /** Remote in-flight entries expire this long after their pick (default 120 000). */
  remoteTtlMs?: number;
  /** Entries replayed at start (default 5 000; 0 = none). */
  replayEntries?: number;
  /** Longest wait for the start-up replay, ms (default 3 000). */
  startWaitMs?: number;
  /** XREAD block time, ms (default 1 000). */
  blockMs?: number;
  /** Pause after a Redis error, ms (default 500). */
  retryMs?: number;
}

/** Counters of {@link RouterSync}. */
export interface RouterSyncStats {
  routerId: string;
  connected: boolean;
  replayed: boolean;
  sent: number;
  /** XADD calls that carried them. */
  batches: number;
  applied: number;
  /** Pick records of other routers applied (replay included). */
  picksApplied: number;
  dropped: number;
  errors: number;
  /** Remote in-flight entries dropped because their router's heartbeat reported fewer. */
  reconciled: number;
  remoteInflight: number;
  remoteRouters: number;
  lagMs: number;
}

/** Default router id: host name and process id. */
export function defaultRouterId(): string {
  return `${hostname()}:${process.pid}`;
}

/** Shares picks and in-flight load between router replicas; see the file comment. */
export class RouterSync implements RequestObserver {
  readonly routerId: string;
  readonly #o: Required<Omit<RouterSyncOptions, 'metrics' | 'logger' | 'routerId'>>;
  readonly #metrics: RouterMetrics | undefined;
  readonly #log: Logger;
  readonly #pub: Redis | Cluster;
  readonly #sub: Redis | Cluster;
  readonly #remote: RemoteLoad;
  readonly #seen = new Map<string, number>();
  readonly #publisher: SyncPublisher;
  /** This router's own published assignments not completed yet: key request\0endpoint -> endpoint id. */
  readonly #mine = new Map<string, string>();
  readonly #mineByEndpoint = new Map<string, number>();
  #beatTimer: { cancel(): void } | undefined;
  #running = true;
  #replayed = false;
  #lastId = '$';
  #loop: Promise<void> = Promise.resolve();
  #lastWarn = -Infinity;
  #stats = { sent: 0, applied: 0, picksApplied: 0, dropped: 0, errors: 0, reconciled: 0, lagMs: 0 };

  private constructor(o: RouterSyncOptions) {
    const hb = o.heartbeatMs ?? 1_000;
    this.routerId = o.routerId ?? defaultRouterId();
    this.#o = {
      url: o.url, scheduler: o.scheduler, endpoints: o.endpoints, clock: o.clock, stream: o.stream ?? 'kvroute:sync', maxLen: o.maxLen ?? 20_000,
      flushMs: o.flushMs ?? 5, flushLeading: o.flushLeading ?? true, heartbeatMs: hb, deadAfterMs: o.deadAfterMs ?? 3 * hb + 1_000, remoteTtlMs: o.remoteTtlMs ?? 120_000,
      replayEntries: o.replayEntries ?? 5_000, startWaitMs: o.startWaitMs ?? 3_000, blockMs: o.blockMs ?? 1_000, retryMs: o.retryMs ?? 500,
    };
    for (const [k, v] of Object.entries(this.#o)) {
      if (typeof v === 'number' && !(Number.isFinite(v) && v >= 0)) throw new KvrError('KVR_ERR_USAGE', `router sync: ${k} must be a number >= 0, got ${v}`);
    }
    this.#metrics = o.metrics;
    this.#log = o.logger ?? silentLogger;
    const target = parseRedisTarget(o.url);
    // One node: the client options the sync was built and tested with (a blocked XREAD is resent
    // after a reconnect). A cluster: the shared factory's Cluster client.
    const nodeOpts = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectionName: `kvroute-sync:${this.routerId}`, retryStrategy: (n: number) => Math.min(100 * n, 2_000) };
    const opts = { maxRetriesPerRequest: 1, connectionName: `kvroute-sync:${this.routerId}`, maxReconnectDelayMs: 2_000 };
    const make = (): Redis | Cluster => (target.kind === 'node' ? new Redis(target.url, nodeOpts) : createRedisClient(target, opts));
    this.#pub = make();
    this.#sub = make();
    for (const c of [this.#pub, this.#sub]) c.on('error', (err: Error) => this.#warn('router sync: Redis error; routing continues on local state', err));
    this.#pub.on('ready', () => this.#metrics?.syncConnected.set(1));
    this.#pub.on('close', () => this.#metrics?.syncConnected.set(0));
    this.#publisher = new SyncPublisher({
      client: this.#pub, stream: this.#o.stream, maxLen: this.#o.maxLen, routerId: this.routerId, flushMs: this.#o.flushMs, leading: this.#o.flushLeading, clock: this.#o.clock,
      onSent: (n) => {
        this.#stats.sent += n;
        this.#metrics?.syncRecords.inc({ outcome: 'sent' }, n);
      },
      onDrop: (n, why, err) => this.#drop(n, why, err),
    });
    this.#remote = new RemoteLoad((id, prefill, inflight) => {
      this.#o.scheduler.load.setRemote(id, prefill, inflight);
      this.#metrics?.syncRemoteInflight.set({ endpoint: id }, inflight);
    });
  }

  /**
   * Connects, registers as a scheduler observer, replays the stream tail (waiting at most
   * `startWaitMs`) and starts reading. Redis being down does not fail the start: the router
   * routes on local state and the loop keeps trying.
   */
  static async start(o: RouterSyncOptions): Promise<RouterSync> {
    const s = new RouterSync(o);
    await Promise.all([s.#pub.connect(), s.#sub.connect()].map((p) => p.catch(() => undefined)));
    o.scheduler.addObserver(s);
    s.#loop = s.#run();
    const deadline = o.clock.now() + s.#o.startWaitMs;
    while (!s.#replayed && o.clock.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (!s.#replayed) s.#log.warn({ stream: s.#o.stream }, 'router sync: start-up replay not done (Redis unreachable?); routing starts on local state');
    s.#beat();
    return s;
  }

  stats(): RouterSyncStats {
    return {
      routerId: this.routerId, connected: this.#pub.status === 'ready', replayed: this.#replayed, ...this.#stats, batches: this.#publisher.batches,
      remoteInflight: this.#remote.size, remoteRouters: this.#liveRouters(),
    };
  }

  onPicked(ctx: SchedulingContext, endpoint: Endpoint): void {
    const req = ctx.request;
    const prompt = promptTokensOf(req);
    const w = Math.max(0, prompt - predictedCachedTokens(req, endpoint, prompt));
    const k = this.#o.scheduler.pickKeysOf(req);
    this.#track(req.id, endpoint.id, 1);
    this.#push(k !== undefined
      ? { t: 'p', q: req.id, e: endpoint.id, w, c: isColdRequest(req) ? 1 : 0, s: k.scheme, k: encodeKeys(k.keys) }
      : { t: 'p', q: req.id, e: endpoint.id, w, c: isColdRequest(req) ? 1 : 0 });
  }

  onFirstToken(ctx: SchedulingContext, endpoint: Endpoint): void {
    this.#push({ t: 'f', q: ctx.request.id, e: endpoint.id });
  }

  onComplete(ctx: SchedulingContext, endpoint: Endpoint): void {
    this.#track(ctx.request.id, endpoint.id, -1);
    this.#push({ t: 'c', q: ctx.request.id, e: endpoint.id });
  }

  /** Keeps this router's own in-flight count per endpoint (what its heartbeats report). */
  #track(q: string, endpointId: string, delta: 1 | -1): void {
    const key = `${q}\u0000${endpointId}`;
    if (delta === 1 ? this.#mine.has(key) : !this.#mine.has(key)) return;
    if (delta === 1) this.#mine.set(key, endpointId);
    else this.#mine.delete(key);
    const n = (this.#mineByEndpoint.get(endpointId) ?? 0) + delta;
    if (n > 0) this.#mineByEndpoint.set(endpointId, n);
    else this.#mineByEndpoint.delete(endpointId);
  }

  /** Says bye (others forget this router's load at once), flushes, and disconnects. */
  async close(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#beatTimer?.cancel();
    await this.#publisher.stop({ t: 'x' });
    this.#sub.disconnect();
    await this.#loop;
    this.#pub.disconnect();
  }

  /** Stops without saying bye, as a crashed router would (for tests of liveness). */
  async abandon(): Promise<void> {
    this.#running = false;
    this.#beatTimer?.cancel();
    void this.#publisher.stop();
    this.#sub.disconnect();
    await this.#loop;
    this.#pub.disconnect();
  }

  #push(r: SyncRecord): void {
    if (this.#running) this.#publisher.push(r);
  }

  #beat(): void {
    if (!this.#running) return;
    this.#push({ t: 'h', n: Object.fromEntries(this.#mineByEndpoint) });
    const now = this.#o.clock.now();
    for (const [r, at] of this.#seen) {
      if (now - at <= this.#o.deadAfterMs) continue;
      this.#seen.delete(r);
      const n = this.#remote.dropRouter(r);
      if (n > 0) this.#log.warn({ router: r, requests: n }, 'router sync: replica stopped heartbeating; its in-flight load is dropped');
    }
    this.#remote.expire(now);
    this.#metrics?.syncRemoteRouters.set(this.#liveRouters());
    this.#beatTimer = this.#o.clock.setTimeout(() => this.#beat(), this.#o.heartbeatMs);
  }

  async #run(): Promise<void> {
    while (this.#running) {
      try {
        if (!this.#replayed) await this.#replay();
        const res = (await this.#sub.xread('COUNT', 1_000, 'BLOCK', this.#o.blockMs, 'STREAMS', this.#o.stream, this.#lastId)) as [string, [string, string[]][]][] | null;
        if (res === null) continue;
        for (const [, entries] of res) for (const [id, fields] of entries) this.#applyEntry(id, fields, false);
      } catch (err) {
        if (!this.#running) return;
        this.#stats.errors++;
        this.#warn('router sync: reading the stream failed; retrying', err);
        await new Promise((r) => setTimeout(r, this.#o.retryMs));
      }
    }
  }

  async #replay(): Promise<void> {
    if (this.#o.replayEntries > 0) {
      const tail = (await this.#sub.xrevrange(this.#o.stream, '+', '-', 'COUNT', this.#o.replayEntries)) as [string, string[]][];
      for (let i = tail.length - 1; i >= 0; i--) this.#applyEntry(tail[i][0], tail[i][1], true);
      if (tail.length > 0) this.#lastId = tail[0][0];
      this.#log.info({ entries: tail.length, stream: this.#o.stream }, 'router sync: replayed the stream tail');
    }
    if (this.#lastId === '$') {
      // Nothing to replay: read from the newest id now, so entries added meanwhile are not skipped.
      const last = (await this.#sub.xrevrange(this.#o.stream, '+', '-', 'COUNT', 1)) as [string, string[]][];
      this.#lastId = last.length > 0 ? last[0][0] : '0-0';
    }
    this.#replayed = true;
  }

  #applyEntry(id: string, fields: string[], replay: boolean): void {
    this.#lastId = id;
    let router: string | undefined;
    let body: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'r') router = fields[i + 1];
      else if (fields[i] === 'b') body = fields[i + 1];
    }
    if (router === undefined || body === undefined) return this.#drop(1, 'malformed stream entry');
    const self = router === this.routerId;
    if (self && !replay) return;
    const now = this.#o.clock.now();
    const at = streamIdMs(id);
    const { records, bad } = parseBatch(body);
    if (bad > 0) this.#drop(bad, 'malformed record');
    if (!self) this.#seen.set(router, replay && Number.isFinite(at) ? Math.min(now, at) : now);
    const loadTtlLeft = Number.isFinite(at) ? at + this.#o.remoteTtlMs - now : this.#o.remoteTtlMs;
    let applied = 0;
    for (const r of records) {
      if (r.t === 'p') {
        const endpoint = this.#o.endpoints.get(r.e);
        if (endpoint === undefined) {
          this.#drop(1, 'unknown endpoint');
          continue;
        }
        const keys = r.k !== undefined && r.s !== undefined ? decodeKeys(r.k) : undefined;
        this.#o.scheduler.applyRemotePick({ endpoint, uncachedTokens: r.w, cold: r.c === 1, now, ...(keys !== undefined ? { keys: { scheme: r.s!, keys } } : {}) });
        if (!self && loadTtlLeft > 0) this.#remote.pick(router, r.q, r.e, r.w, now + Math.min(loadTtlLeft, this.#o.remoteTtlMs));
        if (!self) this.#stats.picksApplied++;
      } else if (r.t === 'f') this.#remote.firstToken(router, r.q, r.e);
      else if (r.t === 'c') this.#remote.complete(router, r.q, r.e);
      else if (r.t === 'h' && !self && r.n !== undefined) {
        const n = this.#remote.reconcile(router, r.n);
        if (n > 0) {
          this.#stats.reconciled += n;
          this.#warn(`router sync: ${n} in-flight request(s) of replica ${router} dropped: its heartbeat reports fewer (completion records lost, or it restarted)`);
        }
      }
      else if (r.t === 'x' && !self) {
        this.#remote.dropRouter(router);
        this.#seen.delete(router);
      }
      applied++;
    }
    this.#stats.applied += applied;
    this.#metrics?.syncRecords.inc({ outcome: 'applied' }, applied);
    if (!replay && Number.isFinite(at)) {
      this.#stats.lagMs = Math.max(0, now - at);
      this.#metrics?.syncLag.set(this.#stats.lagMs / 1_000);
    }
  }

  #liveRouters(): number {
    return this.#seen.size;
  }

  #drop(n: number, why: string, err?: unknown): void {
    this.#stats.dropped += n;
    this.#metrics?.syncRecords.inc({ outcome: 'dropped' }, n);
    this.#warn(`router sync: ${n} record(s) dropped (${why}); routing continues on local state`, err);
  }

  #warn(msg: string, err?: unknown): void {
    const now = this.#o.clock.now();
    if (now - this.#lastWarn < 10_000) return;
    this.#lastWarn = now;
    this.#log.warn({ err: err instanceof Error ? err.message : err }, msg);
  }
}
