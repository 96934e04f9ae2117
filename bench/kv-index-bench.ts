/**
 * Micro-benchmark of the block index (a few seconds; Redis parts need `redis-server` on PATH or
 * in REDIS_SERVER, started here on a free loopback port and stopped at the end):
 *
 * - block keys of an 8,000-token prompt (500 blocks of 16), kvroute's hash vs xxhash-wasm h64
 *   chained per block;
 * - events applied per second through the indexer (memory, Redis): vLLM-shaped batches, one
 *   BlockStored of 4 blocks of 16 token ids chained on the endpoint's previous batch, one batch
 *   in 8 also removing 4 old blocks; 64 endpoints, batches of one endpoint in order, 8 endpoints
 *   in flight at once (Redis);
 * - memory ingestion in rounds (128,000 batches of 4 blocks and 16,000 of 32): `index only`
 *   (applyEngineBatch with keys computed beforehand) and `indexer` (KvIndexer on decoded events:
 *   parent resolution, token-id checks, block keys, then the index), each into a fresh index (its
 *   tables' growth included), and `indexer, warm` into an index grown by an earlier round (a
 *   running router's); best and median of the rounds (bench/kv-ingest-rounds.ts). With `--baseline DIR` (another build's root, e.g. of the previous
 *   commit) its MemoryBlockIndex and KvIndexer run in alternate rounds of the same process, for a
 *   before/after on the same machine state;
 * - lookup of an 8,000-token request (500 keys) over 64 candidate endpoints (memory, Redis),
 *   p50 / p99: `shared` (8 hold the whole prompt, the others a part of it: dozens of holders per
 *   key) and `typical` (4 hold the whole prompt).
 *
 *   npm run build && node dist/bench/kv-index-bench.js [--json] [--baseline DIR] [--memory-only]
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import xxhash from 'xxhash-wasm';
import type { BlockStoredEvent, KvEventBatch } from '../src/events/types.js';
import { BlockKeyer } from '../src/kv-index/block-keys.js';
import type { KvBlockIndex } from '../src/kv-index/kv-block-index.js';
import { KvIndexer } from '../src/kv-index/kv-indexer.js';
import { MemoryBlockIndex } from '../src/kv-index/memory-index.js';
import { RedisBlockIndex } from '../src/kv-index/redis-index.js';
import { startRedisServer, type RedisServer } from '../test/helpers/redis-server.js';
import { ingestRounds, type IngestImpl } from './kv-ingest-rounds.js';
import { fillLookupScenario, timeLookups, tokens } from './index-bench-data.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const BS = 16;
const ENDPOINTS = 64;
const results: Record<string, number> = {};


function quantiles(samples: number[]): { p50: number; p99: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: s[Math.floor(s.length * 0.5)], p99: s[Math.min(s.length - 1, Math.floor(s.length * 0.99))], mean: s.reduce((a, b) => a + b, 0) / s.length };
}

function report(name: string, value: number, unit: string): void {
  results[name] = value;
  console.log(`${name.padEnd(52)} ${value.toFixed(value < 10 ? 2 : 0).padStart(10)} ${unit}`);
}

async function benchKeys(): Promise<void> {
  const keyer = new BlockKeyer();
  const prompt = tokens(8_000, 1);
  const api = await xxhash();
  const xx = (t: number[]) => {
    const bytes = new Uint8Array(new Uint32Array(t).buffer);
    let key = api.h64(MODEL, 0n);
    const out = new Float64Array(t.length / BS);
    for (let b = 0; b < out.length; b++) {
      key = api.h64Raw(bytes.subarray(b * BS * 4, (b + 1) * BS * 4), key);
      out[b] = Number(key & 0xfffffffffffffn);
    }
    return out;
  };
  for (const [name, fn] of [['block keys, 8,000 tokens (kvroute hash)', () => keyer.requestKeys(MODEL, prompt, BS)], ['block keys, 8,000 tokens (xxhash-wasm h64 chained)', () => xx(prompt)]] as const) {
    for (let i = 0; i < 300; i++) fn();
    const samples: number[] = [];
    const end = performance.now() + 400;
    while (performance.now() < end) {
      const t0 = performance.now();
      for (let i = 0; i < 10; i++) fn();
      samples.push(((performance.now() - t0) / 10) * 1000);
    }
    report(`${name} p50`, quantiles(samples).p50, 'us');
  }
}

/** vLLM-shaped batches of one endpoint: 4 new blocks each, chained; every 8th also removes 4. */
function makeStream(ep: number, n: number): KvEventBatch[] {
  const out: KvEventBatch[] = [];
  let parent: bigint | null = null;
  let next = BigInt(ep) << 32n;
  const first = next;
  for (let i = 0; i < n; i++) {
    const hashes = [next, next + 1n, next + 2n, next + 3n];
    next += 4n;
    const stored: BlockStoredEvent = { type: 'BlockStored', blockHashes: hashes, parentBlockHash: parent, tokenIds: tokens(4 * BS, ep * 100_000 + i), blockSize: BS, loraId: null, medium: 'GPU', loraName: null };
    parent = hashes[3];
    const events: KvEventBatch['events'] = [stored];
    if (i % 8 === 7) events.push({ type: 'BlockRemoved', blockHashes: [0n, 1n, 2n, 3n].map((d) => first + BigInt(i - 7) * 4n + d), medium: 'GPU' });
    out.push({ ts: 1_700_000_000 + i / 1000, events, dataParallelRank: null });
  }
  return out;
}

async function benchEvents(name: string, index: KvBlockIndex, ms: number, parallel: number): Promise<void> {
  const indexer = new KvIndexer({ index });
  const streams = Array.from({ length: ENDPOINTS }, (_, e) => makeStream(e, 4_000));
  const cursor = new Array<number>(ENDPOINTS).fill(0);
  let batches = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  // Endpoints are partitioned across workers, so one endpoint's batches stay in order.
  const worker = async (w: number) => {
    while (performance.now() < end) {
      for (let e = w; e < ENDPOINTS && performance.now() < end; e += parallel) {
        const i = cursor[e]++;
        if (i >= streams[e].length) return;
        await indexer.applyBatch(`pod-${e}`, MODEL, BigInt(i), streams[e][i]);
        batches++;
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, (_, w) => worker(w)));
  const secs = (performance.now() - t0) / 1000;
  report(`events applied, ${name} (batches/s)`, batches / secs, 'batches/s');
  report(`events applied, ${name} (blocks stored/s)`, (batches * 4) / secs, 'blocks/s');
}

/**
 * `shared`: 8 endpoints hold the whole prompt and the 56 others a prefix of 10..490 blocks (every
 * key has dozens of holders: the worst case); `typical`: 4 endpoints hold the whole prompt, the
 * others only other prompts.
 */
async function benchLookup(name: string, index: KvBlockIndex, ms: number, mode: 'shared' | 'typical'): Promise<void> {
  const { keys, ids } = await fillLookupScenario(index, MODEL, BS, ENDPOINTS, mode);
  const samples = await timeLookups(index, keys, ids, ms);
  const q = quantiles(samples);
  report(`lookup 500 keys x 64 endpoints, ${name}, ${mode} p50`, q.p50, 'us');
  report(`lookup 500 keys x 64 endpoints, ${name}, ${mode} p99`, q.p99, 'us');
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--baseline');
  const impls: IngestImpl[] = [{ name: 'this build', Index: MemoryBlockIndex, Indexer: KvIndexer }];
  if (at > 0) {
    const dir = path.resolve(process.argv[at + 1] ?? '');
    const load = async (f: string) => import(pathToFileURL(path.join(dir, 'dist/src/kv-index', f)).href);
    impls.unshift({ name: 'baseline', Index: (await load('memory-index.js')).MemoryBlockIndex, Indexer: (await load('kv-indexer.js')).KvIndexer });
  }
  for (const per of [4, 32]) {
    for (const r of await ingestRounds(impls, { perBatch: per, rounds: 6 })) {
      report(`ingest memory, ${r.name}, ${r.mode}, ${per} blocks/batch, best (blocks/s)`, r.best, 'blocks/s');
      report(`ingest memory, ${r.name}, ${r.mode}, ${per} blocks/batch, median (blocks/s)`, r.median, 'blocks/s');
      report(`ingest memory, ${r.name}, ${r.mode}, ${per} blocks/batch, best per CPU s`, r.bestCpu, 'blocks/s');
    }
  }
  if (process.argv.includes('--memory-only')) return;
  await benchKeys();
  await benchEvents('memory', new MemoryBlockIndex(), 1_000, 1);
  await benchLookup('memory', new MemoryBlockIndex(), 400, 'shared');
  await benchLookup('memory', new MemoryBlockIndex(), 400, 'typical');
  let redis: RedisServer | undefined;
  try {
    redis = await startRedisServer();
  } catch (err) {
    console.log(`redis-server not started (${err instanceof Error ? err.message : String(err)}): Redis parts skipped`);
  }
  if (redis !== undefined) {
    const open = async (prefix: string) => {
      const idx = new RedisBlockIndex({ url: redis.url, prefix, commandTimeoutMs: 5_000 });
      await idx.connect();
      return idx;
    };
    try {
      const a = await open('bench-events:');
      await benchEvents('redis', a, 1_500, 8);
      await a.close();
      for (const mode of ['shared', 'typical'] as const) {
        const b = await open(`bench-lookup-${mode}:`);
        await benchLookup('redis', b, 800, mode);
        await b.close();
      }
    } finally {
      await redis.stop();
    }
  }
}


await main();
if (process.argv.includes('--json')) console.log(JSON.stringify(results));
