/**
 * Receives vLLM KV-cache events over ZeroMQ and hands them, decoded and in order, to a
 * {@link KvEventSink} (the block index).
 *
 * Two ways to wire it, like vLLM allows:
 * - **connect** (default): one SUB per endpoint connects to the pod's PUB (`events=tcp://pod:5557`,
 *   vLLM started with `"endpoint":"tcp://*:5557"`). Endpoints come and go with {@link add} /
 *   {@link remove} (or {@link sync} against the endpoint pool).
 * - **bind**: one SUB is bound and every pod's PUB connects to it (vLLM
 *   `"endpoint":"tcp://router:5557"`). It binds to loopback by default (`tcp://127.0.0.1:5557`):
 *   ZeroMQ has no authentication here, so exposing it (`--kv-events-bind tcp://0.0.0.0:5557`) is
 *   an explicit choice. The topic is the allow-list: `kv@<ip:port>@<model>` must name a known
 *   endpoint whose address is `ip:port` (or whose host is `ip`, when exactly one endpoint has
 *   it); other topics are counted in {@link EventIngestStats.unknownTopics} and dropped.
 *   `allowFrom` (addresses / CIDRs) also restricts who may connect at all: ZeroMQ's ZAP refuses
 *   other peers during the handshake, before any of their messages is read
 *   (src/events/zap-allow-list.ts).
 *
 * Messages over `maxMessageBytes` are dropped and counted (ZeroMQ itself disconnects a peer that
 * sends more than 4x that), events over `maxBlocksPerEvent` too; each endpoint's queue is bounded
 * in bytes; big batches are applied in slices that yield to I/O (see {@link EndpointStream}).
 * Every `resyncIntervalMs` each endpoint with a replay socket is checked (missed batches
 * applied, a silent restart detected); a {@link RestartSignal} (process start times from the
 * datalayer's scrapes) confirms restarts and resets an endpoint as soon as its process changed.
 *
 * Per endpoint an {@link EndpointStream} keeps order, fills sequence gaps from the pod's replay
 * socket and resets the endpoint in the sink when it cannot. Replay from 0 when an endpoint is
 * added (a router starting after its pods learns what is already cached).
 */
import type { Logger } from 'pino';
import { Context, Subscriber } from 'zeromq';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { KvrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { EndpointStream, STREAM_DEFAULTS, type StreamLimits } from './endpoint-stream.js';
import { DEFAULT_LOOP_SHARE, LoopBudget } from './loop-budget.js';
import type { fetchReplay } from './replay-client.js';
import type { RestartSignal } from './restart-signal.js';
import type { EventIngestStats, KvEventSink } from './types.js';
import { parseTopic } from './wire.js';
import { parseAllowList, ZAP_DOMAIN, ZapAllowList } from './zap-allow-list.js';

/** An endpoint whose events are ingested. */
export interface IngestEndpoint {
  /** Endpoint id passed to the sink. */
  id: string;
  /** `host:port` of the endpoint's HTTP server (bind mode matches topics against it). */
  address: string;
  /** The pod's PUB address (`tcp://host:port`); required in connect mode, unused in bind mode. */
  events?: string;
  /** The pod's replay ROUTER address; without it gaps cannot be filled (the endpoint is reset). */
  replay?: string;
  /** Model given to the sink when the topic names none (vLLM's default topic is ''). */
  model?: string;
}

/** Default bind address: loopback only (pass another address to accept pods from the network). */
export const DEFAULT_EVENTS_BIND = 'tcp://127.0.0.1:5557';

/** Options of an {@link EventIngestor}. */
export interface EventIngestorOptions extends StreamLimits {
  sink: KvEventSink;
  /** Default 'connect'. */
  mode?: 'connect' | 'bind';
  /** Bind mode: the address of the one SUB (default {@link DEFAULT_EVENTS_BIND}; `tcp://127.0.0.1:*` = ephemeral). */
  bindAddress?: string;
  /** Bind mode: publisher addresses / CIDRs allowed to connect (ZAP); others are refused and counted. Default: anyone who reaches the address. */
  allowFrom?: readonly string[];
  /** Process start times that confirm restarts (fed by the datalayer's scrapes). */
  restartSignal?: RestartSignal;
  /** Every this many ms, check each endpoint's stream against its replay socket (default 30,000; 0 = never). */
  resyncIntervalMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** Replay request timeout (default 2,000 ms). */
  replayTimeoutMs?: number;
  /** Replay from 0 when an endpoint with a replay address is added (default true). */
  replayOnJoin?: boolean;
  /** Replay transport (tests may swap it). */
  fetchReplay?: typeof fetchReplay;
  /**
   * Most of the event loop one endpoint's ingestion may use, 0 < share <= 1 (default 0.2):
   * decoding and applying are timed and, past this share, wait for the loop
   * (src/events/loop-budget.ts). Per endpoint, so a flooded stream cannot starve the others.
   * 0 = no limit (ingestion only yields between slices, as before).
   */
  loopShare?: number;
}

/** Most distinct unknown topics remembered; beyond, they are counted under `(other)`. */
const MAX_UNKNOWN_TOPICS = 256;

interface Entry {
  ep: IngestEndpoint;
  stream: EndpointStream;
  sock?: Subscriber;
}

/** Turns an {@link Endpoint} with `kvEvents` into an {@link IngestEndpoint}; undefined without. */
export function ingestEndpointOf(ep: Endpoint): IngestEndpoint | undefined {
  if (!ep.kvEvents) return undefined;
  return {
    id: ep.id,
    address: ep.address,
    events: ep.kvEvents.endpoint || undefined,
    replay: ep.kvEvents.replayEndpoint,
    model: ep.models.length === 1 ? ep.models[0] : undefined,
  };
}

/** KV-event ingestion for a set of endpoints. */
export class EventIngestor {
  readonly mode: 'connect' | 'bind';
  #o: EventIngestorOptions;
  #clock: Clock;
  #log: Logger;
  #entries = new Map<string, Entry>();
  #byAddress = new Map<string, Entry>();
  #unknown = new Map<string, number>();
  #bindSock: Subscriber | undefined;
  #bound: string | undefined;
  #loops = new Set<Promise<void>>();
  #closed = false;
  #resyncTimer: TimerHandle | undefined;
  #unsubscribe: (() => void) | undefined;
  #zap: ZapAllowList | undefined;
  readonly #loopShare: number;

  constructor(opts: EventIngestorOptions) {
    this.#o = opts;
    this.mode = opts.mode ?? 'connect';
    this.#loopShare = opts.loopShare ?? DEFAULT_LOOP_SHARE;
    if (this.#loopShare !== 0) void new LoopBudget(opts.clock ?? systemClock, this.#loopShare); // validates it before anything starts
    if (opts.allowFrom !== undefined) {
      if (this.mode !== 'bind') throw new KvrError('KVR_ERR_USAGE', 'a KV-event publisher allow-list (--kv-events-allow-from) applies to bind mode only (--kv-events bind): in connect mode the router chooses whom it connects to');
      parseAllowList(opts.allowFrom); // bad entries fail here, before anything starts
    }
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.logger ?? silentLogger;
    const every = opts.resyncIntervalMs ?? 30_000;
    if (!Number.isInteger(every) || every < 0) throw new KvrError('KVR_ERR_CONFIG', `KV-event ingestion: resyncIntervalMs must be an integer >= 0, got ${String(every)}`);
    if (every > 0) this.#armResync(every);
    this.#unsubscribe = opts.restartSignal?.onRestart((id, start) => this.#entries.get(id)?.stream.restarted(start));
  }

  #armResync(every: number): void {
    this.#resyncTimer = this.#clock.setTimeout(() => {
      if (this.#closed) return;
      for (const e of this.#entries.values()) e.stream.check();
      this.#armResync(every);
    }, every);
  }

  /** Bind mode: binds the SUB (rejects with KVR_ERR_USAGE when the address is taken). Connect mode: nothing. */
  async start(): Promise<void> {
    if (this.mode !== 'bind' || this.#bindSock) return;
    let sock: Subscriber;
    if (this.#o.allowFrom !== undefined) {
      // A context of its own: the ZAP handler answers for every socket of its context.
      const context = new Context();
      const zap = new ZapAllowList({ allow: this.#o.allowFrom, context, logger: this.#log });
      await zap.start();
      this.#zap = zap;
      sock = this.#newSub({ context, zapDomain: ZAP_DOMAIN });
    } else sock = this.#newSub();
    const addr = this.#o.bindAddress ?? DEFAULT_EVENTS_BIND;
    try {
      await sock.bind(addr);
    } catch (e) {
      sock.close();
      await this.#zap?.close();
      this.#zap = undefined;
      throw new KvrError('KVR_ERR_USAGE', `cannot bind the KV-event socket at ${addr}: ${(e as Error).message}; pick a free address`, { cause: e });
    }
    this.#bindSock = sock;
    this.#bound = sock.lastEndpoint ?? addr;
    if (this.#zap === undefined && !/^tcp:\/\/(127\.|\[::1\]|localhost)|^(ipc|inproc):\/\//.test(this.#bound)) {
      this.#log.warn({ address: this.#bound }, 'KV-event SUB bound on a non-loopback address: any host that reaches it can publish events for known topics; keep it on a private network');
    }
    for (const e of this.#entries.values()) e.stream.stats.connected = true;
    this.#run(sock, (frames) => this.#onBound(frames));
  }

  /** Bind mode: the address bound (the real port when bound to `*`). */
  get boundEndpoint(): string | undefined {
    return this.#bound;
  }

  /** Starts ingesting an endpoint's events. Throws KVR_ERR_USAGE on a duplicate id or a missing address. */
  add(ep: IngestEndpoint): void {
    if (this.#closed) throw new KvrError('KVR_ERR_USAGE', 'the event ingestor is closed');
    if (this.#entries.has(ep.id)) throw new KvrError('KVR_ERR_USAGE', `endpoint "${ep.id}" already has an event subscription; remove it first`);
    if (this.mode === 'connect' && !ep.events) {
      throw new KvrError('KVR_ERR_USAGE', `endpoint "${ep.id}" has no KV-event address; add ;events=tcp://host:port to it (or use bind mode)`);
    }
    const stream = new EndpointStream({
      id: ep.id,
      sink: this.#o.sink,
      clock: this.#clock,
      logger: this.#log,
      replayEndpoint: ep.replay,
      model: ep.model,
      replayTimeoutMs: this.#o.replayTimeoutMs,
      fetch: this.#o.fetchReplay,
      restartSignal: this.#o.restartSignal,
      ...(this.#loopShare > 0 ? { loopShare: this.#loopShare } : {}),
      ...limitsOf(this.#o),
    });
    const entry: Entry = { ep: { ...ep }, stream };
    this.#entries.set(ep.id, entry);
    this.#byAddress.set(ep.address, entry);
    if (this.mode === 'connect') {
      const sock = this.#newSub();
      sock.events.on('connect', () => void (stream.stats.connected = true));
      sock.events.on('disconnect', () => void (stream.stats.connected = false));
      try {
        sock.connect(ep.events!);
      } catch (e) {
        sock.close();
        this.#entries.delete(ep.id);
        this.#byAddress.delete(ep.address);
        throw new KvrError('KVR_ERR_USAGE', `endpoint "${ep.id}": cannot connect to KV events at ${ep.events}: ${(e as Error).message}`, { cause: e });
      }
      entry.sock = sock;
      this.#run(sock, (frames) => stream.offer(frames));
    } else stream.stats.connected = this.#bindSock !== undefined;
    if (ep.replay && (this.#o.replayOnJoin ?? true)) stream.resync();
  }

  /** Stops ingesting an endpoint: closes its socket and resets its entries in the sink. */
  async remove(id: string): Promise<boolean> {
    const e = this.#entries.get(id);
    if (!e) return false;
    this.#entries.delete(id);
    if (this.#byAddress.get(e.ep.address) === e) this.#byAddress.delete(e.ep.address);
    e.sock?.close();
    await e.stream.close();
    try {
      await this.#o.sink.resetEndpoint(id);
    } catch (err) {
      this.#log.warn({ endpoint: id, err: (err as Error).message }, 'KV-event sink failed to reset a removed endpoint');
    }
    return true;
  }

  /**
   * Reconciles with a list of endpoints (e.g. the pool after discovery): adds those with
   * `kvEvents` not yet ingested, removes those gone or whose addresses changed.
   */
  async sync(endpoints: readonly Endpoint[]): Promise<void> {
    const want = new Map<string, IngestEndpoint>();
    for (const ep of endpoints) {
      const ie = ingestEndpointOf(ep);
      if (ie && (this.mode === 'bind' || ie.events)) want.set(ie.id, ie);
    }
    for (const [id, e] of [...this.#entries]) {
      const w = want.get(id);
      if (!w || w.events !== e.ep.events || w.replay !== e.ep.replay || w.address !== e.ep.address) await this.remove(id);
    }
    for (const [id, w] of want) if (!this.#entries.has(id)) this.add(w);
  }

  /** Replays an endpoint's events from 0 (after the sink lost its state). False when unknown. */
  resync(id: string): boolean {
    const e = this.#entries.get(id);
    e?.stream.resync();
    return e !== undefined;
  }

  /**
   * Another part of the router saw the endpoint restart (its scrape: counters went back, it came
   * back after refusing connections): when the endpoint has a replay socket, its stream checks
   * against it and resets only if the publisher really is a new process, once, whichever of the
   * replay, the sequence numbers or the process start time noticed first (a reset from outside
   * would wipe what the new process already published). False when the stream cannot check.
   */
  verifyRestart(id: string): boolean {
    const e = this.#entries.get(id);
    if (!e?.ep.replay) return false;
    e.stream.check();
    return true;
  }

  /** {@link resync} for every endpoint. */
  resyncAll(): void {
    for (const e of this.#entries.values()) e.stream.resync();
  }

  /** Ids of the endpoints ingested. */
  endpointIds(): string[] {
    return [...this.#entries.keys()];
  }

  /** A snapshot of the counters. */
  stats(): EventIngestStats {
    const endpoints: EventIngestStats['endpoints'] = {};
    for (const [id, e] of this.#entries) endpoints[id] = { ...e.stream.stats };
    return { mode: this.mode, endpoints, unknownTopics: Object.fromEntries(this.#unknown), ...(this.#zap ? { rejectedPublishers: this.#zap.rejected() } : {}) };
  }

  /** Resolves when every endpoint's queue is drained (tests, benchmarks). */
  async idle(): Promise<void> {
    for (const e of this.#entries.values()) await e.stream.idle();
  }

  /** Closes every socket and waits for batches in flight; the sink is left as it is. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#resyncTimer?.cancel();
    this.#unsubscribe?.();
    this.#bindSock?.close();
    for (const e of this.#entries.values()) e.sock?.close();
    await Promise.all([...this.#entries.values()].map((e) => e.stream.close()));
    await Promise.all([...this.#loops]);
    await this.#zap?.close();
  }

  #newSub(extra: { context?: Context; zapDomain?: string } = {}): Subscriber {
    // ZeroMQ drops the connection of a peer sending absurdly large messages before they are buffered.
    const maxMessageSize = 4 * (this.#o.maxMessageBytes ?? STREAM_DEFAULTS.maxMessageBytes) + 4096;
    const sock = new Subscriber({ linger: 0, receiveHighWaterMark: 10_000, maxMessageSize, ...extra });
    sock.subscribe();
    return sock;
  }

  #run(sock: Subscriber, onMessage: (frames: Buffer[]) => void): void {
    const loop = (async () => {
      while (!sock.closed) {
        let frames: Buffer[];
        try {
          frames = await sock.receive();
        } catch (e) {
          if (!sock.closed) this.#log.warn({ err: (e as Error).message }, 'KV-event socket receive failed');
          break;
        }
        onMessage(frames);
      }
    })();
    this.#loops.add(loop);
    void loop.finally(() => this.#loops.delete(loop));
  }

  #onBound(frames: Buffer[]): void {
    const topic = frames.length > 0 ? frames[0].toString('utf8') : '';
    const entry = this.#lookupTopic(topic);
    if (entry) return entry.stream.offer(frames);
    const key = this.#unknown.has(topic) || this.#unknown.size < MAX_UNKNOWN_TOPICS ? topic : '(other)';
    this.#unknown.set(key, (this.#unknown.get(key) ?? 0) + 1);
  }

  #lookupTopic(topic: string): Entry | undefined {
    const t = parseTopic(topic);
    if (!t) return undefined;
    const exact = this.#byAddress.get(t.address);
    if (exact) return exact;
    if (/^[^:]+:\d+$|^\[.*\]:\d+$/.test(t.address)) return undefined;
    // Topic names the pod ip only (llm-d's kv@$(POD_IP)@model): match a unique host.
    let found: Entry | undefined;
    for (const e of this.#entries.values()) {
      const host = e.ep.address.slice(0, e.ep.address.lastIndexOf(':'));
      if (host === t.address) {
        if (found) return undefined;
        found = e;
      }
    }
    return found;
  }
}

function limitsOf(o: StreamLimits): StreamLimits {
  const out: StreamLimits = {};
  for (const k of Object.keys(STREAM_DEFAULTS) as (keyof StreamLimits)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
