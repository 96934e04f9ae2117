/**
 * The Redis block index under large batches, outages and time, on a real redis-server (and a
 * real TCP proxy to cut the network). Each case failed before: 60k-block batches timed out while
 * Redis still applied them and 120k blocks overflowed the stack; a brief outage marked the batch
 * applied (missed removals became phantom hits); hot keys expired while read on every request.
 * (Keys by `endpointKeys`: since the Redis Cluster layout each endpoint's keys share a hash tag.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { KvIndexer } from '../../src/kv-index/kv-indexer.js';
import { RedisBlockIndex } from '../../src/kv-index/redis-index.js';
import { endpointKeys } from '../../src/kv-index/redis-keys.js';
import { BS, MODEL, batch, chain, removed, startRig, stored } from '../helpers/kv-rig.js';

let redis: RedisServer;
let raw: Redis;
let n = 0;
const opened: RedisBlockIndex[] = [];
before(async () => {
  redis = await startRedisServer();
  raw = new Redis(redis.url);
});
after(async () => {
  for (const i of opened) await i.close();
  raw.disconnect();
  await redis.stop();
});

async function index(o: ConstructorParameters<typeof RedisBlockIndex>[0] = {}): Promise<RedisBlockIndex> {
  const idx = new RedisBlockIndex({ url: redis.url, prefix: `f${++n}:`, ...o });
  opened.push(idx);
  await idx.connect();
  return idx;
}

for (const blocks of [60_000, 120_000]) {
  test(`a ${blocks / 1000}k-block batch applies fully and consistently (no timeout, no stack overflow)`, async () => {
    const idx = await index();
    const indexer = new KvIndexer({ index: idx });
    const c = chain(blocks, blocks);
    await indexer.applyBatch('pod', MODEL, 0n, batch([stored(c)]));
    const keys = indexer.requestKeys(MODEL, c.tokens, BS);
    assert.equal((await idx.lookup(keys, ['pod']))[0].blocks, blocks);
    const [h, e, m, , f] = endpointKeys(idx.prefix, 'pod');
    const live = async (): Promise<number> => Object.entries(await raw.hgetall(e)).reduce((s, [k, v]) => s + (k.startsWith('c') ? Number(v) : 0), 0);
    assert.equal(await live(), blocks, 'recency log: every block live in one generation');
    assert.equal(await raw.hlen(h), blocks, 'holdings');
    assert.equal(await raw.hlen(m), blocks, 'engine hash map');
    assert.equal(await raw.hget(f, 'p'), '0', 'the fence says the batch is complete');
    // Removing them all in one batch works the same way.
    await indexer.applyBatch('pod', MODEL, 1n, batch([removed(c, [...Array(blocks).keys()])]));
    assert.equal((await idx.lookup(keys, ['pod']))[0].blocks, 0);
    assert.equal(await raw.exists(e), 0, 'recency log emptied with the last block');
    assert.equal(await raw.hlen(h), 0);
  });
}

test('a batch cut into parts resumes after a failure: parts already applied are not applied twice', async () => {
  const idx = await index({ maxBlocksPerCall: 2 });
  const indexer = new KvIndexer({ index: idx });
  const c = chain(6, 77);
  await indexer.applyBatch('pod', MODEL, 0n, batch([stored(c, 0, 2)]));
  // Apply a duplicate store of block 1 (vLLM's recomputed block) and the rest, as 3 parts; retry it whole.
  const b1 = batch([stored(c, 1, 2), stored(c, 2, 6)]);
  await indexer.applyBatch('pod', MODEL, 1n, b1);
  await indexer.applyBatch('pod', MODEL, 1n, b1); // a retry of the same seq: stale, counts unchanged
  const copies = await raw.hgetall(endpointKeys(idx.prefix, 'pod')[3]);
  assert.deepEqual(Object.values(copies), ['1'], 'one extra copy of block 1, not two');
  await indexer.applyBatch('pod', MODEL, 2n, batch([removed(c, [1])]));
  assert.equal((await idx.lookup(indexer.requestKeys(MODEL, c.tokens, BS), ['pod']))[0].blocks, 6, 'the other copy keeps block 1');
});

test('a Redis outage during a batch: the batch is replayed, not marked applied (no phantom hits)', async () => {
  const proxy = await startTcpProxy('127.0.0.1', redis.port);
  const idx = new RedisBlockIndex({ url: `redis://127.0.0.1:${proxy.port}`, prefix: `f${++n}:`, commandTimeoutMs: 300, maxReconnectDelayMs: 100 });
  opened.push(idx);
  await idx.connect();
  const rig = await startRig({ index: idx, ingestor: { sinkRetryMs: 100 } });
  try {
    const c = chain(4, 5);
    rig.pub.publish(batch([stored(c)]));
    await rig.until(() => rig.ing.stats().endpoints.pod.batches === 1, 'the store');
    proxy.down();
    rig.pub.publish(batch([removed(c, [3])]));
    await rig.until(() => (rig.ing.stats().endpoints.pod.sinkFailures ?? 0) >= 1, 'the failed write');
    assert.equal(rig.ing.stats().endpoints.pod.batches, 1, 'not counted as applied');
    proxy.up();
    await rig.until(() => rig.ing.stats().endpoints.pod.batches === 2, 'the replayed removal', 15_000);
    assert.equal(await rig.held(c), 3, 'the removed block is gone from Redis');
  } finally {
    await rig.close();
    await proxy.close();
  }
});

test('hot keys do not expire while lookups read them; an endpoint nobody reads or writes does', async () => {
  // TTLs are per endpoint since the Redis Cluster layout: a lookup that hits refreshes the
  // holder's keys; an endpoint neither written nor read for a TTL disappears whole.
  const idx = await index({ ttlSeconds: 2, touchIntervalMs: 200 });
  const hot = [11, 12, 13];
  const cold = [21, 22, 23];
  await idx.add('pod', 'gpu', hot);
  await idx.add('pod-cold', 'gpu', cold);
  const end = Date.now() + 3_200;
  while (Date.now() < end) {
    assert.equal((await idx.lookup(hot, ['pod']))[0].blocks, 3);
    await new Promise((r) => setTimeout(r, 150));
  }
  assert.equal((await idx.lookup(hot, ['pod']))[0].blocks, 3, 'read all along: still there after 1.5 TTLs');
  assert.equal((await idx.lookup(cold, ['pod-cold']))[0].blocks, 0, 'never read: expired');
  assert.equal(await raw.exists(...endpointKeys(idx.prefix, 'pod-cold')), 0, 'all its keys');
  assert.ok(idx.touches > 0);
});
