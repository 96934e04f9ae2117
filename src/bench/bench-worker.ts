/**
 * Worker thread of {@link runBenchCommandInWorker} (bench-thread.ts): runs the bench command in
 * this thread and posts what it prints, then the report or the error (see that file).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { KvrError } from '../core/errors.js';
import { runBenchCommandHere } from './bench-command.js';
import type { BenchWorkerData, BenchWorkerMessage } from './bench-thread.js';

const { options, errIsTTY } = workerData as BenchWorkerData;
const post = (m: BenchWorkerMessage): void => parentPort!.postMessage(m);
const stream = (kind: 'out' | 'err', isTTY: boolean) =>
  ({
    isTTY,
    write(text: string | Uint8Array): boolean {
      post({ kind, text: typeof text === 'string' ? text : Buffer.from(text).toString('utf8') });
      return true;
    },
  }) as unknown as NodeJS.WriteStream;

try {
  const report = await runBenchCommandHere(options, stream('out', false), stream('err', errIsTTY));
  post({ kind: 'done', report });
} catch (err) {
  const e = err as Error;
  post({
    kind: 'error',
    message: e?.message ?? String(err),
    ...(e?.stack !== undefined ? { stack: e.stack } : {}),
    ...(err instanceof KvrError ? { code: err.code, ...(err.param !== undefined ? { param: err.param } : {}) } : {}),
  });
}
