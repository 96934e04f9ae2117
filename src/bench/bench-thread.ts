/**
 * `kvroute bench` on the virtual engine runs on a worker thread whose young generation is larger
 * than a main thread's can be made at run time (V8 fixes it when the process starts; a Worker
 * takes `resourceLimits.maxYoungGenerationSizeMb`). A virtual run allocates many short-lived
 * objects per request and per engine step; with 32 MiB semi-spaces instead of 16 scavenges are
 * half as frequent (docs/benchmarks.md "Virtual engine speed" has the measurement). The command
 * behaves exactly as in-process: same output, same progress bar, same errors and exit codes.
 *
 *   main thread                           worker (bench-worker.js)
 *   start worker {options, isTTY}  ──>    runBenchCommandHere(options, out, err)
 *   out.write / err.write          <──    {kind: 'out' | 'err', text}   (in order, one port)
 *   resolve(report)                <──    {kind: 'done', report}
 *   reject(KvrError(code) | Error) <──    {kind: 'error', code?, param?, message, stack}
 *   reject(worker error / exit)           crash, out of memory, exit without an answer
 */
import { Worker } from 'node:worker_threads';
import { KvrError, type ErrorCode } from '../core/errors.js';
import type { BenchCliOptions } from './bench-command.js';
import type { BenchReport } from './run-bench.js';

/** Young generation of the bench worker (MiB): 3 x the semi-space, so 96 = 32 MiB semi-spaces. */
export const BENCH_WORKER_YOUNG_GENERATION_MB = 96;

/** What the worker is given. */
export interface BenchWorkerData {
  options: BenchCliOptions;
  /** Whether the caller's error stream is a terminal (the progress bar is drawn only then). */
  errIsTTY: boolean;
}

/** A message from the worker. */
export type BenchWorkerMessage =
  | { kind: 'out'; text: string }
  | { kind: 'err'; text: string }
  | { kind: 'done'; report: BenchReport }
  | { kind: 'error'; message: string; stack?: string; code?: ErrorCode; param?: string };

/** Runs `kvroute bench` with options `o` on a worker thread; writes what it prints to `out` / `err`. */
export function runBenchCommandInWorker(o: BenchCliOptions, out: NodeJS.WritableStream, err: NodeJS.WriteStream): Promise<BenchReport> {
  const data: BenchWorkerData = { options: o, errIsTTY: err.isTTY === true };
  const worker = new Worker(new URL('./bench-worker.js', import.meta.url), {
    workerData: data,
    resourceLimits: { maxYoungGenerationSizeMb: BENCH_WORKER_YOUNG_GENERATION_MB },
  });
  return new Promise<BenchReport>((resolve, reject) => {
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      f();
    };
    worker.on('message', (m: BenchWorkerMessage) => {
      if (m.kind === 'out') out.write(m.text);
      else if (m.kind === 'err') err.write(m.text);
      else if (m.kind === 'done') settle(() => resolve(m.report));
      else {
        const e = m.code !== undefined ? new KvrError(m.code, m.message, m.param !== undefined ? { param: m.param } : {}) : new Error(m.message);
        if (m.stack !== undefined) e.stack = m.stack;
        settle(() => reject(e));
      }
    });
    worker.once('error', (e) => settle(() => reject(e)));
    worker.once('exit', (code) => settle(() => reject(new Error(`the bench worker exited (code ${code}) without a report`))));
  });
}
