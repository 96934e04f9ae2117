import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dealer, Subscriber } from 'zeromq';
import { KvEventPublisher } from '../../src/sim/kv-event-publisher.js';
import { decodeEventBatch } from '../../src/events/codec.js';

const TOPIC = 'kv@127.0.0.1:8000@meta-llama/Llama-3.1-8B-Instruct';
const hex = (frames: Buffer[]): string[] => frames.map((f) => f.toString('hex'));
const seqBytes = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

async function replay(endpoint: string, from: number): Promise<Buffer[][]> {
  const d = new Dealer({ linger: 0, receiveTimeout: 3000 });
  d.connect(endpoint);
  try {
    await d.send(['', seqBytes(from)]);
    const out: Buffer[][] = [];
    for (;;) {
      const m = await d.receive();
      out.push(m);
      if (m[1].equals(Buffer.alloc(8, 0xff))) return out;
    }
  } finally {
    d.close();
  }
}

test('publisher: 3 frames (topic, 8-byte BE seq from 0, msgpack), one batch per step, replay framing and end marker', async () => {
  const pub = await KvEventPublisher.start({ endpoint: 'tcp://127.0.0.1:*', replayEndpoint: 'tcp://127.0.0.1:*', topic: TOPIC, encoding: 'map' });
  const sub = new Subscriber({ linger: 0, receiveTimeout: 3000 });
  try {
    assert.match(pub.endpoint, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.match(pub.replayEndpoint!, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(pub.endpoint, pub.replayEndpoint);
    sub.subscribe();
    sub.connect(pub.endpoint);
    await pub.waitForSubscribers(1);
    // Two events added in one synchronous run (one engine step) -> one batch.
    pub.add({ type: 'BlockRemoved', blockHashes: [1n], medium: 'GPU' });
    pub.add({ type: 'BlockRemoved', blockHashes: [2n], medium: 'GPU' });
    await Promise.resolve();
    pub.add({ type: 'BlockStored', blockHashes: [0xfedcba9876543210n], parentBlockHash: null, tokenIds: [1, 2], blockSize: 2, loraId: null, medium: 'GPU', loraName: null });
    pub.flush();
    pub.add({ type: 'AllBlocksCleared' });
    pub.flush();
    const live: Buffer[][] = [];
    for (let i = 0; i < 3; i++) live.push(await sub.receive());
    for (const [i, m] of live.entries()) {
      assert.equal(m.length, 3);
      assert.equal(m[0].toString(), TOPIC);
      assert.deepEqual(m[1], seqBytes(i));
      assert.equal(m[2][0], 0x83, 'map encoding: fixmap {ts, events, data_parallel_rank}');
    }
    const first = decodeEventBatch(live[0][2]).batch;
    assert.equal(first.events.length, 2);
    assert.equal(first.dataParallelRank, 0);
    assert.deepEqual(decodeEventBatch(live[1][2]).batch.events[0], { type: 'BlockStored', blockHashes: [0xfedcba9876543210n], parentBlockHash: null, tokenIds: [1, 2], blockSize: 2, loraId: null, medium: 'GPU', loraName: null });

    const r = await replay(pub.replayEndpoint!, 1);
    assert.equal(r.length, 3);
    assert.deepEqual(hex(r[0]), hex([Buffer.alloc(0), seqBytes(1), live[1][2]]));
    assert.deepEqual(hex(r[1]), hex([Buffer.alloc(0), seqBytes(2), live[2][2]]));
    assert.deepEqual(hex(r[2]), hex([Buffer.alloc(0), Buffer.alloc(8, 0xff), Buffer.alloc(0)]));
    assert.equal((await replay(pub.replayEndpoint!, 99)).length, 1, 'past the end: only the end marker');

    // Restart: pending events go out under the old seq, then seq restarts at 0 and the buffer is emptied.
    pub.add({ type: 'AllBlocksCleared' });
    pub.restart();
    pub.add({ type: 'BlockRemoved', blockHashes: [3n], medium: 'GPU' });
    pub.flush();
    const a = await sub.receive();
    const b = await sub.receive();
    assert.deepEqual(a[1], seqBytes(3));
    assert.deepEqual(decodeEventBatch(a[2]).batch.events, [{ type: 'AllBlocksCleared' }]);
    assert.deepEqual(b[1], seqBytes(0));
    const after = await replay(pub.replayEndpoint!, 0);
    assert.equal(after.length, 2);
    assert.deepEqual(after[0][1], seqBytes(0));
    assert.ok(after[0][2].equals(b[2]));
  } finally {
    sub.close();
    await pub.close();
  }
});

test('publisher: the replay buffer keeps the last bufferSteps batches; array encoding; lost batches stay replayable', async () => {
  const pub = await KvEventPublisher.start({ endpoint: 'tcp://127.0.0.1:*', replayEndpoint: 'tcp://127.0.0.1:*', bufferSteps: 3 });
  try {
    for (let i = 0; i < 5; i++) pub.publish({ ts: 1, events: [{ type: 'BlockRemoved', blockHashes: [BigInt(i)], medium: null }], dataParallelRank: null });
    assert.equal(pub.buffered, 3);
    const r = await replay(pub.replayEndpoint!, 0);
    assert.deepEqual(r.map((m) => Number(m[1].readBigInt64BE())), [2, 3, 4, -1]);
    assert.equal(r[0][2][0], 0x93, 'array encoding: [ts, events, rank]');
    pub.loseNext(1);
    assert.equal(pub.publish({ ts: 1, events: [], dataParallelRank: null }), 5n);
    assert.deepEqual((await replay(pub.replayEndpoint!, 5)).map((m) => Number(m[1].readBigInt64BE())), [5, -1]);
  } finally {
    await pub.close();
  }
});

test('publisher: connects (does not bind) when the address has no wildcard, like vLLM', async () => {
  const sub = new Subscriber({ linger: 0, receiveTimeout: 100 });
  sub.subscribe();
  await sub.bind('tcp://127.0.0.1:*');
  const pub = await KvEventPublisher.start({ endpoint: sub.lastEndpoint!, topic: 'kv@10.0.0.1:8000@m' });
  try {
    assert.equal(pub.endpoint, sub.lastEndpoint);
    assert.equal(pub.replayEndpoint, undefined);
    await pub.waitForSubscribers(1);
    // The subscription may trail the handshake by a moment: publish until one arrives.
    let m: Buffer[] | undefined;
    for (let i = 0; i < 50 && !m; i++) {
      pub.publish({ ts: 1, events: [{ type: 'AllBlocksCleared' }], dataParallelRank: null });
      m = await sub.receive().catch(() => undefined);
    }
    assert.ok(m, 'the bound SUB received the connected PUB');
    assert.equal(m.length, 3);
    assert.equal(m[0].toString(), 'kv@10.0.0.1:8000@m');
    assert.equal(m[1].length, 8);
    assert.deepEqual(decodeEventBatch(m[2]).batch.events, [{ type: 'AllBlocksCleared' }]);
  } finally {
    await pub.close();
    sub.close();
  }
});

test('publisher: a taken port is a clear KVR_ERR_USAGE', async () => {
  const pub = await KvEventPublisher.start({ endpoint: 'tcp://127.0.0.1:*' });
  try {
    await assert.rejects(KvEventPublisher.start({ endpoint: pub.endpoint, bind: true }), (e: Error & { code?: string }) => e.code === 'KVR_ERR_USAGE' && /pick free ports/.test(e.message));
  } finally {
    await pub.close();
  }
});
