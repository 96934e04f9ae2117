/**
 * Worker thread of {@link startReferencePass} (reference-pass.ts): rebuilds the workload from its
 * name and options (generation is deterministic for a seed, so it is the run's workload request
 * for request), computes {@link referenceHitRates} and posts `{ok: true, lru, opt}`, or
 * `{ok: false, message, code}` when it throws.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { KvrError } from '../core/errors.js';
import { referenceHitRates } from './reference-rates.js';
import type { ReferenceJob } from './reference-pass.js';
import { createWorkload } from './workloads.js';

const job = workerData as ReferenceJob;
try {
  const workload = createWorkload(job.workload, job.options);
  parentPort!.postMessage({ ok: true, ...referenceHitRates(workload, job.capacityBlocks, job.blockSize) });
} catch (err) {
  parentPort!.postMessage({ ok: false, message: (err as Error)?.message ?? String(err), code: err instanceof KvrError ? err.code : undefined });
}
