/**
 * The bench's reference pass (pooled-LRU reference and OPT bound, reference-rates.ts) on its own
 * worker thread, so that it runs beside the strategies' runs instead of before them: it reads only
 * the workload, never the run. The worker rebuilds the workload from its name and options
 * (deterministic for a seed) and answers once; the caller awaits the answer when it first needs
 * the figures. Wall time only: the CPU time is the same, now on a second core when one is free.
 *
 *   start   new Worker(reference-worker.js, {workload, options, capacityBlocks, blockSize})
 *   answer  {ok: true, lru, opt} -> resolves;  {ok: false, message, code} -> rejects (KvrError
 *           with the worker's code when it had one);  worker error or exit without an answer
 *           (out of memory, crash) -> rejects with what is known
 *   cancel  terminates the worker; an unsettled result rejects ("cancelled")
 */
import { Worker } from 'node:worker_threads';
import { KvrError, type ErrorCode } from '../core/errors.js';
import type { WorkloadOptions } from './workloads.js';

/** What the worker needs to rebuild the workload and size the pooled cache. */
export interface ReferenceJob {
  /** Workload name (createWorkload). */
  workload: string;
  /** Its options, seed included (plain data: they are copied to the worker). */
  options: WorkloadOptions;
  capacityBlocks: number;
  blockSize: number;
}

/** A reference pass in flight. */
export interface ReferencePass {
  /** The pooled-LRU reference and the OPT bound. Never rejects unobserved (a no-op handler is attached). */
  readonly result: Promise<{ lru: number; opt: number }>;
  /** Stops the worker (when the bench fails before it needs the result). */
  cancel(): void;
}

type Answer = { ok: true; lru: number; opt: number } | { ok: false; message: string; code?: ErrorCode };

/** Starts the reference pass of `job` on a worker thread. */
export function startReferencePass(job: ReferenceJob): ReferencePass {
  const worker = new Worker(new URL('./reference-worker.js', import.meta.url), { workerData: job });
  let settled = false;
  let fail: (err: Error) => void = () => undefined;
  const result = new Promise<{ lru: number; opt: number }>((resolve, reject) => {
    fail = (err: Error) => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    worker.once('message', (a: Answer) => {
      if (settled) return;
      if (a.ok) {
        settled = true;
        resolve({ lru: a.lru, opt: a.opt });
      } else {
        fail(a.code !== undefined ? new KvrError(a.code, a.message) : new Error(`the reference pass failed: ${a.message}`));
      }
    });
    worker.once('error', (err) => fail(new Error(`the reference pass failed: ${err.message}`)));
    worker.once('exit', (code) => fail(new Error(`the reference pass's worker exited (code ${code}) without an answer`)));
  });
  result.catch(() => undefined);
  return {
    result,
    cancel: () => {
      fail(new Error('the reference pass was cancelled'));
      void worker.terminate();
    },
  };
}
