/**
 * Can KV-event ingestion stall the router? A real HTTP server on 127.0.0.1 answers a client that
 * sends one request every 2 ms, while a real ZeroMQ publisher sends the ingestor (indexer + memory
 * index, as in the router) one of two loads:
 *
 * - `huge`: one BlockStored of 200,000 blocks (3.2 M token ids, ~10 MB of msgpack);
 * - `flood`: 30 messages of ~1.1 MB (16 BlockStored of 1,300 blocks each), sent at once.
 *
 * Reports, while ingestion runs, the HTTP latency (p50 / p99 / max) and the event loop's delay
 * (perf_hooks histogram, max), against the same client with no ingestion (baseline), and how long
 * ingestion took. Each load runs twice: with the caps raised so it is applied (`+caps`), and
 * with the default caps (a 10 MB / 1.1 MB message is then counted and dropped undecoded).
 * `flood1m`: 30 messages just under the 1 MiB cap, applied with the default caps, without an
 * event-loop budget (`share=0`, the behaviour before src/events/loop-budget.ts) and with the
 * default one, alternating twice.
 *
 *   npx tsc -p . --outDir .out && node .out/bench/kv-events-stall-bench.js
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { XPublisher } from 'zeromq';
import { encodeEventBatch } from '../src/events/codec.js';
import { EventIngestor } from '../src/events/event-ingestor.js';
import type { BlockStoredEvent, KvEventBatch } from '../src/events/types.js';
import { encodeSeq } from '../src/events/wire.js';
import { floodStoredEvent } from './flood-events.js';
import { KvIndexer } from '../src/kv-index/kv-indexer.js';
import { MemoryBlockIndex } from '../src/kv-index/memory-index.js';

const TOPIC = 'kv@127.0.0.1:8000@bench-model';

async function client(url: string, untilDone: () => boolean): Promise<number[]> {
  const lat: number[] = [];
  while (!untilDone()) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(url, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
    lat.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 2));
  }
  return lat;
}

const q = (a: number[], p: number): number => {
  const s = [...a].sort((x, y) => x - y);
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

async function scenario(name: string, payloads: Uint8Array[] | undefined, server: Server, raised: boolean, loopShare?: number): Promise<void> {
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  const index = new MemoryBlockIndex();
  const indexer = new KvIndexer({ index });
  const pub = new XPublisher({ linger: 0, sendHighWaterMark: 100_000 });
  await pub.bind('tcp://127.0.0.1:*');
  const caps = raised ? { maxMessageBytes: 64 << 20, maxBlocksPerEvent: 250_000, maxQueueBytes: 256 << 20 } : {};
  const ing = new EventIngestor({ sink: indexer, resyncIntervalMs: 0, ...caps, ...(loopShare !== undefined ? { loopShare } : {}) } as ConstructorParameters<typeof EventIngestor>[0]);
  ing.add({ id: 'pod', address: '127.0.0.1:8000', events: pub.lastEndpoint!, model: 'bench-model' });
  await pub.receive();
  const h = monitorEventLoopDelay({ resolution: 1 });
  let done = false;
  const t0 = performance.now();
  let ingestMs = 0;
  const warm = await client(url, (() => {
    let n = 0;
    return () => n++ >= 20;
  })());
  void warm;
  h.enable();
  const lat = client(url, () => done);
  if (payloads) {
    for (let i = 0; i < payloads.length; i++) await pub.send([TOPIC, encodeSeq(BigInt(i)), payloads[i]]);
    const want = payloads.length - 1;
    // A message over ZeroMQ's maxMessageSize (4x the byte cap) never arrives: ZeroMQ drops the
    // peer. Give up waiting after 10 s of no progress.
    let seen = -1;
    let since = performance.now();
    while (ing.stats().endpoints.pod.lastSeq < want && performance.now() - since < 10_000) {
      if (ing.stats().endpoints.pod.lastSeq !== seen) [seen, since] = [ing.stats().endpoints.pod.lastSeq, performance.now()];
      await new Promise((r) => setTimeout(r, 5));
    }
    if (ing.stats().endpoints.pod.lastSeq < want) console.log(`  (${name}: ${want - ing.stats().endpoints.pod.lastSeq} message(s) never arrived: over ZeroMQ's maxMessageSize, the peer was dropped)`);
    await ing.idle();
    ingestMs = performance.now() - t0;
    done = true;
  } else {
    await new Promise((r) => setTimeout(r, 2000));
    done = true;
  }
  const l = await lat;
  h.disable();
  const st = ing.stats().endpoints.pod as { oversizedMessages?: number };
  console.log(
    `${(name + (payloads && raised ? '+caps' : '') + (loopShare !== undefined ? ` share=${loopShare}` : '')).padEnd(19)} requests ${String(l.length).padStart(5)}  http p50 ${q(l, 0.5).toFixed(1)} ms  p99 ${q(l, 0.99).toFixed(1)} ms  max ${Math.max(...l).toFixed(1)} ms` +
      `  | loop delay max ${(h.max / 1e6).toFixed(1)} ms p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms` +
      (payloads ? `  | ingest ${ingestMs.toFixed(0)} ms, ${index.stats().entries.toLocaleString('en-US')} entries, ${st.oversizedMessages ?? 0} dropped as oversized` : ''),
  );
  await ing.close();
  pub.close();
  await index.close();
}

const server = createServer((_req, res) => res.end('ok'));
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
const batchOf = (events: BlockStoredEvent[]): KvEventBatch => ({ ts: Date.now() / 1000, events, dataParallelRank: 0 });
const huge = [encodeEventBatch(batchOf([floodStoredEvent(200_000, 1, null)]))];
const flood: Uint8Array[] = [];
for (let m = 0; m < 30; m++) flood.push(encodeEventBatch(batchOf(Array.from({ length: 16 }, (_, e) => floodStoredEvent(1300, 100 + m * 16 + e, null)))));
console.log(`kv-events-stall-bench: node ${process.version}; huge ${(huge[0].length / 1e6).toFixed(1)} MB, flood ${flood.length} x ${(flood[0].length / 1e6).toFixed(2)} MB`);
// `--only flood1m` runs the last part alone (profiling).
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
await scenario('baseline', undefined, server, false);
if (only === undefined) {
  await scenario('huge', huge, server, true);
  await scenario('huge', huge, server, false);
  await scenario('flood', flood, server, true);
  await scenario('flood', flood, server, false);
}
// Messages just under the 1 MiB cap (decoded and applied with the default caps): without an
// event-loop budget (share 0, the behaviour before) and with the default one, alternating.
const under: Uint8Array[] = [];
for (let m = 0; m < 30; m++) under.push(encodeEventBatch(batchOf(Array.from({ length: 16 }, (_, e) => floodStoredEvent(1150, 900 + m * 16 + e, null)))));
console.log(`flood1m: ${under.length} x ${(under[0].length / 2 ** 20).toFixed(3)} MiB`);
for (let round = 0; round < 2; round++) {
  await scenario('flood1m', under, server, false, 0);
  await scenario('flood1m', under, server, false);
}
server.close();
