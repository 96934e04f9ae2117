/**
 * Redis block index benchmark: KV-event ingestion (blocks/s and Redis CPU per block) and lookup
 * latency, on a single redis-server and on a 3-node Redis Cluster (both started here on loopback
 * and stopped at the end), optionally against a baseline build of kvroute in the same run
 * (interleaved rounds, same servers), so before/after ratios hold on a busy machine.
 *
 * Ingestion: vLLM-shaped batches through the KvIndexer (one BlockStored of `blocks` blocks of 16
 * token ids chained on the endpoint's previous batch; one batch in 8 also removes `blocks` old
 * blocks); 64 endpoints, each endpoint's batches in order, `inflight` endpoints at once.
 * Figures: blocks/s, Redis CPU per block (used_cpu_user + sys over the blocks stored), the router's
 * CPU per block (this process), and Redis memory per block held at the end (used_memory delta over
 * the endpoints' key counts).
 * Lookup: an 8,000-token request (500 keys) over 64 candidates; `typical`: 4 hold the whole
 * prompt; `shared`: 8 hold it whole and the others parts of it.
 *
 *   npm run build --silent
 *   node dist/bench/redis-index-bench.js [--rounds 3] [--ms 1500] [--no-cluster] [--shapes 4x8,...] [--no-lookup] [--baseline <dist dir of another build>] [--cluster-baseline] [--profile] [--json]
 *
 * A baseline build: `git worktree add ../kvroute-base <commit>`, link node_modules into it, and
 * `npx tsc -p .` there; pass `--baseline ../kvroute-base/dist`. `--shapes 4x8,512x8` picks the
 * ingestion shapes (blocks per batch x endpoints in flight [x BlockStored events per batch, 1 by
 * default; `16x64x8` = 8 events of 2 blocks, a decode step of 8 requests]; `none`: lookups only); `--no-lookup` skips the lookups;
 * `--cluster-baseline` runs the baseline on the cluster too (a baseline with Redis Cluster support);
 * `--profile` prints, per single-node ingestion run, Redis's `INFO commandstats` delta: commands
 * per 1,000 blocks and Redis time per block by command (a script's inner commands included).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Cluster, Redis } from 'ioredis';
import { Redis as RedisClient } from 'ioredis';
import type { BlockStoredEvent, KvEventBatch } from '../src/events/types.js';
import type { KvBlockIndex } from '../src/kv-index/kv-block-index.js';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { startRedisCluster } from '../test/helpers/redis-cluster.js';
import { fillLookupScenario, timeLookups, tokens } from './index-bench-data.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const BS = 16;
const ENDPOINTS = 64;

interface Impl {
  name: string;
  open(url: string, prefix: string): Promise<KvBlockIndex & { close(): Promise<void>; refreshStats(): Promise<void> }>;
  indexer(index: KvBlockIndex): { applyBatch(ep: string, model: string, seq: bigint, b: KvEventBatch): Promise<void> };
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

async function loadImpl(name: string, dist: string): Promise<Impl> {
  const base = pathToFileURL(resolve(dist)).href;
  const { RedisBlockIndex } = (await import(`${base}/src/kv-index/redis-index.js`)) as typeof import('../src/kv-index/redis-index.js');
  const { KvIndexer } = (await import(`${base}/src/kv-index/kv-indexer.js`)) as typeof import('../src/kv-index/kv-indexer.js');
  return {
    name,
    open: async (url, prefix) => {
      const idx = new RedisBlockIndex({ url, prefix, commandTimeoutMs: 5_000 });
      await idx.connect();
      return idx;
    },
    indexer: (index) => new KvIndexer({ index }),
  };
}


/**
 * One endpoint's batches: `blocks` new blocks each in `events` BlockStored events (event e of a
 * batch continues chain e: a vLLM step with several requests' new blocks); every 8th batch also
 * removes `blocks` old ones.
 */
function makeStream(ep: number, n: number, blocks: number, events = 1): KvEventBatch[] {
  const out: KvEventBatch[] = [];
  const per = blocks / events;
  const parents: (bigint | null)[] = new Array<bigint | null>(events).fill(null);
  let next = BigInt(ep) << 32n;
  const first = next;
  for (let i = 0; i < n; i++) {
    const toks = tokens(blocks * BS, ep * 100_000 + i);
    const events: KvEventBatch['events'] = [];
    for (let e = 0; e < parents.length; e++) {
      const hashes = Array.from({ length: per }, (_, d) => next + BigInt(d));
      next += BigInt(per);
      const stored: BlockStoredEvent = { type: 'BlockStored', blockHashes: hashes, parentBlockHash: parents[e], tokenIds: toks.slice(e * per * BS, (e + 1) * per * BS), blockSize: BS, loraId: null, medium: 'GPU', loraName: null };
      parents[e] = hashes[per - 1];
      events.push(stored);
    }
    if (i % 8 === 7) events.push({ type: 'BlockRemoved', blockHashes: Array.from({ length: blocks }, (_, d) => first + BigInt((i - 7) * blocks + d)), medium: 'GPU' });
    out.push({ ts: 1_700_000_000 + i / 1000, events, dataParallelRank: null });
  }
  return out;
}

/** `INFO commandstats` of one node as command -> [calls, usec]. */
async function commandStats(c: Redis | Cluster): Promise<Map<string, [number, number]>> {
  const out = new Map<string, [number, number]>();
  for (const m of (await c.info('commandstats')).matchAll(/cmdstat_(\S+?):calls=(\d+),usec=(\d+)/g)) out.set(m[1], [Number(m[2]), Number(m[3])]);
  return out;
}

async function redisMemory(clients: (Redis | Cluster)[]): Promise<number> {
  let s = 0;
  for (const c of clients) s += Number(/used_memory:(\d+)/.exec(await c.info('memory'))?.[1] ?? 0);
  return s;
}

async function redisCpu(clients: (Redis | Cluster)[]): Promise<number> {
  let s = 0;
  for (const c of clients) {
    const info = await c.info('cpu');
    s += Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
  }
  return s;
}

const streamCache = new Map<string, KvEventBatch[][]>();

async function ingest(impl: Impl, url: string, prefix: string, blocks: number, inflight: number, events: number, ms: number, cpuOf: () => Promise<number>, memOf: () => Promise<number>): Promise<{ blocksPerS: number; cpuUsPerBlock: number; clientUsPerBlock: number; stored: number; bytesPerBlock: number }> {
  const index = await impl.open(url, prefix);
  const indexer = impl.indexer(index);
  const batchesPerEp = Math.ceil(400_000 / ENDPOINTS / blocks);
  let streams = streamCache.get(`${blocks}x${events}`);
  if (streams === undefined) {
    streams = Array.from({ length: ENDPOINTS }, (_, e) => makeStream(e, batchesPerEp, blocks, events));
    streamCache.set(`${blocks}x${events}`, streams);
  }
  const all = streams;
  const cursor = new Array<number>(ENDPOINTS).fill(0);
  let stored = 0;
  const mem0 = await memOf();
  const cpu0 = await cpuOf();
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + ms;
  const worker = async (w: number): Promise<void> => {
    while (performance.now() < end) {
      let progressed = false;
      for (let e = w; e < ENDPOINTS && performance.now() < end; e += inflight) {
        const i = cursor[e]++;
        if (i >= all[e].length) continue;
        await indexer.applyBatch(`pod-${e}`, MODEL, BigInt(i), all[e][i]);
        stored += blocks;
        progressed = true;
      }
      if (!progressed) return;
    }
  };
  await Promise.all(Array.from({ length: inflight }, (_, w) => worker(w)));
  const secs = (performance.now() - t0) / 1000;
  const client = process.cpuUsage(client0);
  const cpu = (await cpuOf()) - cpu0;
  // Redis memory per block held at the end (entries: the endpoints' key counts).
  await index.refreshStats();
  const bytesPerBlock = ((await memOf()) - mem0) / Math.max(1, index.stats().entries);
  await index.close();
  return { blocksPerS: stored / secs, cpuUsPerBlock: (cpu * 1e6) / stored, clientUsPerBlock: (client.user + client.system) / stored, stored, bytesPerBlock };
}

async function lookup(impl: Impl, url: string, prefix: string, mode: 'typical' | 'shared', ms: number): Promise<{ p50: number; p99: number }> {
  const index = await impl.open(url, prefix);
  const { keys, ids } = await fillLookupScenario(index, MODEL, BS, ENDPOINTS, mode);
  const samples = await timeLookups(index, keys, ids, ms);
  await index.close();
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(samples.length * 0.5)], p99: samples[Math.min(samples.length - 1, Math.floor(samples.length * 0.99))] };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const rounds = Number(arg('--rounds', '3'));
  const profile = process.argv.includes('--profile');
  const ms = Number(arg('--ms', '1500'));
  const impls: Impl[] = [];
  const baseline = arg('--baseline', '');
  if (baseline !== '') impls.push(await loadImpl('baseline', baseline));
  impls.push(await loadImpl('this build', resolve(new URL('..', import.meta.url).pathname)));
  const single = await startRedisServer();
  const cluster = process.argv.includes('--no-cluster') ? undefined : await startRedisCluster();
  const singleCli = new RedisClient(single.url);
  const clusterCli = cluster !== undefined ? cluster.ports.map((port) => new RedisClient({ host: '127.0.0.1', port })) : [];
  const targets: { name: string; url: string; cpu: () => Promise<number>; mem: () => Promise<number>; impls: Impl[] }[] = [{ name: 'single node', url: single.url, cpu: () => redisCpu([singleCli]), mem: () => redisMemory([singleCli]), impls }];
  if (cluster !== undefined) targets.push({ name: '3-node cluster', url: cluster.url, cpu: () => redisCpu(clusterCli), mem: () => redisMemory(clusterCli), impls: process.argv.includes('--cluster-baseline') ? impls : impls.filter((i) => i.name !== 'baseline') });
  const results: Record<string, number> = {};
  const rows: string[] = [];
  console.log('| Redis | blocks/batch | in flight | build | blocks/s | Redis CPU µs/block | router CPU µs/block | Redis bytes/block held | rounds |\n|---|---:|---:|---|---:|---:|---:|---:|---|');
  let seq = 0;
  try {
    const shapesArg = arg('--shapes', '4x8,4x64,64x8,512x8');
    const shapes = shapesArg === 'none' ? [] : shapesArg.split(',').map((x) => x.split('x').map(Number));
    for (const [blocks, inflight, events = 1] of shapes) {
      if (!(blocks > 0 && inflight > 0 && events > 0 && blocks % events === 0)) throw new Error(`--shapes: ${blocks}x${inflight}x${events} is not blocks x in flight [x events dividing blocks]`);
      for (const t of targets) {
        const got = new Map<string, { b: number[]; c: number[]; k: number[]; m: number[] }>();
        for (let r = 0; r < rounds; r++) {
          for (const impl of t.impls) {
            const before = profile && t.name === 'single node' ? await commandStats(singleCli) : undefined;
            const x = await ingest(impl, t.url, `bench${++seq}:`, blocks, inflight, events, ms, t.cpu, t.mem);
            if (before !== undefined) {
              // Commands per 1,000 blocks and their Redis time per block (scripts' inner commands included).
              const stored = x.stored;
              const rowsP: string[] = [];
              for (const [cmd, [calls, usec]] of await commandStats(singleCli)) {
                const [c0, u0] = before.get(cmd) ?? [0, 0];
                if (calls > c0 && cmd !== 'info') rowsP.push(`${cmd} ${(((calls - c0) * 1000) / stored).toFixed(1)}/kblock ${((usec - u0) / stored).toFixed(2)} µs/block`);
              }
              console.log(`  profile ${blocks}x${inflight}x${events} ${impl.name}: ${rowsP.join(', ')}`);
            }
            const g = got.get(impl.name) ?? { b: [], c: [], k: [], m: [] };
            g.m.push(x.bytesPerBlock);
            g.b.push(x.blocksPerS);
            g.c.push(x.cpuUsPerBlock);
            g.k.push(x.clientUsPerBlock);
            got.set(impl.name, g);
          }
        }
        for (const [name, g] of got) {
          const key = `ingest ${t.name}, ${blocks} blocks/batch${events > 1 ? ` in ${events} events` : ''}, ${inflight} in flight, ${name}`;
          results[`${key} blocks/s`] = median(g.b);
          results[`${key} redis us/block`] = median(g.c);
          results[`${key} client us/block`] = median(g.k);
          results[`${key} redis bytes/block`] = median(g.m);
          rows.push(`| ${t.name} | ${events > 1 ? `${blocks} (${events} events)` : blocks} | ${inflight} | ${name} | ${Math.round(median(g.b)).toLocaleString('en-US')} | ${median(g.c).toFixed(2)} | ${median(g.k).toFixed(2)} | ${Math.round(median(g.m))} | ${g.b.map((v) => Math.round(v / 1000)).join(' / ')} k |`);
          console.log(rows[rows.length - 1]);
        }
      }
    }
    for (const mode of process.argv.includes('--no-lookup') ? [] : (['typical', 'shared'] as const)) {
      for (const t of targets) {
        for (const impl of t.impls) {
          const ps: number[] = [];
          const qs: number[] = [];
          for (let r = 0; r < rounds; r++) {
            const x = await lookup(impl, t.url, `lk${++seq}:`, mode, Math.min(ms, 800));
            ps.push(x.p50);
            qs.push(x.p99);
          }
          results[`lookup ${mode} ${t.name} ${impl.name} p50 us`] = median(ps);
          results[`lookup ${mode} ${t.name} ${impl.name} p99 us`] = median(qs);
          console.log(`| lookup ${mode} | ${t.name} | ${impl.name} | ${(median(ps) / 1000).toFixed(2)} ms | ${(median(qs) / 1000).toFixed(2)} ms |`);
        }
      }
    }
  } finally {
    singleCli.disconnect();
    for (const c of clusterCli) c.disconnect();
    await single.stop();
    await cluster?.stop();
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify(results));
}

await main();
