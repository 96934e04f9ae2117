/**
 * The block index contract: every backend (memory, Redis on a real redis-server) runs the same
 * cases and must give the same answers: runs and tier weights, removals, clears, several
 * endpoints, the early exit, the bounds, engine batches and their fence.
 */
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { MemoryBlockIndex } from '../../src/kv-index/memory-index.js';
import { RedisBlockIndex } from '../../src/kv-index/redis-index.js';
import type { KvBlockIndex } from '../../src/kv-index/kv-block-index.js';
import { KvrError } from '../../src/core/errors.js';

interface Backend {
  name: string;
  /** A fresh, empty index; `bound` = the most entries (memory) / keys per endpoint (Redis). */
  make(opts?: { bound?: number }): Promise<KvBlockIndex>;
  /** Makes stats() current (Redis reads counts asynchronously). */
  settle(index: KvBlockIndex): Promise<void>;
}

let redis: RedisServer;
let cluster: RedisCluster;
let prefixSeq = 0;
const opened: KvBlockIndex[] = [];

before(async () => {
  redis = await startRedisServer();
  cluster = await startRedisCluster();
});
after(async () => {
  for (const i of opened) await i.close();
  await redis.stop();
  await cluster?.stop();
});

const backends: Backend[] = [
  {
    name: 'memory',
    make: async (o = {}) => new MemoryBlockIndex(o.bound !== undefined ? { maxEntries: o.bound } : {}),
    settle: async () => undefined,
  },
  {
    name: 'redis',
    make: async (o = {}) => {
      const idx = new RedisBlockIndex({ url: redis.url, prefix: `t${++prefixSeq}:`, ...(o.bound !== undefined ? { maxKeysPerEndpoint: o.bound } : {}) });
      await idx.connect();
      opened.push(idx);
      return idx;
    },
    settle: (i) => (i as RedisBlockIndex).refreshStats(),
  },
  {
    // A real 3-node Redis Cluster (test/helpers/redis-cluster.ts): same cases, same answers.
    name: 'redis-cluster',
    make: async (o = {}) => {
      const idx = new RedisBlockIndex({ url: cluster.url, prefix: `t${++prefixSeq}:`, ...(o.bound !== undefined ? { maxKeysPerEndpoint: o.bound } : {}) });
      await idx.connect();
      opened.push(idx);
      return idx;
    },
    settle: (i) => (i as RedisBlockIndex).refreshStats(),
  },
];

const K = (n: number, from = 1000) => Array.from({ length: n }, (_, i) => from + i * 7919);
const runs = (r: { blocks: number; weighted: number }[]) => r.map((x) => [x.blocks, Math.round(x.weighted * 100) / 100]);

for (const b of backends) {
  describe(`block index contract: ${b.name}`, () => {
    test('an empty index holds nothing; no keys or no candidates give zero runs', async () => {
      const idx = await b.make();
      assert.deepEqual(runs(await idx.lookup(K(3), ['a', 'b'])), [[0, 0], [0, 0]]);
      await idx.add('a', 'gpu', K(3));
      assert.deepEqual(runs(await idx.lookup([], ['a'])), [[0, 0]]);
      assert.deepEqual(await idx.lookup(K(3), []), []);
    });

    test('runs are the longest consecutive run of leading keys, per candidate, in candidate order', async () => {
      const idx = await b.make();
      const keys = K(10);
      await idx.add('a', 'gpu', keys);
      await idx.add('b', 'gpu', keys.slice(0, 5));
      await idx.add('c', 'gpu', [...keys.slice(0, 3), ...keys.slice(4)]); // gap at key 3
      await idx.add('d', 'gpu', keys.slice(1)); // lacks the first key
      assert.deepEqual(runs(await idx.lookup(keys, ['d', 'c', 'unknown', 'b', 'a'])), [[0, 0], [3, 3], [0, 0], [5, 5], [10, 10]]);
    });

    test('tiers: GPU 1.0, CPU 0.8, the best tier when held in both; tiers are removed one by one', async () => {
      const idx = await b.make();
      const keys = K(4);
      await idx.add('a', 'gpu', keys.slice(0, 2));
      await idx.add('a', 'cpu', keys.slice(1, 4));
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[4, 3.6]]); // 1 + 1 + 0.8 + 0.8
      await idx.remove('a', 'gpu', keys.slice(1, 2));
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[4, 3.4]]); // key 1 now only on CPU
      await idx.remove('a', 'cpu', keys.slice(1, 2));
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[1, 1]]);
      await idx.add('a', 'disk', keys.slice(1, 2));
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[4, 3.1]]); // other tiers weigh 0.5
    });

    test('a tier that is not a normalized name is refused and changes nothing', async () => {
      const idx = await b.make();
      for (const bad of ['GPU', 'g,pu', '']) await assert.rejects(idx.add('a', bad, K(2)), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_BAD_REQUEST');
      await assert.rejects(idx.applyEngineBatch({ endpointId: 'a', seq: 0, ts: 1, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [1n], keys: K(1) }, { kind: 'store', tier: 'a b', engineHashes: [2n], keys: K(1, 9) }] }), KvrError);
      assert.deepEqual(runs(await idx.lookup(K(2), ['a'])), [[0, 0]]);
      assert.deepEqual(await idx.resolveEngineHashes('a', [1n]), [undefined]);
    });

    test('removing keys or tiers an endpoint does not hold changes nothing', async () => {
      const idx = await b.make();
      const keys = K(3);
      await idx.add('a', 'gpu', keys);
      await idx.remove('a', 'cpu', keys);
      await idx.remove('b', 'gpu', keys);
      await idx.remove('a', 'gpu', K(3, 5));
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[3, 3]]);
    });

    test('clearing an endpoint drops all its entries and no other endpoint\'s', async () => {
      const idx = await b.make();
      const keys = K(5);
      await idx.add('a', 'gpu', keys);
      await idx.add('a', 'cpu', keys);
      await idx.add('b', 'gpu', keys);
      await idx.clearEndpoint('a');
      await idx.clearEndpoint('never-seen');
      assert.deepEqual(runs(await idx.lookup(keys, ['a', 'b'])), [[0, 0], [5, 5]]);
      await b.settle(idx);
      const s = idx.stats();
      assert.equal(s.endpoints.a, undefined);
      assert.equal(s.endpoints.b, 5);
      assert.equal(s.available, true);
      assert.equal(s.backend, b.name === 'redis-cluster' ? 'redis' : b.name);
    });

    test('the run stops at the first key no candidate holds, even over long requests (early exit)', async () => {
      const idx = await b.make();
      const keys = K(600);
      await idx.add('a', 'gpu', keys.slice(0, 40));
      await idx.add('a', 'gpu', keys.slice(41));
      await idx.add('b', 'gpu', keys.slice(0, 300));
      assert.deepEqual(runs(await idx.lookup(keys, ['a', 'b'])), [[40, 40], [300, 300]]);
      // A key that is not a kvroute key (not a number) ends every run.
      const mixed: (number | string)[] = [...keys.slice(0, 3), 'x', ...keys.slice(4)];
      assert.deepEqual(runs(await idx.lookup(mixed, ['b'])), [[3, 3]]);
    });

    test('bounds: past the bound entries are evicted and counted', async () => {
      const idx = await b.make({ bound: 4 });
      await idx.add('a', 'gpu', K(10));
      await b.settle(idx);
      const s = idx.stats();
      assert.equal(s.evicted, 6);
      assert.equal(s.entries, 4);
      assert.equal(s.endpoints.a, 4);
    });

    test('engine batches: stores record engine hash -> key; removes resolve through it, per tier', async () => {
      const idx = await b.make();
      const keys = K(3);
      const hashes = [11n, 12n, 2n ** 64n - 1n];
      const ok = await idx.applyEngineBatch({ endpointId: 'a', seq: 0, ts: 100, mode: 'fresh', ops: [{ kind: 'store', tier: 'gpu', engineHashes: hashes, keys }, { kind: 'store', tier: 'cpu', engineHashes: hashes.slice(2), keys: keys.slice(2) }] });
      assert.equal(ok, 'applied');
      assert.deepEqual(await idx.resolveEngineHashes('a', [...hashes, 99n]), [...keys, undefined]);
      assert.deepEqual(await idx.resolveEngineHashes('b', hashes), [undefined, undefined, undefined]);
      // Remove key 1 (gpu) and key 2 from gpu only: it stays on cpu, so its mapping stays.
      await idx.applyEngineBatch({ endpointId: 'a', seq: 1, ts: 100, mode: 'next', ops: [{ kind: 'remove', tier: 'gpu', engineHashes: hashes.slice(1) }, { kind: 'remove', tier: 'gpu', engineHashes: [777n] }] });
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[1, 1]]);
      assert.deepEqual(runs(await idx.lookup(keys.slice(2), ['a'])), [[1, 0.8]]);
      assert.deepEqual(await idx.resolveEngineHashes('a', hashes), [keys[0], undefined, keys[2]]);
      // A clear op drops everything of the endpoint, mapping included.
      assert.equal(await idx.applyEngineBatch({ endpointId: 'a', seq: 2, ts: 100, mode: 'next', ops: [{ kind: 'clear' }] }), 'applied');
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[0, 0]]);
      assert.deepEqual(await idx.resolveEngineHashes('a', hashes), [undefined, undefined, undefined]);
    });

    test('fence: a late duplicate of an applied store does not bring back a removed block', async () => {
      const idx = await b.make();
      const keys = K(2);
      const store = { endpointId: 'a', seq: 5, ts: 100, mode: 'next' as const, ops: [{ kind: 'store' as const, tier: 'gpu', engineHashes: [1n, 2n], keys }] };
      assert.equal(await idx.applyEngineBatch(store), 'applied');
      assert.equal(await idx.applyEngineBatch({ endpointId: 'a', seq: 6, ts: 101, mode: 'next', ops: [{ kind: 'remove', tier: 'gpu', engineHashes: [2n] }] }), 'applied');
      assert.equal(await idx.applyEngineBatch(store), 'stale');
      assert.equal(await idx.applyEngineBatch({ ...store, mode: 'fresh' }), 'stale');
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[1, 1]]);
    });

    test('fence: a publisher restart (seq back, time on) drops the old stream; its late batches are stale', async () => {
      const idx = await b.make();
      const old = K(2);
      const fresh = K(2, 5);
      await idx.applyEngineBatch({ endpointId: 'a', seq: 40, ts: 1000, mode: 'fresh', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [1n, 2n], keys: old }] });
      await idx.add('b', 'gpu', old);
      assert.equal(await idx.applyEngineBatch({ endpointId: 'a', seq: 0, ts: 2000, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [3n, 4n], keys: fresh }] }), 'restarted');
      assert.deepEqual(runs(await idx.lookup(old, ['a', 'b'])), [[0, 0], [2, 2]]);
      assert.deepEqual(runs(await idx.lookup(fresh, ['a'])), [[2, 2]]);
      // A late batch of the old stream (seq above the new one, time well before it) is ignored.
      assert.equal(await idx.applyEngineBatch({ endpointId: 'a', seq: 41, ts: 1001, mode: 'next', ops: [{ kind: 'clear' }] }), 'stale');
      assert.deepEqual(runs(await idx.lookup(fresh, ['a'])), [[2, 2]]);
    });

    test('fence: a fresh stream that finds batches missing drops the endpoint first; force applies regardless', async () => {
      const idx = await b.make();
      const keys = K(2);
      await idx.applyEngineBatch({ endpointId: 'a', seq: 3, ts: 10, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [1n], keys: keys.slice(0, 1) }] });
      assert.equal(await idx.applyEngineBatch({ endpointId: 'a', seq: 4, ts: 10, mode: 'fresh', ops: [] }), 'applied');
      assert.equal(await idx.applyEngineBatch({ endpointId: 'a', seq: 9, ts: 11, mode: 'fresh', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [2n], keys: keys.slice(1) }] }), 'rebased');
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[0, 0]]);
      assert.deepEqual(runs(await idx.lookup(keys.slice(1), ['a'])), [[1, 1]]);
      assert.equal(await idx.applyEngineBatch({ endpointId: 'a', seq: 2, ts: 5, mode: 'force', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [1n], keys: keys.slice(0, 1) }] }), 'applied');
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[2, 2]]);
    });

    test('stats count entries per (key, endpoint, tier), additions and removals', async () => {
      const idx = await b.make();
      await idx.add('a', 'gpu', K(3));
      await idx.add('a', 'gpu', K(3)); // already held: not counted again
      await idx.add('b', 'gpu', K(2));
      await idx.remove('b', 'gpu', K(1));
      await b.settle(idx);
      const s = idx.stats();
      assert.equal(s.added, 5);
      assert.equal(s.removed, 1);
      assert.equal(s.entries, 4);
      assert.deepEqual(s.endpoints, { a: 3, b: 1 });
      assert.ok(s.bytes > 0);
      assert.ok(s.lookups >= 0 && s.errors === 0);
    });

    test('copies: vLLM stores a recomputed block twice; one BlockRemoved drops one copy, the next child still chains', async () => {
      const idx = await b.make();
      const keys = K(3);
      await idx.applyEngineBatch({ endpointId: 'a', seq: 0, ts: 1, mode: 'fresh', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [1n, 2n], keys: keys.slice(0, 2) }] });
      await idx.applyEngineBatch({ endpointId: 'a', seq: 1, ts: 1, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [2n], keys: keys.slice(1, 2) }] });
      await idx.applyEngineBatch({ endpointId: 'a', seq: 2, ts: 1, mode: 'next', ops: [{ kind: 'remove', tier: 'gpu', engineHashes: [2n] }] });
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[2, 2]], 'the other copy is still cached');
      assert.deepEqual(await idx.resolveEngineHashes('a', [2n]), [keys[1]], 'its parent mapping too');
      await idx.applyEngineBatch({ endpointId: 'a', seq: 3, ts: 1, mode: 'next', ops: [{ kind: 'remove', tier: 'gpu', engineHashes: [2n] }] });
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[1, 1]], 'gone with the last copy');
      assert.deepEqual(await idx.resolveEngineHashes('a', [2n]), [undefined]);
      // A plain remove (by key) drops every copy.
      await idx.applyEngineBatch({ endpointId: 'a', seq: 4, ts: 1, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [1n], keys: keys.slice(0, 1) }] });
      await idx.remove('a', 'gpu', keys.slice(0, 1));
      assert.deepEqual(runs(await idx.lookup(keys, ['a'])), [[0, 0]]);
    });

    test('eviction takes chain tails first, never the roots of a chain still held', async () => {
      const idx = await b.make({ bound: 6 });
      const A = K(4, 1000);
      const B = K(4, 5000);
      await idx.add('a', 'gpu', A);
      await idx.add('a', 'gpu', B);
      await b.settle(idx);
      assert.equal(idx.stats().evicted, 2);
      assert.deepEqual(runs(await idx.lookup(A, ['a'])), [[2, 2]], "A lost its tail, not its root");
      assert.deepEqual(runs(await idx.lookup(B, ['a'])), [[4, 4]]);
    });

    test('eviction spares what lookups read: a chain read since it was stored outlives an unread one stored after it', async () => {
      const idx = await b.make({ bound: 10 });
      const A = K(4, 1000);
      const B = K(4, 5000);
      await idx.add('a', 'gpu', A);
      await idx.add('a', 'gpu', B);
      assert.deepEqual(runs(await idx.lookup(A, ['a'])), [[4, 4]]);
      await b.settle(idx); // the Redis touch runs after the lookup
      await idx.add('a', 'gpu', K(4, 9000));
      assert.deepEqual(runs(await idx.lookup(A, ['a'])), [[4, 4]], 'the read chain stays whole');
      assert.deepEqual(runs(await idx.lookup(B, ['a'])), [[2, 2]], 'the unread chain lost its tail');
    });
  });
}
