/**
 * The Redis index and replica sync on a REAL 3-node Redis Cluster on loopback
 * (test/helpers/redis-cluster.ts): each endpoint's keys share one slot and the fleet's endpoints
 * spread over every node; TTLs are refreshed by lookups; routers applying the same streams in any
 * order agree; a flushed cluster is detected and rebuilt; `kvroute serve` routes precisely on the
 * cluster index (a second router with no events of its own routes like the first); two synced
 * routers share picks over the cluster; bad addresses are refused from the command line. (The
 * whole block index contract also runs on the cluster: kv-index-contract.test.ts.)
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis } from 'ioredis';
import { request } from 'undici';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { RedisBlockIndex, type RedisBlockIndexOptions } from '../../src/kv-index/redis-index.js';
import { MemoryBlockIndex } from '../../src/kv-index/memory-index.js';
import { endpointKeys } from '../../src/kv-index/redis-keys.js';
import type { EngineBatch, KvBlockIndex } from '../../src/kv-index/kv-block-index.js';
import { runServe } from '../../src/app/serve.js';
import { silentLogger } from '../../src/core/logger.js';
import type { RunningRouter } from '../../src/server/router.js';
import { fleetEndpointList, startFleet, type SimFleet } from '../../src/sim/fleet.js';
import { topicDocument } from '../../src/demo/demo-workload.js';
import { complete as completeSynced, startSyncFleet, startTestRouter, waitFor, remoteInflight, type TestRouter } from '../helpers/sync-fleet.js';

let cluster: RedisCluster;
let single: RedisServer;
let raw: Cluster;
let prefixSeq = 0;
const cleanups: (() => Promise<unknown>)[] = [];

before(async () => {
  cluster = await startRedisCluster();
  single = await startRedisServer();
  raw = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  raw?.disconnect();
  await single?.stop();
  await cluster?.stop();
});

async function open(url: string, o: RedisBlockIndexOptions = {}): Promise<RedisBlockIndex> {
  const idx = new RedisBlockIndex({ url, prefix: `c${++prefixSeq}:`, maxReconnectDelayMs: 100, ...o });
  await idx.connect();
  cleanups.push(() => idx.close());
  return idx;
}

const K = (n: number, from = 1000) => Array.from({ length: n }, (_, i) => from + i * 7919);

test('the cluster is up: 3 masters, all 16384 slots assigned', async () => {
  const info = await cluster.cli(cluster.ports[0], ['cluster', 'info']);
  assert.match(info, /cluster_state:ok/);
  assert.match(info, /cluster_slots_assigned:16384/);
  assert.match(info, /cluster_known_nodes:3/);
});

test('each endpoint\'s keys share one slot; 24 endpoints spread over all 3 nodes', async () => {
  const idx = await open(cluster.url);
  assert.equal(idx.cluster, true);
  for (let e = 0; e < 24; e++) {
    await idx.applyEngineBatch({ endpointId: `10.0.0.${e}:8000`, seq: 0, ts: 1, mode: 'fresh', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [1n, 2n], keys: K(2, e * 100) }, { kind: 'store', tier: 'gpu', engineHashes: [2n], keys: K(1, e * 100 + 7919) }] });
  }
  const p = idx.prefix;
  for (const ep of ['10.0.0.0:8000', '10.0.0.17:8000']) {
    const slots = new Set<number>();
    for (const name of endpointKeys(p, ep)) {
      assert.equal(await raw.exists(name), 1, `${name} exists`);
      slots.add(Number(await raw.cluster('KEYSLOT', name)));
    }
    assert.equal(slots.size, 1, `all keys of ${ep} in one slot`);
  }
  const perNode = await Promise.all(cluster.ports.map(async (port) => {
    const c = new Redis({ host: '127.0.0.1', port });
    try {
      return (await c.keys(`${p}*`)).length;
    } finally {
      c.disconnect();
    }
  }));
  assert.equal(perNode.reduce((a, b) => a + b, 0), 24 * 5 + 1, `keys per node ${perNode.join(', ')}`);
  assert.ok(perNode.every((n) => n >= 10), `every node holds endpoints: ${perNode.join(', ')}`);
});

for (const kind of ['single node', 'cluster'] as const) {
  test(`TTL: writes set it, a lookup that hits refreshes the holder's keys (${kind})`, async () => {
    const url = kind === 'cluster' ? cluster.url : single.url;
    const idx = await open(url, { ttlSeconds: 1000, touchIntervalMs: 1 });
    const r: Redis | Cluster = kind === 'cluster' ? raw : new Redis(single.url);
    try {
      await idx.add('pod-a', 'gpu', K(4));
      await idx.add('pod-b', 'gpu', K(4, 50));
      const [h, e, , , f] = endpointKeys(idx.prefix, 'pod-a');
      const names = [h, e, f];
      const hb = endpointKeys(idx.prefix, 'pod-b')[0];
      for (const n of names) assert.ok((await r.ttl(n)) > 990, `${n} has the TTL`);
      for (const n of [...names, hb]) await r.expire(n, 5);
      assert.deepEqual((await idx.lookup(K(4), ['pod-b', 'pod-a'])).map((x) => x.blocks), [0, 4]);
      await idx.refreshStats(); // waits for the background touch
      for (const n of names) assert.ok((await r.ttl(n)) > 990, `${n} refreshed by the lookup`);
      assert.ok((await r.ttl(hb)) <= 5, 'a candidate that held nothing is not refreshed');
    } finally {
      if (r !== raw) r.disconnect();
    }
  });
}

/** Two endpoints' engine batches; applied in any interleaving they give one end state. */
function batches(): EngineBatch[][] {
  const a: EngineBatch[] = [
    { endpointId: 'pod-a', seq: 0, ts: 10, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [1n, 2n, 3n, 4n, 5n], keys: K(5) }] },
    { endpointId: 'pod-a', seq: 1, ts: 10, mode: 'next', ops: [{ kind: 'remove', tier: 'gpu', engineHashes: [5n] }, { kind: 'store', tier: 'cpu', engineHashes: [1n, 2n], keys: K(2) }] },
    { endpointId: 'pod-a', seq: 2, ts: 10, mode: 'next', ops: [{ kind: 'remove', tier: 'gpu', engineHashes: [2n] }] },
  ];
  const b: EngineBatch[] = [
    { endpointId: 'pod-b', seq: 7, ts: 10, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [9n, 8n, 7n], keys: K(3) }] },
    { endpointId: 'pod-b', seq: 8, ts: 10, mode: 'next', ops: [{ kind: 'clear' }, { kind: 'store', tier: 'gpu', engineHashes: [9n], keys: K(1) }] },
  ];
  return [a, b];
}

async function view(idx: KvBlockIndex): Promise<number[][]> {
  return (await idx.lookup(K(5), ['pod-a', 'pod-b'])).map((r) => [r.blocks, Math.round(r.weighted * 100) / 100]);
}

test('routers sharing the cluster agree with one memory index whatever the interleaving; batches split in parts resume', async () => {
  const ref = new MemoryBlockIndex();
  for (const s of batches()) for (const bt of s) await ref.applyEngineBatch(bt);
  const want = await view(ref);
  assert.deepEqual(want, [[4, 3.8], [1, 1]]); // key 5 removed, key 2 left on CPU only
  const prefix = `agree${++prefixSeq}:`;
  // maxBlocksPerCall 2: the 5-block store goes in 3 calls; the second router finds them applied.
  const A = await open(cluster.url, { prefix, maxBlocksPerCall: 2 });
  const B = await open(cluster.url, { prefix });
  const [a, b] = batches();
  const outcomes: string[] = [];
  outcomes.push(await A.applyEngineBatch(a[0]), await B.applyEngineBatch(b[0]), await B.applyEngineBatch(a[0]), await B.applyEngineBatch(a[1]));
  outcomes.push(await A.applyEngineBatch(b[0]), await A.applyEngineBatch(a[1]), await A.applyEngineBatch(b[1]), await B.applyEngineBatch(b[1]));
  outcomes.push(await A.applyEngineBatch(a[2]), await B.applyEngineBatch(a[2]));
  assert.deepEqual(outcomes, ['applied', 'applied', 'stale', 'applied', 'stale', 'stale', 'applied', 'stale', 'applied', 'stale']);
  assert.deepEqual(await view(A), want);
  assert.deepEqual(await view(B), want);
  assert.deepEqual(await B.resolveEngineHashes('pod-a', [1n, 2n, 5n]), [K(1)[0], K(2)[1], undefined]);
});

test('a flushed cluster: the next write reports the index lost, listeners fire, a replay rebuilds it', async () => {
  let lost = 0;
  const idx = await open(cluster.url);
  idx.onIndexLost(() => lost++);
  const [a] = batches();
  assert.equal(await idx.applyEngineBatch(a[0]), 'applied');
  await Promise.all(cluster.ports.map((port) => cluster.cli(port, ['flushall'])));
  assert.equal(await idx.applyEngineBatch(a[1]), 'lost');
  assert.equal(lost, 1);
  assert.equal(await idx.applyEngineBatch({ ...a[0], mode: 'fresh' }), 'applied');
  assert.equal(await idx.applyEngineBatch(a[1]), 'applied');
  assert.deepEqual((await view(idx))[0], [4, 4]);
  assert.equal(lost, 1);
});

/** Deterministic text of about `words` words, distinct per seed. */
function text(words: number, seed: number): string {
  let x = seed * 2654435761 + 1;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(`w${(x % 50000).toString(36)}`);
  }
  return out.join(' ');
}

async function serveOn(f: SimFleet, redis: string, kvEvents?: 'off'): Promise<RunningRouter> {
  const r = await runServe({
    endpoints: fleetEndpointList(f), preset: 'llm-d-precise', host: '127.0.0.1', port: 0, adminPort: 0, engine: 'vllm', maxBodyBytes: 1 << 20,
    trustForwardedFor: false, scrapeIntervalMs: 20, tokenizer: 'builtin', env: {}, logger: silentLogger, redis, ...(kvEvents !== undefined ? { kvEvents } : {}),
  });
  cleanups.push(() => r.close());
  return r;
}

async function completion(r: RunningRouter, prompt: string): Promise<{ endpoint: string; cached: number; predicted: number | undefined }> {
  const res = await request(`${r.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'sim-model', prompt, max_tokens: 4, temperature: 0 }) });
  const body = (await res.body.json()) as { usage?: { prompt_tokens_details?: { cached_tokens?: number } } };
  assert.equal(res.statusCode, 200, JSON.stringify(body));
  const endpoint = String(res.headers['x-kvroute-endpoint']);
  const rec = r.decisions.toArray().at(-1)!;
  return { endpoint, cached: body.usage?.prompt_tokens_details?.cached_tokens ?? 0, predicted: rec.servedBy === endpoint ? rec.predictedCachedTokens : undefined };
}

test('kvroute serve on the cluster index: the second router, with no events of its own, routes like the first and predicts the engine\'s cached tokens', async () => {
  const f = await startFleet({ replicas: 3, basePort: 0, model: 'sim-model', profile: 'llama-3.2-1b', timeScale: 0.02, seed: 5, maxModelLen: 8192, kvEvents: {}, enablePromptTokensDetails: true });
  cleanups.push(() => f.close());
  const a = await serveOn(f, cluster.url);
  const b = await serveOn(f, cluster.url, 'off');
  const prefixes = [text(700, 11), text(700, 12), text(700, 13)];
  const viaA: { endpoint: string; cached: number; predicted: number | undefined }[] = [];
  for (const p of prefixes) viaA.push(await completion(a, `${p} from a`));
  // Wait until every endpoint's events reached the cluster index.
  await waitFor('the KV events of A\'s requests to reach the cluster index', () => {
    const st = a.metrics.indexStats();
    return st !== undefined && new Set(viaA.map((s) => s.endpoint)).size > 0 && viaA.every((s) => (st.endpoints[s.endpoint] ?? 0) > 0);
  }, 10_000);
  for (let g = 0; g < prefixes.length; g++) {
    const s = await completion(b, `${prefixes[g]} from b`);
    assert.equal(s.endpoint, viaA[g].endpoint, `group ${g} goes where A sent it`);
    assert.ok(s.cached > 0, 'the engine had it cached');
    assert.equal(s.predicted, s.cached, 'B predicted exactly what the engine had cached');
  }
});

test('two routers synced over the cluster: a prefix picked by A is routed by B to the same replica; a late third router replays the stream', async () => {
  const fleet = await startSyncFleet(3, 1, 7);
  cleanups.push(() => fleet.close());
  const stream = `cluster:sync:${++prefixSeq}`;
  const flags = (routerId: string) => ({ url: cluster.url, routerId, stream, heartbeatMs: 200, flushMs: 1, retryMs: 100 });
  const routers: TestRouter[] = [];
  for (const id of ['A', 'B']) {
    const r = await startTestRouter(fleet, flags(id));
    cleanups.push(() => r.router.close());
    routers.push(r);
  }
  const [a, b] = routers;
  const picked = (r: TestRouter) => r.router.sync!.stats().picksApplied;
  for (let i = 0; i < 4; i++) {
    const before = picked(b);
    assert.equal((await completeSynced(a.router, topicDocument(`cluster other ${i}`, 120))).status, 200);
    await waitFor('A\'s pick to reach B', () => picked(b) > before);
  }
  const doc = topicDocument('Cluster synced conversation', 300);
  const before = picked(b);
  const first = await completeSynced(a.router, `${doc}\nUser: one?`);
  await waitFor('A\'s pick to reach B', () => picked(b) > before);
  const second = await completeSynced(b.router, `${doc}\nUser: two?`);
  assert.equal(second.cache, 'hit', 'B predicts the prefix hit from A\'s pick');
  assert.equal(second.endpoint, first.endpoint);
  // A long request in flight on A while C starts: C replays the stream from the cluster.
  const long = completeSynced(a.router, topicDocument('Cluster late starter, long one', 200), 800);
  await waitFor('A\'s long pick to reach B', () => remoteInflight(b) === 1);
  const c = await startTestRouter(fleet, flags('C'));
  cleanups.push(() => c.router.close());
  assert.equal(c.router.sync!.stats().replayed, true);
  assert.equal(remoteInflight(c), 1, 'C replayed A\'s in-flight request');
  const late = await completeSynced(c.router, `${doc}\nUser: three?`);
  assert.equal(late.cache, 'hit', 'C predicts the hit on its first request');
  assert.equal(late.endpoint, first.endpoint);
  assert.equal((await long).status, 200);
});

test('kvroute serve refuses an unknown Redis address form with the forms it accepts', () => {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const cli = join(root, 'dist', 'src', 'cli', 'main.js');
  for (const [flag, addr] of [['--redis', 'memcached://127.0.0.1:11211'], ['--redis', 'redis-cluster://127.0.0.1'], ['--sync-redis', 'valkey:/x']]) {
    const r = spawnSync(process.execPath, [cli, 'serve', '--endpoints', 'http://127.0.0.1:9', '--port', '0', '--admin-port', '0', flag, addr], { encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(r.status, 0, `${flag} ${addr} is refused`);
    assert.match(r.stderr, /is not valid .*redis-cluster:\/\/host1:port1,host2:port2/, r.stderr);
  }
});
