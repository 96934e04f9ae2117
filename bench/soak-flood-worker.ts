/**
 * KV-event flood for the soak (bench/soak.ts), run in a worker thread: a ZeroMQ PUB connects to
 * the router's bound KV-event SUB and sends valid vLLM EventBatches just under 1 MiB (the
 * default message cap, so each one is decoded and applied: the worst case) at `perSecond`
 * messages per second, on a topic that names a known endpoint, with sequence numbers far
 * above the real publisher's. Every message carries fresh block hashes (the index grows).
 *
 * workerData: { address, topic, perSecond, maxBytes, sourceAddress? }; a message from the
 * parent stops it; it answers with `{ sent, bytes }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Publisher } from 'zeromq';
import { encodeEventBatch } from '../src/events/codec.js';
import { encodeSeq } from '../src/events/wire.js';
import { floodStoredEvent } from './flood-events.js';

interface FloodData { address: string; topic: string; perSecond: number; maxBytes: number; sourceAddress?: string }

const d = workerData as FloodData;

/** The largest 16-event batch under `maxBytes` for message number `m`. */
function message(m: number, blocksPerEvent: number): Uint8Array {
  return encodeEventBatch({ ts: Date.now() / 1000, events: Array.from({ length: 16 }, (_, e) => floodStoredEvent(blocksPerEvent, 1000 + m * 16 + e)), dataParallelRank: null });
}

let blocks = 1400;
while (message(0, blocks).length > d.maxBytes) blocks -= 25;
// A few distinct payloads, re-sent with fresh seqs (building one costs more than sending it).
const payloads = Array.from({ length: 8 }, (_, m) => message(m, blocks));
const pub = new Publisher({ linger: 0, sendHighWaterMark: 1000 });
pub.connect(d.sourceAddress ? `tcp://${d.sourceAddress}:0;${d.address.replace(/^tcp:\/\//, '')}` : d.address);
let stop = false;
let sent = 0;
let bytes = 0;
parentPort!.on('message', () => (stop = true));
const t0 = performance.now();
let seq = 1_000_000n;
while (!stop) {
  const due = Math.floor(((performance.now() - t0) / 1000) * d.perSecond);
  while (sent < due && !stop) {
    const p = payloads[sent % payloads.length];
    await pub.send([d.topic, encodeSeq(seq++), p]);
    sent++;
    bytes += p.length;
  }
  await new Promise((r) => setTimeout(r, 10));
}
pub.close();
parentPort!.postMessage({ sent, bytes, messageBytes: payloads[0].length, blocksPerMessage: blocks * 16 });
