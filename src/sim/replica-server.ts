/**
 * One simulated vLLM replica: a {@link SimEngine} behind node:http on loopback, speaking vLLM's
 * OpenAI API and metrics, plus simulator controls (`/sim/restart`, `/sim/faults`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { mathRng, type Rng } from '../core/rng.js';
import { SimEngine, type SimEngineOptions } from './engine.js';
import type { KvCacheEvent } from './block-manager.js';
import type { EventEncoding } from '../events/codec.js';
import { formatTopic, vllmBinds } from '../events/wire.js';
import { KvEventPublisher, toKvEvent } from './kv-event-publisher.js';
import { parseJsonObject, readBody, sendError, sendJson } from './http-io.js';
import { handleDetokenize, handleGenerate, handleTokenize, modelsBody, type HandlerContext } from './openai-handlers.js';
import { SimMetrics } from './sim-metrics.js';
import { BuiltinTokenizer, type SimTokenizer } from './tokenizer.js';
import { createDialect, type SimDialect, type SimDialectOptions } from './dialects/index.js';
import type { PdConnector } from './pd/pd-connector.js';
import { createPdConnector, type SimPdOptions } from './pd/create-pd-connector.js';
import { FaultState, parseFaults, type SimFaults } from './sim-faults.js';

export type { SimFaults } from './sim-faults.js';

/** KV-cache event publishing of a replica (vLLM's `--kv-events-config`). */
export interface SimKvEventsOptions {
  /** Payload encoding (default 'array'). */
  encoding?: EventEncoding;
  /** PUB address (default `tcp://<host>:*`, bound on an ephemeral port). */
  endpoint?: string;
  /** Bind or connect the PUB (connect: `endpoint` is the router's bound SUB); default: bind, or vLLM's rule when `endpoint` is given. */
  bind?: boolean;
  /** Replay ROUTER address (default `tcp://<host>:*`); null = no replay socket. */
  replayEndpoint?: string | null;
  /** Topic override (default `kv@<host:port>@<model>`, naming the replica's HTTP address). */
  topic?: string;
  /** Batches kept for replay (default 10,000). */
  bufferSteps?: number;
  /** Send AllBlocksCleared on a restart (old behaviour; default false: like vLLM, a restart only restarts the sequence numbers). */
  clearOnRestart?: boolean;
}

/** Options of a {@link SimReplica}. */
export interface SimReplicaOptions {
  id: string;
  host?: string;
  /** 0 = ephemeral. */
  port?: number;
  modelName: string;
  maxModelLen?: number;
  tokenizer?: SimTokenizer;
  /** Engine options other than the clock and the hooks the replica owns. */
  engine?: Omit<SimEngineOptions, 'clock' | 'observer' | 'onKvEvent' | 'sampleToken' | 'eosTokenId'>;
  clock?: Clock;
  /** Randomness of fault injection. */
  rng?: Rng;
  /** Largest accepted request body in bytes (default 8 MiB). */
  maxBodyBytes?: number;
  /** Receives the engine's KV-cache events. */
  onKvEvent?: (ev: KvCacheEvent) => void;
  /** Publish the engine's KV-cache events over ZeroMQ like vLLM (sockets open in {@link SimReplica.start}). */
  kvEvents?: SimKvEventsOptions;
  /** vLLM `--enable-prompt-tokens-details`: usage carries `prompt_tokens_details.cached_tokens` (default off). */
  enablePromptTokensDetails?: boolean;
  /** Serve SGLang's or llama.cpp's HTTP surface instead of vLLM's (src/sim/dialects). */
  dialect?: SimDialectOptions;
  /**
   * `/metrics` waits for the engine's current step to end, as llama.cpp's task queue makes it do
   * (a long prefill delays it for seconds while `/health` answers at once). Default: true for
   * the llama.cpp dialect, else false.
   */
  slowMetrics?: boolean;
  /** P/D KV connector (`kvroute sim --role`); absent = none (kv_transfer_params ignored, like vLLM without one). */
  pd?: SimPdOptions;
}

/** One simulated vLLM replica. Call {@link SimReplica.start} before use. */
export class SimReplica {
  readonly id: string;
  readonly engine: SimEngine;
  readonly host: string;
  #port: number;
  #server: Server;
  #clock: Clock;
  #rng: Rng;
  #ctx: HandlerContext;
  #metrics: SimMetrics;
  readonly #faults = new FaultState();
  #upTimer: TimerHandle | undefined;
  #listening = false;
  #maxBody: number;
  #seq = 0;
  #kvOpts: SimKvEventsOptions | undefined;
  #modelName: string;
  #publisher: KvEventPublisher | undefined;
  #dialect: SimDialect | undefined;
  #slowMetrics: boolean;

  constructor(opts: SimReplicaOptions) {
    this.id = opts.id;
    this.host = opts.host ?? '127.0.0.1';
    this.#port = opts.port ?? 0;
    this.#clock = opts.clock ?? systemClock;
    this.#rng = opts.rng ?? mathRng;
    this.#maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
    this.#kvOpts = opts.kvEvents;
    this.#modelName = opts.modelName;
    const tokenizer = opts.tokenizer ?? new BuiltinTokenizer();
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.#dialect = createDialect(opts.dialect, {
      modelName: opts.modelName,
      get engine() {
        return self.engine;
      },
      tokenizer,
      blockSize: opts.engine?.blockSize ?? 16,
      numBlocks: opts.engine?.numGpuBlocks ?? 26_300,
      now: () => this.#clock.now(),
    });
    this.#slowMetrics = opts.slowMetrics ?? this.#dialect?.metricsBlockDuringStep ?? false;
    this.engine = new SimEngine({
      ...opts.engine,
      ...this.#dialect?.engineOverrides,
      clock: this.#clock,
      sampleToken: (r) => tokenizer.sampleToken(r),
      eosTokenId: tokenizer.eosTokenId,
      // Without a hook or a publisher the block manager skips building events altogether.
      onKvEvent:
        opts.onKvEvent || opts.kvEvents
          ? (ev) => {
              opts.onKvEvent?.(ev);
              this.#publisher?.add(toKvEvent(ev));
            }
          : undefined,
      observer: (kind, s) => this.#metrics.observe(kind, s),
    });
    const bm = this.engine.blockManager;
    this.#metrics = new SimMetrics(opts.modelName, () => this.engine, {
      block_size: String(bm.blockSize),
      num_gpu_blocks: String(bm.numBlocks),
      enable_prefix_caching: this.engine.prefixCaching ? 'True' : 'False',
      cache_dtype: 'auto',
      num_cpu_blocks: '0',
    });
    this.#metrics.setProcessStartTime(this.#clock.now() / 1000);
    this.#ctx = {
      modelName: opts.modelName,
      maxModelLen: opts.maxModelLen ?? 131072,
      tokenizer,
      engine: this.engine,
      clock: this.#clock,
      metrics: this.#metrics,
      nextId: () => `${this.id}-${(this.#seq++).toString(16).padStart(8, '0')}`,
      promptTokensDetails: opts.enablePromptTokensDetails ?? false,
      ...(this.#dialect ? { dialect: this.#dialect } : {}),
    };
    if (opts.pd !== undefined) this.#ctx.pd = createPdConnector({ timeScale: opts.engine?.timeScale, ...opts.pd }, this.engine, this.#clock, this.id, () => ({ host: this.host, port: this.#port }), this.#metrics);
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.keepAliveTimeout = 5000;
  }

  /** Port (the assigned one once started with port 0). */
  get port(): number {
    return this.#port;
  }

  /** Base URL, e.g. `http://127.0.0.1:8001`. */
  get url(): string {
    return `http://${this.host}:${this.#port}`;
  }

  /** Starts listening. */
  async start(): Promise<void> {
    if (this.#listening) return;
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error): void => reject(e);
      this.#server.once('error', onErr);
      this.#server.listen(this.#port, this.host, () => {
        this.#server.off('error', onErr);
        resolve();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
    this.#listening = true;
    if (this.#kvOpts && !this.#publisher) await this.#startPublisher(this.#kvOpts);
  }

  /** The KV-event publisher (after start, when `kvEvents` was given). */
  get kvEventPublisher(): KvEventPublisher | undefined {
    return this.#publisher;
  }

  async #startPublisher(o: SimKvEventsOptions): Promise<void> {
    const anyPort = `tcp://${this.host.includes(':') ? `[${this.host}]` : this.host}:*`;
    try {
      this.#publisher = await KvEventPublisher.start({
        endpoint: o.endpoint ?? anyPort,
        bind: o.bind ?? (o.endpoint === undefined ? true : vllmBinds(o.endpoint)),
        replayEndpoint: o.replayEndpoint === null ? undefined : (o.replayEndpoint ?? anyPort),
        topic: o.topic ?? formatTopic(`${this.host}:${this.#port}`, this.#modelName),
        encoding: o.encoding,
        bufferSteps: o.bufferSteps,
        clock: this.#clock,
      });
    } catch (e) {
      await this.#stopListening();
      throw e;
    }
  }

  /**
   * A pod restart: in-flight requests fail, cache and counters are cleared, the KV-event sequence
   * starts again at 0 and `process_start_time_seconds` changes. Like vLLM, no AllBlocksCleared
   * is sent unless `kvEvents.clearOnRestart`.
   */
  restart(): void {
    this.#ctx.pd?.reset();
    this.engine.reset(this.#kvOpts?.clearOnRestart === true);
    this.#metrics.reset();
    this.#dialect?.restart();
    this.#metrics.setProcessStartTime(this.#clock.now() / 1000);
    this.#publisher?.restart();
  }

  /** Which engine's HTTP surface this replica speaks. */
  get dialect(): 'vllm' | 'sglang' | 'llamacpp' {
    return this.#dialect?.name ?? 'vllm';
  }

  /** Waits until the engine's current step ends (or it is idle), at most 120 s. */
  async #waitStepEnd(): Promise<void> {
    if (!this.engine.busy) return;
    const s0 = this.engine.stats().steps;
    const until = Date.now() + 120_000;
    while (this.engine.busy && this.engine.stats().steps === s0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Current faults (a copy). */
  getFaults(): SimFaults {
    return { ...this.#faults.faults };
  }

  /** Sets some faults; `down` / `downForMs` stop or restart listening. */
  async setFaults(f: Partial<SimFaults>): Promise<SimFaults> {
    this.#faults.set(f);
    if (f.down !== undefined) await this.setDown(f.down, f.downForMs);
    return this.getFaults();
  }

  /** Stops listening (refusing connections, dropping open ones) or listens again. */
  async setDown(down: boolean, forMs?: number): Promise<void> {
    this.#upTimer?.cancel();
    this.#upTimer = undefined;
    this.#faults.faults.down = down;
    this.#faults.faults.downForMs = down ? forMs : undefined;
    if (down) {
      await this.#stopListening();
      if (forMs !== undefined && forMs > 0) {
        this.#upTimer = this.#clock.setTimeout(() => void this.setDown(false).catch(() => undefined), forMs);
      }
    } else await this.start();
  }

  /** The P/D connector (`pd` option), for tests and metrics. */
  get pd(): PdConnector | undefined {
    return this.#ctx.pd;
  }

  /** Stops the server and drops work. */
  async close(): Promise<void> {
    this.#upTimer?.cancel();
    await this.#stopListening();
    this.#ctx.pd?.reset();
    this.engine.reset();
    const pub = this.#publisher;
    this.#publisher = undefined;
    await pub?.close();
  }

  async #stopListening(): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('x-kvroute-sim-replica', this.id);
    this.#route(req, res).catch((e: unknown) => sendError(res, e));
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    const need = (m: string): void => {
      if (method !== m) throw new KvrError('KVR_ERR_METHOD_NOT_ALLOWED', `use ${m} for ${path}`);
    };
    const body = async (): Promise<Record<string, unknown>> => parseJsonObject(await readBody(req, this.#maxBody));
    if (!(await this.#faults.holdProbe(path, req))) return;
    if (path === '/metrics' && this.#slowMetrics) await this.#waitStepEnd();
    if (this.#dialect && (await this.#dialect.route(path, new URLSearchParams((req.url ?? '').split('?')[1] ?? ''), method, req, res, body))) return;
    switch (path) {
      case '/v1/completions':
      case '/v1/chat/completions': {
        need('POST');
        await this.#faults.beforeInference(this.#rng, this.#clock, this.id);
        const b = await body();
        handleGenerate(this.#ctx, b, res, path === '/v1/chat/completions');
        return;
      }
      case '/v1/models':
        need('GET');
        return sendJson(res, 200, modelsBody(this.#ctx, Math.floor(this.#clock.now() / 1000)));
      case '/health':
        need('GET');
        res.writeHead(200, { 'content-length': 0 });
        return void res.end();
      case '/tokenize':
        need('POST');
        return handleTokenize(this.#ctx, await body(), res);
      case '/detokenize':
        need('POST');
        return handleDetokenize(this.#ctx, await body(), res);
      case '/reset_prefix_cache':
        need('POST');
        this.engine.resetPrefixCache();
        res.writeHead(200, { 'content-length': 0 });
        return void res.end();
      case '/metrics': {
        need('GET');
        const text = await this.#metrics.text();
        res.writeHead(200, { 'content-type': this.#metrics.registry.contentType });
        return void res.end(text);
      }
      case '/sim/restart':
        need('POST');
        this.restart();
        return sendJson(res, 200, { restarted: this.id });
      case '/sim/faults':
        if (method === 'GET') return sendJson(res, 200, this.getFaults());
        need('POST');
        {
          const b = await body();
          const f = parseFaults(b);
          if (f.down) {
            // Answer first, then stop listening.
            const { down, downForMs, ...rest } = f;
            const now = await this.setFaults(rest);
            sendJson(res, 200, { ...now, down: true, downForMs });
            res.once('finish', () => void this.setDown(true, downForMs).catch(() => undefined));
            return;
          }
          return sendJson(res, 200, await this.setFaults(f));
        }
      default:
        if (path.startsWith('/sim/pd/') && this.#ctx.pd !== undefined) {
          need('POST');
          return this.#ctx.pd.handle(path, await body(), req, res);
        }
        throw new KvrError('KVR_ERR_NOT_FOUND', `no route ${method} ${path}`);
    }
  }
}
