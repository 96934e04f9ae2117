/**
 * A small pool of worker threads that tokenize long texts off the event loop. Each worker loads
 * the tokenizer once (lazily: workers start on the first job); jobs queue FIFO and each idle
 * worker takes the next one. Idle workers are unref'd, so an idle pool never keeps the process
 * alive (a busy one is ref'd until it answers, so an awaited job is never dropped at exit);
 * {@link TokenizeWorkerPool.close} terminates them and fails what is still queued.
 *
 * The queue is bounded (`maxQueued` jobs waiting for a worker): a job beyond it is refused at
 * once with KVR_ERR_OVERLOADED (the caller routes without precise data rather than wait behind
 * seconds of BPE). A job whose AbortSignal fires while queued leaves the queue and never runs;
 * one that fires while it runs is rejected at once and its result is dropped when it arrives
 * (the worker stays busy until then). Every job settles exactly once and removes its abort
 * listener, so `queued` and `running` return to 0.
 */
import { Worker } from 'node:worker_threads';
import { KvrError } from '../core/errors.js';
import type { EncoderSpec } from './encoder.js';

interface Job {
  id: number;
  texts: string[];
  /** Settled (resolved, rejected or cancelled): later outcomes are ignored. */
  settled: boolean;
  resolve(ids: Int32Array[]): void;
  reject(err: KvrError): void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
}

type Reply = { id: number; ok: true; ids: Int32Array[] } | { id: number; ok: false; message: string };

/** Options of a {@link TokenizeWorkerPool}. */
export interface WorkerPoolOptions {
  /** Jobs that may wait for a worker (default 32); more are refused with KVR_ERR_OVERLOADED. */
  maxQueued?: number;
}

/** Counters of a {@link TokenizeWorkerPool}. */
export interface WorkerPoolStats {
  /** Workers running now; the queue's limit. */
  workers: number;
  maxQueued: number;
  /** Jobs waiting for a worker / being tokenized now (a cancelled running job counts until its worker answers). */
  queued: number;
  running: number;
  /** Jobs handed to a worker / done / failed so far. */
  started: number;
  done: number;
  failed: number;
  /** Jobs refused because `maxQueued` jobs were waiting. */
  rejectedQueueFull: number;
  /** Jobs whose signal fired while queued (never ran) / while running (result dropped). */
  cancelledQueued: number;
  cancelledRunning: number;
}

/** Tokenizes text batches in worker threads. */
export class TokenizeWorkerPool {
  readonly size: number;
  readonly maxQueued: number;
  readonly #spec: EncoderSpec;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #closed = false;
  #started = 0;
  #done = 0;
  #failed = 0;
  #rejectedQueueFull = 0;
  #cancelledQueued = 0;
  #cancelledRunning = 0;

  /**
   * @param spec the encoder each worker loads
   * @param size number of workers (>= 1)
   * @param opts queue bound
   */
  constructor(spec: EncoderSpec, size = 1, opts: WorkerPoolOptions = {}) {
    this.#spec = spec;
    this.size = Math.max(1, Math.floor(size));
    const max = opts.maxQueued ?? 32;
    if (!Number.isInteger(max) || max < 0) {
      throw new KvrError('KVR_ERR_CONFIG', `tokenizer worker queue limit ${String(max)} is not valid; pass a whole number of jobs >= 0 (default 32)`);
    }
    this.maxQueued = max;
  }

  /** Counters. */
  stats(): WorkerPoolStats {
    let running = 0;
    for (const s of this.#slots) if (s.job !== undefined) running++;
    return {
      workers: this.#slots.length,
      maxQueued: this.maxQueued,
      queued: this.#queue.length,
      running,
      started: this.#started,
      done: this.#done,
      failed: this.#failed,
      rejectedQueueFull: this.#rejectedQueueFull,
      cancelledQueued: this.#cancelledQueued,
      cancelledRunning: this.#cancelledRunning,
    };
  }

  /**
   * Plain token ids (no post-processor specials) of each text. Rejects with a KvrError:
   * KVR_ERR_OVERLOADED when the queue is full, KVR_ERR_CLIENT_CLOSED when `signal` fires first.
   */
  encodeBatch(texts: string[], signal?: AbortSignal): Promise<Int32Array[]> {
    if (this.#closed) return Promise.reject(new KvrError('KVR_ERR_INTERNAL', 'the tokenizer worker pool is closed'));
    if (signal?.aborted) {
      this.#cancelledQueued++;
      return Promise.reject(cancelled());
    }
    const idle = this.#slots.some((s) => s.job === undefined) || this.#slots.length < this.size;
    if (!idle && this.#queue.length >= this.maxQueued) {
      this.#rejectedQueueFull++;
      return Promise.reject(new KvrError('KVR_ERR_OVERLOADED', `the tokenizer worker queue is full (${this.maxQueued} jobs waiting); raise workers.maxQueued or workers.size`));
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => this.#cancel(job);
      const job: Job = {
        id: this.#nextId++,
        texts,
        settled: false,
        resolve: (ids) => {
          if (job.settled) return;
          job.settled = true;
          signal?.removeEventListener('abort', onAbort);
          resolve(ids);
        },
        reject: (err) => {
          if (job.settled) return;
          job.settled = true;
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(job);
      this.#pump();
    });
  }

  /** The job's signal fired: out of the queue if it is still there, else its result is dropped. */
  #cancel(job: Job): void {
    if (job.settled) return;
    const i = this.#queue.indexOf(job);
    if (i >= 0) {
      this.#queue.splice(i, 1);
      this.#cancelledQueued++;
    } else this.#cancelledRunning++;
    job.reject(cancelled());
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => s.job === undefined);
      if (!slot && this.#slots.length < this.size) slot = this.#spawn();
      if (!slot) return;
      const job = this.#queue.shift()!;
      slot.job = job;
      slot.worker.ref(); // busy: keep the process alive until the answer arrives
      this.#started++;
      slot.worker.postMessage({ id: job.id, texts: job.texts });
    }
  }

  #spawn(): Slot {
    const worker = new Worker(new URL('./tokenize-worker.js', import.meta.url), { workerData: this.#spec });
    worker.unref();
    const slot: Slot = { worker, job: undefined };
    worker.on('message', (r: Reply) => {
      const job = slot.job;
      if (!job || job.id !== r.id) return;
      slot.job = undefined;
      worker.unref();
      if (job.settled) {
        // Cancelled while it ran: the answer is dropped, the worker takes the next job.
      } else if (r.ok) {
        this.#done++;
        job.resolve(r.ids);
      } else {
        this.#failed++;
        job.reject(new KvrError('KVR_ERR_INTERNAL', `tokenizer worker failed: ${r.message}`));
      }
      this.#pump();
    });
    const lost = (why: string): void => {
      const i = this.#slots.indexOf(slot);
      if (i < 0) return;
      this.#slots.splice(i, 1);
      if (slot.job) {
        if (!slot.job.settled) this.#failed++;
        slot.job.reject(new KvrError('KVR_ERR_INTERNAL', `tokenizer worker ${why}`));
        slot.job = undefined;
      }
      if (!this.#closed) this.#pump();
    };
    worker.on('error', (err) => lost(`crashed: ${err.message}`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    this.#slots.push(slot);
    return slot;
  }

  /** Terminates the workers; queued and running jobs reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new KvrError('KVR_ERR_INTERNAL', 'the tokenizer worker pool closed'));
    const slots = this.#slots.splice(0);
    for (const s of slots) {
      if (s.job) s.job.reject(new KvrError('KVR_ERR_INTERNAL', 'the tokenizer worker pool closed'));
      s.job = undefined;
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}

function cancelled(): KvrError {
  return new KvrError('KVR_ERR_CLIENT_CLOSED', 'tokenization cancelled: the request was aborted');
}
