/**
 * Worker thread of {@link TokenizeWorkerPool}: loads the encoder of `workerData` once, then
 * answers `{id, texts}` with `{id, ok: true, ids: Int32Array[]}` (buffers transferred) or
 * `{id, ok: false, message}`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadEncoder, type EncoderSpec, type TokenEncoder } from './encoder.js';

interface Job {
  id: number;
  texts: string[];
}

let encoder: TokenEncoder | undefined;
let loadError: string | undefined;
try {
  encoder = loadEncoder(workerData as EncoderSpec);
} catch (err) {
  loadError = (err as Error).message;
}

parentPort?.on('message', (job: Job) => {
  if (!encoder) {
    parentPort!.postMessage({ id: job.id, ok: false, message: loadError ?? 'tokenizer not loaded' });
    return;
  }
  try {
    const ids = job.texts.map((t) => Int32Array.from(encoder!.encodePlain(t)));
    parentPort!.postMessage({ id: job.id, ok: true, ids }, ids.map((a) => a.buffer as ArrayBuffer));
  } catch (err) {
    parentPort!.postMessage({ id: job.id, ok: false, message: (err as Error).message });
  }
});
