/**
 * A small pool of worker threads that tokenize long texts off the event loop. Each worker loads
 * the tokenizer once (lazily: workers start on the first job); jobs queue FIFO and each idle
 * worker takes the next one. Idle workers are unref'd, so an idle pool never keeps the process
 * alive (a busy one is ref'd until it answers, so an awaited job is never dropped at exit);
 * {@link TokenizeWorkerPool.close} terminates them and fails what is still queued.
 */
import { Worker } from 'node:worker_threads';
import { KvrError } from '../core/errors.js';
import type { EncoderSpec } from './encoder.js';

interface Job {
  id: number;
  texts: string[];
  resolve(ids: Int32Array[]): void;
  reject(err: KvrError): void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
}

type Reply = { id: number; ok: true; ids: Int32Array[] } | { id: number; ok: false; message: string };

/** Counters of a {@link TokenizeWorkerPool}. */
export interface WorkerPoolStats {
  /** Workers running now. */
  workers: number;
  /** Jobs waiting for a worker. */
  queued: number;
  /** Jobs done / failed so far. */
  done: number;
  failed: number;
}

/** Tokenizes text batches in worker threads. */
export class TokenizeWorkerPool {
  readonly size: number;
  readonly #spec: EncoderSpec;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #closed = false;
  #done = 0;
  #failed = 0;

  /**
   * @param spec the encoder each worker loads
   * @param size number of workers (>= 1)
   */
  constructor(spec: EncoderSpec, size = 1) {
    this.#spec = spec;
    this.size = Math.max(1, Math.floor(size));
  }

  /** Counters. */
  stats(): WorkerPoolStats {
    return { workers: this.#slots.length, queued: this.#queue.length, done: this.#done, failed: this.#failed };
  }

  /** Plain token ids (no post-processor specials) of each text. Rejects with a KvrError. */
  encodeBatch(texts: string[]): Promise<Int32Array[]> {
    if (this.#closed) return Promise.reject(new KvrError('KVR_ERR_INTERNAL', 'the tokenizer worker pool is closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, texts, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => s.job === undefined);
      if (!slot && this.#slots.length < this.size) slot = this.#spawn();
      if (!slot) return;
      const job = this.#queue.shift()!;
      slot.job = job;
      slot.worker.ref(); // busy: keep the process alive until the answer arrives
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
      if (r.ok) {
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
        this.#failed++;
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
