/**
 * The Redis index's recency log (layout v2, redis-log-lua.ts) against a plain reference model, on
 * a real redis-server and a real 3-node Redis Cluster: random engine batches of 1-4 ops (stores,
 * removals, a clear between them; one script section and one generation per batch), plain adds,
 * GPU and CPU, repeated stores that make copies, plain removals, clears,
 * lookups (whose background touch moves the hits) and evictions past a small cap. After every
 * step the raw Redis content must equal the model's: holdings and tiers, engine-hash map, extra
 * copies, and the exact recency order (oldest first) that the log encodes, which is what the
 * per-block sorted set gave (an LRU where a store or a read moves a chain to the end, leaf first).
 * The log's own invariants are checked too: each generation's live count is the number of keys
 * naming it, no empty generation is left, and a list is never more than 4x its live keys.
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { RedisBlockIndex } from '../../src/kv-index/redis-index.js';
import { endpointKeys } from '../../src/kv-index/redis-keys.js';
import type { EngineOp } from '../../src/kv-index/kv-block-index.js';
import { ManualClock } from '../../src/core/clock.js';
import { seededRng, type Rng } from '../../src/core/rng.js';

let single: RedisServer;
let cluster: RedisCluster;
before(async () => {
  single = await startRedisServer();
  cluster = await startRedisCluster();
});
after(async () => {
  await single?.stop();
  await cluster?.stop();
});

const CAP = 20;
const EPS = ['a', 'b', 'c'];
/** 6 chains of 12 distinct keys each; a key's engine hash is derived from it. */
const CHAINS = Array.from({ length: 6 }, (_, c) => Array.from({ length: 12 }, (_, i) => 100_000 * (c + 1) + i * 17));
const hashOf = (k: number): bigint => BigInt(k) * 2n + 1n;
const W: Record<string, number> = { gpu: 1, cpu: 0.8 };

/** One endpoint of the reference: tiers with copies per key, recency (Map order, oldest first), engine-hash map. */
class Model {
  held = new Map<number, Map<string, number>>();
  map = new Map<bigint, number>();
  evicted = 0;
  #move(k: number): void {
    const t = this.held.get(k)!;
    this.held.delete(k);
    this.held.set(k, t);
  }
  store(tier: string, keys: number[], withHashes: boolean): void {
    for (let j = keys.length - 1; j >= 0; j--) {
      const k = keys[j];
      let t = this.held.get(k);
      if (t === undefined) this.held.set(k, (t = new Map()));
      if (!t.has(tier)) t.set(tier, 1);
      else if (withHashes) t.set(tier, t.get(tier)! + 1);
      this.#move(k);
      if (withHashes) this.map.set(hashOf(k), k);
    }
  }
  dropTier(k: number, tier: string): boolean {
    const t = this.held.get(k);
    if (t === undefined) return true;
    t.delete(tier);
    if (t.size === 0) this.held.delete(k);
    return t.size === 0;
  }
  removeHashes(tier: string, hashes: bigint[]): void {
    for (const h of hashes) {
      const k = this.map.get(h);
      if (k === undefined) continue;
      const c = this.held.get(k)?.get(tier) ?? 0;
      if (c > 1) this.held.get(k)!.set(tier, c - 1);
      else if (this.dropTier(k, tier)) this.map.delete(h);
    }
  }
  removeKeys(tier: string, keys: number[]): void {
    for (const k of keys) this.dropTier(k, tier);
  }
  clear(): void {
    this.held.clear();
    this.map.clear();
  }
  evict(): void {
    while (this.held.size > CAP) {
      this.held.delete(this.held.keys().next().value as number);
      this.evicted++;
    }
  }
  run(keys: number[]): number {
    let r = 0;
    while (r < keys.length && this.held.has(keys[r])) r++;
    return r;
  }
  weighted(keys: number[]): number {
    let s = 0;
    for (let i = 0; i < this.run(keys); i++) s += Math.max(...[...this.held.get(keys[i])!.keys()].map((t) => W[t] ?? 0.5));
    return s;
  }
  touch(keys: number[]): void {
    for (let j = keys.length - 1; j >= 0; j--) this.#move(keys[j]);
  }
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)];

/** The raw content of one endpoint, read from Redis, in the model's terms, plus the log's invariants. */
async function readBack(raw: Redis | Cluster, prefix: string, ep: string): Promise<{ held: [number, string[]][]; copies: Record<string, string>; map: Record<string, string>; order: number[] }> {
  const [hk, ek, mk, nk] = endpointKeys(prefix, ep);
  const [h, e, m, n] = await Promise.all([raw.hgetall(hk), raw.hgetall(ek), raw.hgetall(mk), raw.hgetall(nk)]);
  const gens = new Map<string, number[]>();
  for (const [k, v] of Object.entries(h)) {
    const at = /^([a-z0-9_.-]+(?:,[a-z0-9_.-]+)*)@(\d+)$/.exec(v);
    assert.ok(at, `holdings value ${v} names tiers and a generation`);
    const list = gens.get(at[2]) ?? [];
    list.push(Number(k));
    gens.set(at[2], list);
  }
  const order: number[] = [];
  const logGens = Object.keys(e).filter((f) => f.startsWith('k')).map((f) => Number(f.slice(1))).sort((x, y) => x - y);
  for (const g of logGens) {
    const list = e[`k${g}`].split(' ').map(Number);
    const live = list.filter((k) => h[k] !== undefined && h[k].endsWith(`@${g}`));
    assert.equal(Number(e[`c${g}`]), live.length, `${ep} generation ${g}: live count`);
    assert.equal(Number(e[`n${g}`]), list.length, `${ep} generation ${g}: length`);
    assert.ok(live.length > 0, `${ep} generation ${g} is empty but kept`);
    assert.ok(list.length <= 4 * live.length, `${ep} generation ${g}: ${list.length} entries for ${live.length} live keys`);
    assert.equal(new Set(live).size, live.length, `${ep} generation ${g}: a key listed twice`);
    order.push(...live);
  }
  for (const [g, keys] of gens) assert.ok(e[`k${g}`] !== undefined && keys.every((k) => e[`k${g}`].split(' ').includes(String(k))), `${ep}: keys naming generation ${g} are in its list`);
  assert.equal(order.length, Object.keys(h).length, `${ep}: every held key is in the recency order once`);
  const held: [number, string[]][] = Object.entries(h).map(([k, v]) => [Number(k), v.split('@')[0].split(',').sort()]);
  return { held: held.sort((x, y) => x[0] - y[0]), copies: n, map: m, order };
}

function expected(model: Model): { held: [number, string[]][]; copies: Record<string, string>; map: Record<string, string>; order: number[] } {
  const held: [number, string[]][] = [...model.held].map(([k, t]) => [k, [...t.keys()].sort()]);
  const copies: Record<string, string> = {};
  for (const [k, t] of model.held) for (const [tier, c] of t) if (c > 1) copies[`${k}|${tier}`] = String(c - 1);
  const map: Record<string, string> = {};
  for (const [h, k] of model.map) map[h.toString(16)] = String(k);
  return { held: held.sort((x, y) => x[0] - y[0]), copies, map, order: [...model.held.keys()] };
}

async function randomRun(url: string, raw: Redis | Cluster, seed: number, steps: number): Promise<{ evictions: number; touches: number }> {
  const rng = seededRng(seed);
  const clock = new ManualClock(1_000_000);
  const prefix = `rec${seed}:`;
  const idx = new RedisBlockIndex({ url, prefix, maxKeysPerEndpoint: CAP, touchIntervalMs: 5, clock });
  await idx.connect();
  const models = new Map(EPS.map((e) => [e, new Model()]));
  const seq = new Map(EPS.map((e) => [e, 0]));
  try {
    for (let step = 0; step < steps; step++) {
      clock.advance(10);
      const ep = pick(rng, EPS);
      const model = models.get(ep)!;
      const chain = pick(rng, CHAINS);
      const from = Math.floor(rng.next() * 6);
      const keys = chain.slice(from, from + 1 + Math.floor(rng.next() * (chain.length - from)));
      const tier = rng.next() < 0.7 ? 'gpu' : 'cpu';
      const x = rng.next();
      const s = seq.get(ep)!;
      if (x < 0.35) {
        // An engine batch of 1-4 ops (a vLLM step: several requests' stores and removals, rarely
        // a clear); the cap applies at the end of the batch.
        const ops: EngineOp[] = [];
        for (let o = 0, n = 1 + Math.floor(rng.next() * 4); o < n; o++) {
          const c = pick(rng, CHAINS);
          const f = Math.floor(rng.next() * 8);
          const ks = c.slice(f, f + 1 + Math.floor(rng.next() * (c.length - f)));
          const t = rng.next() < 0.7 ? 'gpu' : 'cpu';
          const y = rng.next();
          if (y < 0.65) {
            ops.push({ kind: 'store', tier: t, engineHashes: ks.map(hashOf), keys: ks });
            model.store(t, ks, true);
          } else if (y < 0.95) {
            const hashes = ks.filter(() => rng.next() < 0.6).map(hashOf);
            ops.push({ kind: 'remove', tier: t, engineHashes: hashes });
            model.removeHashes(t, hashes);
          } else {
            ops.push({ kind: 'clear' });
            model.clear();
          }
        }
        await idx.applyEngineBatch({ endpointId: ep, seq: s, ts: 1, mode: 'next', ops });
        seq.set(ep, s + 1);
        model.evict();
      } else if (x < 0.45) {
        await idx.add(ep, tier, keys);
        model.store(tier, keys, false);
        model.evict();
      } else if (x < 0.6) {
        const hashes = keys.filter(() => rng.next() < 0.6).map(hashOf);
        hashes.push(999n);
        await idx.applyEngineBatch({ endpointId: ep, seq: s, ts: 1, mode: 'next', ops: [{ kind: 'remove', tier, engineHashes: hashes }] });
        seq.set(ep, s + 1);
        model.removeHashes(tier, hashes);
      } else if (x < 0.68) {
        const some = keys.filter(() => rng.next() < 0.5);
        await idx.remove(ep, tier, some);
        model.removeKeys(tier, some);
      } else if (x < 0.7) {
        await idx.clearEndpoint(ep);
        model.clear();
      } else {
        const prompt = chain.slice(0, 1 + Math.floor(rng.next() * chain.length));
        const got = await idx.lookup(prompt, EPS);
        EPS.forEach((e, c) => {
          const m = models.get(e)!;
          assert.equal(got[c].blocks, m.run(prompt), `step ${step}: ${e}'s run`);
          assert.ok(Math.abs(got[c].weighted - m.weighted(prompt)) < 1e-9, `step ${step}: ${e}'s weight`);
        });
        // The background touch: every key of the longest run is sent (none touched within 5 ms);
        // each holder moves its own leading run, root last.
        await idx.refreshStats();
        for (const m of models.values()) m.touch(prompt.slice(0, m.run(prompt)));
      }
      for (const e of EPS) assert.deepEqual(await readBack(raw, idx.prefix, e), expected(models.get(e)!), `step ${step} (${x.toFixed(2)}): endpoint ${e}`);
    }
    return { evictions: [...models.values()].reduce((t, m) => t + m.evicted, 0), touches: idx.touches };
  } finally {
    await idx.close();
  }
}

test('recency log = a reference LRU, step by step, through stores, copies, removals, clears, reads and evictions (single node, 2 seeds)', async () => {
  const raw = new Redis(single.url);
  try {
    for (const seed of [1, 2]) {
      const { evictions, touches } = await randomRun(single.url, raw, seed, 400);
      assert.ok(evictions > 20, `the cap was reached often (${evictions} evictions)`);
      assert.ok(touches > 20, `lookups moved keys (${touches} touches)`);
    }
  } finally {
    raw.disconnect();
  }
});

test('recency log = a reference LRU on a 3-node Redis Cluster', async () => {
  const raw = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
  try {
    const { evictions } = await randomRun(cluster.url, raw, 3, 250);
    assert.ok(evictions > 10, `${evictions} evictions`);
  } finally {
    raw.disconnect();
  }
});

test('the log stays small under churn and empties with the last block; a sparse generation is compacted', async () => {
  const raw = new Redis(single.url);
  const idx = new RedisBlockIndex({ url: single.url, prefix: 'churn:' });
  await idx.connect();
  try {
    const [, ek] = endpointKeys(idx.prefix, 'pod');
    const keys = Array.from({ length: 64 }, (_, i) => 7_000 + i);
    await idx.applyEngineBatch({ endpointId: 'pod', seq: 0, ts: 1, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: keys.map(hashOf), keys }] });
    assert.deepEqual(await raw.hmget(ek, 'c1', 'n1'), ['64', '64']);
    // Remove the 60 tail blocks (vLLM frees chain tails first): the root's generation is rewritten.
    await idx.applyEngineBatch({ endpointId: 'pod', seq: 1, ts: 1, mode: 'next', ops: [{ kind: 'remove', tier: 'gpu', engineHashes: keys.slice(4).map(hashOf) }] });
    assert.deepEqual(await raw.hmget(ek, 'c1', 'n1'), ['4', '4'], 'compacted to its 4 live keys');
    assert.deepEqual((await raw.hget(ek, 'k1'))!.split(' ').map(Number), keys.slice(0, 4).reverse());
    // 200 more store/remove rounds: the log never holds more than 4x the live keys.
    for (let r = 0; r < 200; r++) {
      const ks = Array.from({ length: 8 }, (_, i) => 10_000 + r * 8 + i);
      await idx.applyEngineBatch({ endpointId: 'pod', seq: 2 + 2 * r, ts: 1, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: ks.map(hashOf), keys: ks }] });
      await idx.applyEngineBatch({ endpointId: 'pod', seq: 3 + 2 * r, ts: 1, mode: 'next', ops: [{ kind: 'remove', tier: 'gpu', engineHashes: ks.slice(r % 3 === 0 ? 1 : 0).map(hashOf) }] });
    }
    const log = await raw.hgetall(ek);
    const entries = Object.entries(log).filter(([f]) => f.startsWith('n')).reduce((t, [, v]) => t + Number(v), 0);
    const live = Number(await raw.hlen(endpointKeys(idx.prefix, 'pod')[0]));
    assert.equal(live, 4 + 67);
    assert.ok(entries <= 4 * live, `${entries} log entries for ${live} live keys`);
    assert.equal(Object.keys(log).filter((f) => f.startsWith('k')).length, 1 + 67, 'one generation per batch that kept a block');
    await idx.clearEndpoint('pod');
    assert.equal(await raw.exists(ek), 0);
  } finally {
    raw.disconnect();
    await idx.close();
  }
});

test('entries no generation names (written by hand, or a lost log): a lookup adopts them, and past the cap they go anyway', async () => {
  const raw = new Redis(single.url);
  const idx = new RedisBlockIndex({ url: single.url, prefix: 'stray:', maxKeysPerEndpoint: 6 });
  await idx.connect();
  try {
    const [hk, ek] = endpointKeys(idx.prefix, 'pod');
    await idx.add('pod', 'gpu', [1, 2, 3]);
    await raw.hset(hk, '4', 'gpu', '5', 'cpu', '6', 'gpu');
    await raw.del(ek);
    // Lookups weigh them like any entry; the touch after the lookup moves all six into one
    // generation (root last), so the next eviction takes the chain's tail, least recent first.
    assert.deepEqual((await idx.lookup([1, 2, 3, 4, 5, 6], ['pod'])).map((r) => [r.blocks, Math.round(r.weighted * 10) / 10]), [[6, 5.8]]);
    await idx.refreshStats();
    await idx.add('pod', 'gpu', [7, 8, 9]);
    assert.deepEqual((await raw.hkeys(hk)).map(Number).sort((x, y) => x - y), [1, 2, 3, 7, 8, 9]);
    // Five strays nobody reads and a cap of 4: the walk evicts the one logged key, then random strays.
    const small = new RedisBlockIndex({ url: single.url, prefix: 'stray2:', maxKeysPerEndpoint: 4 });
    await small.connect();
    try {
      const [h2] = endpointKeys(small.prefix, 'pod');
      await small.add('pod', 'gpu', [100]);
      await raw.hset(h2, '1', 'gpu', '2', 'gpu', '3', 'gpu', '4', 'gpu', '5', 'gpu');
      await small.add('pod', 'gpu', [200]);
      assert.equal(await raw.hlen(h2), 4, 'the cap holds');
      await small.refreshStats();
      assert.equal(small.stats().evicted, 3, '100, 200 (the whole log) and one stray');
    } finally {
      await small.close();
    }
  } finally {
    raw.disconnect();
    await idx.close();
  }
});
