/**
 * A ZeroMQ KV-event publisher that behaves like vLLM's `ZmqEventPublisher`, for simulated
 * replicas:
 *
 * ```
 *   engine step ──events──▶ pending ──(end of the step: one EventBatch)──▶ seq n, msgpack
 *        ──▶ send queue ──▶ PUB  [topic, seq (8 B BE), payload]         (async, never blocks)
 *        └─▶ replay buffer (last 10,000 batches) ◀── ROUTER  [id, "", start_seq]
 *                                                   ──▶ [id, "", seq, payload]... [id, "", -1, ""]
 * ```
 *
 * The PUB binds when its address holds `*`, `::`, `ipc://` or `inproc://` and connects
 * otherwise (vLLM's rule; `bind` overrides it); the replay ROUTER always binds. The socket is an
 * XPUB, which subscribers cannot tell from a PUB and which lets tests wait for subscribers
 * ({@link KvEventPublisher.waitForSubscribers}) instead of sleeping (a bound XPUB sees each
 * subscription; a connected one only sees connections complete their handshake). {@link KvEventPublisher.restart}
 * behaves like a new vLLM process: seq restarts at 0 and the replay buffer is emptied.
 */
import type { Logger } from 'pino';
import { Router, XPublisher } from 'zeromq';
import { systemClock, type Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { RingBuffer } from '../core/ring-buffer.js';
import { encodeEventBatch, type EventEncoding } from '../events/codec.js';
import type { KvEvent, KvEventBatch } from '../events/types.js';
import { END_SEQ, encodeSeq, vllmBinds } from '../events/wire.js';
import type { KvCacheEvent } from './block-manager.js';

/** Options of a {@link KvEventPublisher}. */
export interface KvEventPublisherOptions {
  /** PUB address, e.g. `tcp://*:5557` (bind), `tcp://127.0.0.1:*` (bind, ephemeral port) or `tcp://router:5557` (connect). */
  endpoint: string;
  /** Bind (true) or connect (false) the PUB; default: vLLM's rule on `endpoint`. */
  bind?: boolean;
  /** Replay ROUTER address (always bound); undefined = no replay socket. */
  replayEndpoint?: string;
  /** Topic frame (vLLM default ''; llm-d convention `kv@<ip:port>@<model>`). */
  topic?: string;
  /** Payload encoding (default 'array'). */
  encoding?: EventEncoding;
  /** Batches kept for replay (default 10,000, like vLLM's buffer_steps). */
  bufferSteps?: number;
  /** PUB high-water mark (default 100,000, like vLLM). */
  hwm?: number;
  /** Data-parallel rank written into each batch (default 0, like vLLM). */
  dataParallelRank?: number;
  clock?: Clock;
  logger?: Logger;
}

interface Buffered {
  seq: bigint;
  payload: Uint8Array;
}

/** Maps a simulator block-manager event to the wire contract. */
export function toKvEvent(ev: KvCacheEvent): KvEvent {
  switch (ev.type) {
    case 'BlockStored':
      return { type: 'BlockStored', blockHashes: ev.blockHashes, parentBlockHash: ev.parentBlockHash, tokenIds: ev.tokenIds, blockSize: ev.blockSize, loraId: null, medium: ev.medium, loraName: null };
    case 'BlockRemoved':
      return { type: 'BlockRemoved', blockHashes: ev.blockHashes, medium: ev.medium };
    case 'AllBlocksCleared':
      return { type: 'AllBlocksCleared' };
  }
}

/** vLLM's ZeroMQ KV-event publisher, for the simulator. Create with {@link KvEventPublisher.start}. */
export class KvEventPublisher {
  /** Topic frame of the next messages (settable: tests simulate a pod-id mismatch with it). */
  topic: string;
  readonly encoding: EventEncoding;
  #pub: XPublisher;
  #router: Router | undefined;
  #endpoint: string;
  #replayEndpoint: string | undefined;
  #clock: Clock;
  #log: Logger;
  #rank: number;
  #bufferSteps: number;
  #buffer: RingBuffer<Buffered>;
  #seq = 0n;
  #pending: KvEvent[] = [];
  #flushScheduled = false;
  #sendQueue: Buffer[][] = [];
  #sending: Promise<void> | undefined;
  #lose = 0;
  #subscribers = 0;
  #subWaiters: { n: number; resolve: () => void }[] = [];
  #closed = false;
  #loops: Promise<void>[] = [];

  private constructor(o: KvEventPublisherOptions, pub: XPublisher, bound: boolean, router: Router | undefined, endpoint: string, replay: string | undefined) {
    this.topic = o.topic ?? '';
    this.encoding = o.encoding ?? 'array';
    this.#pub = pub;
    this.#router = router;
    this.#endpoint = endpoint;
    this.#replayEndpoint = replay;
    this.#clock = o.clock ?? systemClock;
    this.#log = o.logger ?? silentLogger;
    this.#rank = o.dataParallelRank ?? 0;
    this.#bufferSteps = o.bufferSteps ?? 10_000;
    this.#buffer = new RingBuffer(this.#bufferSteps);
    if (bound) this.#loops.push(this.#watchSubscriptions());
    else {
      // A connected XPUB does not report the subscription of a bound SUB: count handshakes.
      pub.events.on('handshake', () => this.#setSubscribers(this.#subscribers + 1));
      pub.events.on('disconnect', () => this.#setSubscribers(Math.max(0, this.#subscribers - 1)));
    }
    if (router) this.#loops.push(this.#serveReplay(router));
  }

  /** Opens the sockets; rejects with KVR_ERR_USAGE when an address cannot be bound or connected. */
  static async start(o: KvEventPublisherOptions): Promise<KvEventPublisher> {
    const pub = new XPublisher({ linger: 0, sendHighWaterMark: o.hwm ?? 100_000 });
    pub.verbosity = 'allSubsUnsubs';
    let router: Router | undefined;
    try {
      let replay: string | undefined;
      if (o.replayEndpoint) {
        router = new Router({ linger: 0 });
        await router.bind(o.replayEndpoint);
        replay = router.lastEndpoint ?? o.replayEndpoint;
      }
      let endpoint = o.endpoint;
      const bind = o.bind ?? vllmBinds(o.endpoint);
      if (bind) {
        await pub.bind(o.endpoint);
        endpoint = pub.lastEndpoint ?? o.endpoint;
      } else {
        void pub.events; // start the monitor before connecting, so no handshake is missed
        pub.connect(o.endpoint);
      }
      return new KvEventPublisher(o, pub, bind, router, endpoint, replay);
    } catch (e) {
      pub.close();
      router?.close();
      throw new KvrError('KVR_ERR_USAGE', `cannot open the KV-event sockets (${o.endpoint}${o.replayEndpoint ? `, ${o.replayEndpoint}` : ''}): ${(e as Error).message}; pick free ports`, { cause: e });
    }
  }

  /** The PUB address (with the real port once bound to `*`). */
  get endpoint(): string {
    return this.#endpoint;
  }

  /** The replay ROUTER address, if any. */
  get replayEndpoint(): string | undefined {
    return this.#replayEndpoint;
  }

  /** Sequence number the next batch gets. */
  get nextSeq(): bigint {
    return this.#seq;
  }

  /** Batches held for replay. */
  get buffered(): number {
    return this.#buffer.size;
  }

  /** Subscriptions currently seen on the PUB side (connected PUB: peers connected). */
  get subscribers(): number {
    return this.#subscribers;
  }

  /** Queues an engine event; the events of one engine step go out as one batch (after the step's synchronous work). */
  add(ev: KvEvent): void {
    if (this.#closed) return;
    this.#pending.push(ev);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Publishes the pending events now as one batch (no-op when none). */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#pending.length === 0 || this.#closed) return;
    const events = this.#pending;
    this.#pending = [];
    this.publish({ ts: this.#clock.now() / 1000, events, dataParallelRank: null });
  }

  /**
   * Numbers, buffers and queues one batch for sending; returns its seq. `dataParallelRank: null`
   * is filled with the publisher's rank, like vLLM.
   */
  publish(batch: KvEventBatch): bigint {
    if (this.#closed) throw new KvrError('KVR_ERR_SIM_DOWN', 'the KV-event publisher is closed');
    const seq = this.#seq++;
    const payload = encodeEventBatch({ ...batch, dataParallelRank: batch.dataParallelRank ?? this.#rank }, { encoding: this.encoding });
    this.#buffer.push({ seq, payload });
    if (this.#lose > 0) this.#lose--;
    else {
      this.#sendQueue.push([Buffer.from(this.topic, 'utf8'), encodeSeq(seq), Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)]);
      this.#sending ??= this.#drainSends();
    }
    return seq;
  }

  /** Fault injection: the next `n` batches are numbered and kept for replay but never sent live (a lossy network). */
  loseNext(n: number): void {
    this.#lose = Math.max(0, Math.floor(n));
  }

  /** Like a new vLLM process: pending events go out first, then seq restarts at 0 and the replay buffer is emptied. */
  restart(): void {
    this.flush();
    this.#seq = 0n;
    this.#buffer = new RingBuffer(this.#bufferSteps);
  }

  /** Resolves once at least `n` subscriptions reached the PUB socket. */
  waitForSubscribers(n = 1): Promise<void> {
    if (this.#subscribers >= n) return Promise.resolve();
    return new Promise((resolve) => this.#subWaiters.push({ n, resolve }));
  }

  /** Resolves when every queued message was handed to ZeroMQ. */
  async drain(): Promise<void> {
    while (this.#sending) await this.#sending;
  }

  /** Sends what is queued, then closes both sockets. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.flush();
    await this.drain();
    this.#closed = true;
    this.#pub.close();
    this.#router?.close();
    await Promise.all(this.#loops);
    for (const w of this.#subWaiters) w.resolve();
    this.#subWaiters = [];
  }

  async #drainSends(): Promise<void> {
    try {
      while (this.#sendQueue.length > 0 && !this.#pub.closed) {
        const msg = this.#sendQueue.shift()!;
        try {
          await this.#pub.send(msg);
        } catch (e) {
          if (!this.#pub.closed) this.#log.warn({ err: (e as Error).message }, 'KV-event publish failed');
        }
      }
    } finally {
      this.#sending = undefined;
    }
  }

  async #watchSubscriptions(): Promise<void> {
    while (!this.#pub.closed) {
      let frames: Buffer[];
      try {
        frames = await this.#pub.receive();
      } catch {
        break;
      }
      const f = frames[0];
      if (!f || f.length === 0) continue;
      if (f[0] === 1) this.#setSubscribers(this.#subscribers + 1);
      else if (f[0] === 0) this.#setSubscribers(Math.max(0, this.#subscribers - 1));
    }
  }

  #setSubscribers(n: number): void {
    this.#subscribers = n;
    this.#subWaiters = this.#subWaiters.filter((w) => {
      if (this.#subscribers < w.n) return true;
      w.resolve();
      return false;
    });
  }

  async #serveReplay(router: Router): Promise<void> {
    while (!router.closed) {
      let frames: Buffer[];
      try {
        frames = await router.receive();
      } catch {
        break;
      }
      if (frames.length !== 3) {
        this.#log.warn({ frames: frames.length }, 'invalid KV-event replay request ignored');
        continue;
      }
      const [id, , start] = frames;
      let from = 0n;
      for (const b of start) from = (from << 8n) | BigInt(b);
      try {
        for (const b of this.#buffer.toArray()) {
          if (b.seq >= from) await router.send([id, '', encodeSeq(b.seq), b.payload]);
        }
        await router.send([id, '', END_SEQ, '']);
      } catch (e) {
        if (!router.closed) this.#log.warn({ err: (e as Error).message }, 'KV-event replay failed');
      }
    }
  }
}
