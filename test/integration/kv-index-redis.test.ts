/**
 * The indexer on a shared Redis index (a real redis-server): several routers applying the same
 * event streams in any interleaving end in the state of one router applying them once; a router
 * that starts late resolves parents stored by another; a dead Redis makes calls fail fast; a
 * restarted or flushed Redis fires onIndexLost and works again after a replay.
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import type { BlockStoredEvent, KvEvent, KvEventBatch } from '../../src/events/types.js';
import { KvIndexer } from '../../src/kv-index/kv-indexer.js';
import { MemoryBlockIndex } from '../../src/kv-index/memory-index.js';
import { RedisBlockIndex } from '../../src/kv-index/redis-index.js';
import { InstrumentedBlockIndex } from '../../src/kv-index/instrumented-index.js';
import { KvrError } from '../../src/core/errors.js';
import { seededRng } from '../../src/core/rng.js';
import { createBlockIndex } from '../../src/kv-index/create-block-index.js';
import { createServer, type AddressInfo } from 'node:net';

const MODEL = 'm';
const BS = 16;
const prompt = Array.from({ length: 8 * BS }, (_, i) => (i * 31 + 5) % 50_000);
const H = (pod: string, i: number) => BigInt(pod.length * 1000 + i);

function stored(pod: string, from: number, to: number, parent: number | null, medium: string | null = null): BlockStoredEvent {
  const hashes: bigint[] = [];
  for (let i = from; i < to; i++) hashes.push(H(pod, i));
  return { type: 'BlockStored', blockHashes: hashes, parentBlockHash: parent === null ? null : H(pod, parent), tokenIds: prompt.slice(from * BS, to * BS), blockSize: BS, loraId: null, medium, loraName: null };
}
const removed = (pod: string, idx: number[], medium: string | null = null): KvEvent => ({ type: 'BlockRemoved', blockHashes: idx.map((i) => H(pod, i)), medium });
const b = (events: KvEvent[]): KvEventBatch => ({ ts: 1_700_000_000, events, dataParallelRank: null });

/** Two endpoints' event streams (index = seq). */
function streams(): Record<string, KvEventBatch[]> {
  const a = 'pod-a';
  const c = 'pod-bb';
  return {
    [a]: [
      b([stored(a, 0, 4, null)]),
      b([stored(a, 4, 6, 3), removed(a, [5])]),
      b([stored(a, 0, 8, null, 'CPU')]),
      b([removed(a, [1], 'GPU'), removed(a, [6], 'cpu')]),
      b([stored(a, 5, 6, 4)]),
      b([{ type: 'AllBlocksCleared' }, stored(a, 0, 3, null)]),
      b([stored(a, 3, 7, 2)]),
      b([removed(a, [4])]),
    ],
    [c]: [b([stored(c, 0, 8, null)]), b([removed(c, [6])]), b([stored(c, 0, 2, null, 'cpu'), removed(c, [2])])],
  };
}

let redis: RedisServer;
let prefixSeq = 0;
before(async () => {
  redis = await startRedisServer();
});
after(async () => {
  await redis.stop();
});

async function openRedisIndexer(prefix: string, onIndexLost?: () => void) {
  const idx = new RedisBlockIndex({ url: redis.url, prefix, maxReconnectDelayMs: 100 });
  await idx.connect();
  const inst = new InstrumentedBlockIndex(idx);
  return { idx, inst, indexer: new KvIndexer({ index: inst, ...(onIndexLost ? { onIndexLost } : {}) }) };
}

/** What a request sees of the index: runs of prefixes of the prompt on both endpoints. */
async function view(indexer: KvIndexer): Promise<number[][]> {
  const keys = indexer.requestKeys(MODEL, prompt, BS);
  const out: number[][] = [];
  for (const n of [8, 3]) {
    for (const r of await indexer.index.lookup(keys.slice(0, n), ['pod-a', 'pod-bb'])) out.push([r.blocks, Math.round(r.weighted * 100) / 100]);
  }
  return out;
}

async function reference(): Promise<number[][]> {
  const indexer = new KvIndexer({ index: new MemoryBlockIndex() });
  for (const [pod, list] of Object.entries(streams())) for (const [seq, batch] of list.entries()) await indexer.applyBatch(pod, MODEL, BigInt(seq), batch);
  return view(indexer);
}

test('routers sharing one Redis agree with a single router whatever the interleaving', async () => {
  const want = await reference();
  assert.notDeepEqual(want, [[0, 0], [0, 0], [0, 0], [0, 0]]);
  const rng = seededRng(7);
  const schedules: string[] = ['first-then-second', 'second-then-first', 'alternate', 'random', 'random', 'random'];
  for (const kind of schedules) {
    const routers = [await openRedisIndexer(`mr${++prefixSeq}:`), await openRedisIndexer(`mr${prefixSeq}:`)];
    // Each router delivers each endpoint's batches in order; across routers anything goes.
    const cursors = routers.map(() => ({ 'pod-a': 0, 'pod-bb': 0 }) as Record<string, number>);
    const all = streams();
    const total = Object.values(all).reduce((s, l) => s + l.length, 0);
    const steps: number[] = [];
    for (let i = 0; i < 2 * total; i++) {
      if (kind === 'first-then-second') steps.push(i < total ? 0 : 1);
      else if (kind === 'second-then-first') steps.push(i < total ? 1 : 0);
      else if (kind === 'alternate') steps.push(i % 2);
      else steps.push(rng.next() < 0.5 ? 0 : 1);
    }
    const pending = [total, total];
    for (let r of steps) {
      if (pending[r] === 0) r = 1 - r;
      const pods = Object.keys(all).filter((p) => cursors[r][p] < all[p].length);
      const pod = pods[Math.floor(rng.next() * pods.length)];
      const seq = cursors[r][pod]++;
      pending[r]--;
      await routers[r].indexer.applyBatch(pod, MODEL, BigInt(seq), all[pod][seq]);
    }
    assert.deepEqual(await view(routers[0].indexer), want, `schedule ${kind}`);
    assert.deepEqual(await view(routers[1].indexer), want, `schedule ${kind}`);
    const outcomes = routers.map((x) => x.indexer.indexerStats().batches);
    assert.equal(outcomes[0].applied + outcomes[1].applied, total, `each batch applied exactly once (${kind})`);
    for (const x of routers) await x.idx.close();
  }
});

test('router B re-delivering seq 5 after router A applied 5 (store) and 6 (remove) does not bring the block back', async () => {
  const prefix = `dup${++prefixSeq}:`;
  const A = await openRedisIndexer(prefix);
  const B = await openRedisIndexer(prefix);
  const s5 = b([stored('pod-a', 0, 4, null)]);
  const s6 = b([removed('pod-a', [2])]);
  await A.indexer.applyBatch('pod-a', MODEL, 5n, s5);
  await A.indexer.applyBatch('pod-a', MODEL, 6n, s6);
  await B.indexer.applyBatch('pod-a', MODEL, 5n, s5);
  await B.indexer.applyBatch('pod-a', MODEL, 6n, s6);
  const keys = A.indexer.requestKeys(MODEL, prompt, BS);
  assert.equal((await B.indexer.index.lookup(keys, ['pod-a']))[0].blocks, 2);
  assert.deepEqual(B.indexer.indexerStats().batches.stale, 2);
  // A router that starts late resolves parents that another router stored.
  const C = await openRedisIndexer(prefix);
  await C.indexer.applyBatch('pod-a', MODEL, 7n, b([stored('pod-a', 4, 6, 3)]));
  assert.equal(C.indexer.indexerStats().unknownParents, 0);
  await A.indexer.applyBatch('pod-a', MODEL, 8n, b([stored('pod-a', 2, 3, 1)]));
  assert.equal((await C.indexer.index.lookup(keys, ['pod-a']))[0].blocks, 6);
  for (const x of [A, B, C]) await x.idx.close();
});

test('key layout (golden): keys live under the prefix and layout version, each endpoint\'s under its hash tag, with a TTL; clearing an endpoint deletes its keys', async () => {
  // Pinned deliberately: since the Redis Cluster layout every key of an endpoint carries one hash
  // tag derived from its id ({61bc} for pod-a: one slot), followed by the id itself, and block
  // holdings live in one hash per endpoint (h:) instead of one key per block (b:<key>). Since
  // layout version 2 (`v2:` after the prefix) a holdings value names the recency generation that
  // last stored or read the key (`gpu@1`), and recency is a log of generations (e:, a hash)
  // instead of one sorted-set member per block. docs/kv-index.md has the migration notes.
  const prefix = `layout${++prefixSeq}:`;
  const p = `${prefix}v2:`;
  const { idx, indexer } = await openRedisIndexer(prefix);
  const raw = new Redis(redis.url);
  try {
    await indexer.applyBatch('pod-a', MODEL, 0n, b([stored('pod-a', 0, 3, null)]));
    const keys = (await raw.keys(`${prefix}*`)).sort();
    assert.deepEqual(keys, [`${p}e:{61bc}pod-a`, `${p}epoch`, `${p}f:{61bc}pod-a`, `${p}h:{61bc}pod-a`, `${p}m:{61bc}pod-a`]);
    assert.equal(await raw.hlen(`${p}h:{61bc}pod-a`), 3);
    assert.equal(await raw.hlen(`${p}m:{61bc}pod-a`), 3);
    assert.deepEqual(new Set(await raw.hvals(`${p}h:{61bc}pod-a`)), new Set(['gpu@1']));
    // One generation: its 3 keys leaf first (the root is evicted last), all live.
    const log = await raw.hgetall(`${p}e:{61bc}pod-a`);
    assert.deepEqual(Object.keys(log).sort(), ['c1', 'k1', 'n1']);
    assert.equal(log.c1, '3');
    assert.equal(log.n1, '3');
    const hk = Array.from(indexer.requestKeys(MODEL, prompt, BS).slice(0, 3), String);
    assert.deepEqual(log.k1.split(' '), [...hk].reverse());
    assert.equal(await raw.hget(`${p}f:{61bc}pod-a`, 'q'), '1');
    for (const k of keys.filter((k) => !k.endsWith('epoch'))) assert.ok((await raw.ttl(k)) > 0, `${k} has a TTL`);
    assert.equal((await raw.keys('*')).filter((k) => !k.startsWith('mr') && !k.startsWith('dup') && !k.startsWith('layout')).length, 0);
    await indexer.forgetEndpoint('pod-a');
    assert.deepEqual((await raw.keys(`${prefix}*`)).sort(), [`${p}epoch`, `${p}f:{61bc}pod-a`]);
  } finally {
    raw.disconnect();
    await idx.close();
  }
});

test('Redis flushed: the next write reports the index lost, listeners fire, a replay rebuilds it', async () => {
  let lost = 0;
  const { idx, indexer } = await openRedisIndexer(`flush${++prefixSeq}:`, () => lost++);
  const raw = new Redis(redis.url);
  try {
    const keys = indexer.requestKeys(MODEL, prompt, BS);
    await indexer.applyBatch('pod-a', MODEL, 0n, b([stored('pod-a', 0, 4, null)]));
    await raw.flushall();
    await indexer.applyBatch('pod-a', MODEL, 1n, b([stored('pod-a', 4, 6, 3)]));
    assert.equal(lost, 1);
    assert.equal(indexer.indexerStats().batches.lost, 1);
    // Ingestion replays the stream from 0.
    await indexer.applyBatch('pod-a', MODEL, 0n, b([stored('pod-a', 0, 4, null)]));
    await indexer.applyBatch('pod-a', MODEL, 1n, b([stored('pod-a', 4, 6, 3)]));
    assert.equal((await indexer.index.lookup(keys, ['pod-a']))[0].blocks, 6);
    assert.equal(lost, 1);
  } finally {
    raw.disconnect();
    await idx.close();
  }
});

test('a Redis unreachable at start: the index is created, calls fail fast, stats say unavailable', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const index = await createBlockIndex({ backend: 'redis', options: { url: `127.0.0.1:${port}`, maxReconnectDelayMs: 50 } });
  try {
    await assert.rejects(index.lookup([1, 2], ['pod-a']), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_INDEX_UNAVAILABLE');
    assert.equal(index.stats().available, false);
    assert.equal(index.operationStats().lookup.errors, 1);
  } finally {
    await index.close();
  }
});

// Last: it kills and restarts the shared server.
test('Redis killed: calls fail fast with KVR_ERR_INDEX_UNAVAILABLE; restarted: onIndexLost fires and the index works again', async () => {
  let onLost!: () => void;
  const lostFired = new Promise<void>((r) => (onLost = r));
  const { idx, inst, indexer } = await openRedisIndexer(`outage${++prefixSeq}:`, () => onLost());
  const keys = indexer.requestKeys(MODEL, prompt, BS);
  await indexer.applyBatch('pod-a', MODEL, 0n, b([stored('pod-a', 0, 4, null)]));
  assert.equal((await indexer.index.lookup(keys, ['pod-a']))[0].blocks, 4);
  await redis.kill();
  const unavailable = (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_INDEX_UNAVAILABLE' && e.status === 503;
  await assert.rejects(indexer.index.lookup(keys, ['pod-a']), unavailable);
  await assert.rejects(indexer.applyBatch('pod-a', MODEL, 1n, b([stored('pod-a', 4, 5, 3)])), unavailable);
  await assert.rejects(indexer.index.lookup(keys, ['pod-a']), unavailable);
  const s = indexer.stats();
  assert.equal(s.available, false);
  assert.ok(s.errors >= 3);
  assert.ok(inst.operationStats().lookup.errors >= 2);
  await redis.restart();
  await lostFired;
  assert.equal(idx.available, true);
  // Ingestion replays from 0: the index is whole again.
  await indexer.applyBatch('pod-a', MODEL, 0n, b([stored('pod-a', 0, 4, null)]));
  await indexer.applyBatch('pod-a', MODEL, 1n, b([stored('pod-a', 4, 5, 3)]));
  assert.equal((await indexer.index.lookup(keys, ['pod-a']))[0].blocks, 5);
  await idx.close();
});
