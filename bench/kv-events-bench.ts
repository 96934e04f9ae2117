/**
 * KV-event ingestion throughput: a ZeroMQ publisher on 127.0.0.1 sends pre-encoded vLLM
 * EventBatches (3 frames, seq from 0) as fast as the ingestor takes them (at most `WINDOW`
 * batches in flight, so nothing is dropped at the high-water mark); the {@link EventIngestor}
 * decodes them and hands them, in order, to a no-op sink. Reports batches/s and events/s
 * delivered to the sink, for both payload encodings, plus decode-only figures.
 *
 *   npx tsc -p . --outDir .out && node .out/bench/kv-events-bench.js [seconds per encoding, default 2]
 *
 * Each batch holds 4 events, like a busy engine step: 2 BlockStored of 4 blocks (64 token ids
 * each) and 2 BlockRemoved of 4 hashes; hashes are random 64-bit values (most above 2^31).
 *
 * Codec + index (end to end into the memory index, in process): per encoding, 64,000 pre-encoded
 * batches of one endpoint whose BlockStored events chain on the previous batch (so every block
 * is keyed and stored), 8 blocks stored and 4 removed per batch, decoded and applied through a
 * KvIndexer to a MemoryBlockIndex; blocks stored per second of wall and of CPU time.
 */
import { XPublisher } from 'zeromq';
import { decodeEventBatch, encodeEventBatch, type EventEncoding } from '../src/events/codec.js';
import { EventIngestor } from '../src/events/event-ingestor.js';
import type { KvEvent, KvEventSink } from '../src/events/types.js';
import { encodeSeq } from '../src/events/wire.js';
import { KvIndexer } from '../src/kv-index/kv-indexer.js';
import { MemoryBlockIndex } from '../src/kv-index/memory-index.js';

const SECONDS = Number(process.argv[2] ?? 2);
/** Optional event-loop share of the ingestor (EventIngestorOptions.loopShare; 0 = no budget). */
const LOOP_SHARE = process.argv[3] !== undefined ? Number(process.argv[3]) : undefined;
const WINDOW = 2000;

function rand64(state: { x: bigint }): bigint {
  state.x ^= (state.x << 13n) & 0xffffffffffffffffn;
  state.x ^= state.x >> 7n;
  state.x ^= (state.x << 17n) & 0xffffffffffffffffn;
  return state.x;
}

function stepBatch(): KvEvent[] {
  const s = { x: 0x9e3779b97f4a7c15n };
  const hashes = (n: number): bigint[] => Array.from({ length: n }, () => rand64(s));
  const tokens = (n: number): number[] => Array.from({ length: n }, (_, i) => (i * 7919) % 128000);
  return [
    { type: 'BlockStored', blockHashes: hashes(4), parentBlockHash: rand64(s), tokenIds: tokens(64), blockSize: 16, loraId: null, medium: 'GPU', loraName: null },
    { type: 'BlockStored', blockHashes: hashes(4), parentBlockHash: null, tokenIds: tokens(64), blockSize: 16, loraId: null, medium: 'GPU', loraName: null },
    { type: 'BlockRemoved', blockHashes: hashes(4), medium: 'GPU' },
    { type: 'BlockRemoved', blockHashes: hashes(4), medium: 'GPU' },
  ];
}

async function run(encoding: EventEncoding): Promise<void> {
  const events = stepBatch();
  const payload = Buffer.from(encodeEventBatch({ ts: Date.now() / 1000, events, dataParallelRank: 0 }, { encoding }));
  const topic = Buffer.from('kv@127.0.0.1:8000@meta-llama/Llama-3.1-8B-Instruct');

  // Decode only.
  const n0 = 50_000;
  let t = performance.now();
  for (let i = 0; i < n0; i++) decodeEventBatch(payload);
  const decodeUs = ((performance.now() - t) * 1000) / n0;

  // Through a real socket.
  let applied = 0;
  let appliedEvents = 0;
  const sink: KvEventSink = {
    applyBatch: async (_id, _m, _s, b) => {
      applied++;
      appliedEvents += b.events.length;
    },
    resetEndpoint: async () => undefined,
  };
  const pub = new XPublisher({ linger: 0, sendHighWaterMark: 100_000 });
  await pub.bind('tcp://127.0.0.1:*');
  const ing = new EventIngestor({ sink, ...(LOOP_SHARE !== undefined ? { loopShare: LOOP_SHARE } : {}) });
  ing.add({ id: 'bench', address: '127.0.0.1:8000', events: pub.lastEndpoint! });
  await pub.receive(); // the subscription
  let seq = 0n;
  t = performance.now();
  const end = t + SECONDS * 1000;
  while (performance.now() < end) {
    if (Number(seq) - applied < WINDOW) await pub.send([topic, encodeSeq(seq++), payload]);
    else await new Promise((r) => setImmediate(r));
  }
  while (applied < Number(seq)) await new Promise((r) => setImmediate(r));
  const secs = (performance.now() - t) / 1000;
  const st = ing.stats().endpoints.bench;
  await ing.close();
  pub.close();
  console.log(
    `${encoding.padEnd(5)}  payload ${String(payload.length).padStart(4)} B  decode ${decodeUs.toFixed(2)} us/batch` +
      `  |  socket -> sink: ${Math.round(applied / secs).toLocaleString('en-US')} batches/s, ${Math.round(appliedEvents / secs).toLocaleString('en-US')} events/s` +
      `  (${applied} batches in ${secs.toFixed(2)} s; gaps ${st.gaps}, malformed ${st.malformedMessages})`,
  );
}

/** Decode + KvIndexer + MemoryBlockIndex, in process, over chained batches (see the file comment). */
async function codecAndIndex(encoding: EventEncoding): Promise<void> {
  const s = { x: 0x2545f4914f6cdd1dn };
  const n = 64_000;
  const payloads: Uint8Array[] = [];
  let parent: bigint | null = null;
  const recent: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const a = Array.from({ length: 4 }, () => rand64(s));
    const b = Array.from({ length: 4 }, () => rand64(s));
    const tokens = (k: number): number[] => Array.from({ length: 64 }, (_, j) => (i * 131 + k * 17 + j * 7919) % 128000);
    const events: KvEvent[] = [
      { type: 'BlockStored', blockHashes: a, parentBlockHash: parent, tokenIds: tokens(0), blockSize: 16, loraId: null, medium: 'GPU', loraName: null },
      { type: 'BlockStored', blockHashes: b, parentBlockHash: a[3], tokenIds: tokens(1), blockSize: 16, loraId: null, medium: 'GPU', loraName: null },
    ];
    if (recent.length >= 16) events.push({ type: 'BlockRemoved', blockHashes: recent.splice(0, 4), medium: 'GPU' });
    recent.push(...a);
    parent = b[3];
    payloads.push(encodeEventBatch({ ts: 1_700_000_000 + i / 1000, events, dataParallelRank: null }, { encoding }));
  }
  const indexer = new KvIndexer({ index: new MemoryBlockIndex() });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await indexer.applyBatch('bench', 'meta-llama/Llama-3.1-8B-Instruct', BigInt(i), decodeEventBatch(payloads[i]).batch);
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const st = indexer.indexerStats();
  if (st.unknownParents !== 0 || st.storedBlocks !== n * 8) throw new Error(`codec + index: ${st.storedBlocks} blocks stored, ${st.unknownParents} unknown parents`);
  console.log(
    `${encoding.padEnd(5)}  codec + indexer + memory index: ${Math.round(st.storedBlocks / secs).toLocaleString('en-US')} blocks stored/s` +
      ` (${Math.round(st.storedBlocks / ((cpu.user + cpu.system) / 1e6)).toLocaleString('en-US')} per CPU second), ${Math.round(n / secs).toLocaleString('en-US')} batches/s`,
  );
}

console.log(`kv-events-bench: node ${process.version}, ${SECONDS} s per encoding, 4 events per batch, window ${WINDOW}`);
await run('array');
await run('map');
await codecAndIndex('array');
await codecAndIndex('map');
