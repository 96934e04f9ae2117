/**
 * Gives memory back after a burst: once the router has been busy and then idle for a while, one
 * memory-reducing garbage collection runs, so V8 compacts its heap, shrinks its young generation
 * and returns the pages a burst of traffic or a KV-event flood left behind. Without it an idle
 * process keeps its peak heap for good: V8 shrinks the heap only when it collects, and an idle
 * router allocates too little to trigger a collection (measured by `npm run soak`: V8's heap
 * stayed at 100-150 MiB after the load had stopped, against 60 MiB before it;
 * docs/reliability.md).
 *
 * Algorithm: every `checkMs` read the event-loop utilisation (ELU, the share of the last window
 * the loop was busy; `performance.eventLoopUtilization`). A window at or above `busyElu` arms
 * the release; armed, `afterMs` of consecutive windows below `idleElu` run one collection and
 * disarm it. Steady light traffic never arms it (V8's own collections suffice), so a full
 * collection (tens of ms on a ~100 MiB heap) happens at most once per busy -> idle transition,
 * and only when nothing is waiting. The collection is the inspector protocol's
 * `HeapProfiler.collectGarbage` through an in-process `node:inspector` session (no port is
 * opened): V8's "all available garbage" collection, which also shrinks the young generation,
 * unlike `--expose-gc`'s `gc()` (measured: heap total 55 -> 5 MiB against 61 -> 36 MiB, its
 * 32 MiB young generation left in place). Clock, utilisation and the collection are injected.
 */
import { performance } from 'node:perf_hooks';
import { Session } from 'node:inspector/promises';
import type { Clock, TimerHandle } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { loadMallocTrim } from './malloc-trim.js';

/** Options of {@link IdleGc}. */
export interface IdleGcOptions {
  clock: Clock;
  /** Idle time before the collection, ms (> 0). */
  afterMs: number;
  /** ELU sampling window, ms (default 1,000). */
  checkMs?: number;
  /** A window at or above this ELU counts as busy (arms the release; default 0.2). */
  busyElu?: number;
  /** A window below this ELU counts as idle (default 0.1: the router's own probing of a few endpoints stays below it even on a loaded host). */
  idleElu?: number;
  /** ELU of the window since the previous call (default: Node's event-loop utilisation). */
  utilization?: () => number;
  /** Runs a full collection (default: {@link inspectorGc}). */
  gc?: () => void | Promise<void>;
  /** Called after each collection with its duration in seconds (metrics, logs). */
  onCollect?: (seconds: number) => void;
  /** Called when a collection could not run (it is tried again after the next busy period). */
  onError?: (err: Error) => void;
}

/** Runs one full garbage collection after each busy -> idle transition (see the module comment). */
export class IdleGc {
  readonly #o: Required<Omit<IdleGcOptions, 'onCollect' | 'onError'>> & Pick<IdleGcOptions, 'onCollect' | 'onError'>;
  #timer: TimerHandle | undefined;
  #armed = false;
  #idleSince: number | undefined;
  #stopped = false;
  #collecting = false;
  /** Collections run so far. */
  collections = 0;

  constructor(o: IdleGcOptions) {
    if (!(Number.isFinite(o.afterMs) && o.afterMs > 0)) throw new KvrError('KVR_ERR_CONFIG', `idle GC: the idle time must be > 0 ms, got ${String(o.afterMs)} (0 turns the idle GC off before it is built)`);
    const busyElu = o.busyElu ?? 0.2;
    const idleElu = o.idleElu ?? 0.1;
    if (!(idleElu > 0 && idleElu <= busyElu && busyElu <= 1)) throw new KvrError('KVR_ERR_CONFIG', `idle GC: need 0 < idleElu <= busyElu <= 1, got ${idleElu} and ${busyElu}`);
    this.#o = { checkMs: 1000, utilization: eluSinceLastCall(), gc: inspectorGc, ...o, busyElu, idleElu };
  }

  /** Starts sampling. */
  start(): this {
    this.#schedule();
    return this;
  }

  /** Stops sampling (idempotent). */
  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  /** One sampling step (the timer calls it; tests may too); resolves once a collection it started is done. */
  async check(): Promise<void> {
    const u = this.#o.utilization();
    const now = this.#o.clock.now();
    if (u >= this.#o.busyElu) {
      this.#armed = true;
      this.#idleSince = undefined;
      return;
    }
    if (u >= this.#o.idleElu) {
      this.#idleSince = undefined;
      return;
    }
    this.#idleSince ??= now - this.#o.checkMs;
    if (this.#armed && now - this.#idleSince >= this.#o.afterMs) {
      this.#armed = false;
      if (this.#collecting) return;
      this.#collecting = true;
      const t0 = performance.now();
      try {
        await this.#o.gc();
        this.collections++;
        this.#o.onCollect?.((performance.now() - t0) / 1000);
      } catch (err) {
        this.#o.onError?.(err as Error);
      } finally {
        this.#collecting = false;
      }
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#schedule();
      void this.check();
    }, this.#o.checkMs);
  }
}

/** Event-loop utilisation of the window since the previous call. */
function eluSinceLastCall(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const d = performance.eventLoopUtilization(now, last);
    last = now;
    return d.utilization;
  };
}

/**
 * V8's "all available garbage" collection (memory-reducing: compaction, young generation shrunk)
 * through an in-process inspector session, as DevTools' "collect garbage" button does.
 */
export async function inspectorGc(): Promise<void> {
  const session = new Session();
  session.connect();
  try {
    await session.post('HeapProfiler.collectGarbage');
  } catch (err) {
    throw new KvrError('KVR_ERR_INTERNAL', `idle GC: the inspector refused HeapProfiler.collectGarbage (${(err as Error).message}); run with --idle-gc-after 0`);
  } finally {
    // Not from inside the protocol's callback: disconnecting there leaves the process unable to exit.
    session.disconnect();
  }
}

/** Default idle time before the collection (`--idle-gc-after`), ms. */
export const DEFAULT_IDLE_GC_AFTER_MS = 10_000;

/**
 * The idle GC of a front end (gateway or endpoint picker): `afterMs` undefined = the default,
 * 0 = off. Each run is the inspector collection then, where glibc's is the C library, one
 * `malloc_trim(0)` (src/app/malloc-trim.ts); runs are counted in
 * `kvroute_idle_gc_total` / `_seconds_total` and the resident memory they gave back in
 * `kvroute_idle_released_bytes_total`.
 */
export function startIdleGc(
  afterMs: number | undefined,
  clock: Clock,
  metrics: { idleGcRuns: { inc(): void }; idleGcSeconds: { inc(v: number): void }; idleReleasedBytes: { inc(v: number): void } },
  logger: { debug(o: object, msg: string): void; info(o: object, msg: string): void; warn(o: object, msg: string): void },
): IdleGc | undefined {
  const ms = afterMs ?? DEFAULT_IDLE_GC_AFTER_MS;
  if (ms === 0) return undefined;
  let told = false;
  let rssBefore = 0;
  return new IdleGc({
    clock,
    afterMs: ms,
    gc: async () => {
      rssBefore = process.memoryUsage.rss();
      await inspectorGc();
      const t = await loadMallocTrim();
      if ('trim' in t) t.trim();
      else if (!told) {
        told = true;
        logger.info({ reason: t.unavailable }, 'idle: malloc_trim is not available; only the garbage collection runs');
      }
    },
    onCollect: (seconds) => {
      const released = rssBefore - process.memoryUsage.rss();
      metrics.idleGcRuns.inc();
      metrics.idleGcSeconds.inc(seconds);
      if (released > 0) metrics.idleReleasedBytes.inc(released);
      logger.debug({ ms: Math.round(seconds * 1000), releasedMiB: Math.round(released / 2 ** 20) }, 'idle: full garbage collection (and malloc_trim) ran');
    },
    onError: (err) => logger.warn({ err: err.message }, 'idle: the garbage collection could not run'),
  }).start();
}
