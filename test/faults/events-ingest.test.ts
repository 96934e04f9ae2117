/**
 * KV-event ingestion under bad input and faults, all real parts (ZeroMQ sockets, the simulator's
 * publisher and replay socket, the indexer on the memory index). Each case failed on the code
 * before it: forged messages applied, no caps, one huge message applied without yielding, any
 * lower sequence number wiping the endpoint, a failed sink write marked applied.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Publisher } from 'zeromq';
import { DEFAULT_EVENTS_BIND, EventIngestor } from '../../src/events/event-ingestor.js';
import { encodeEventBatch } from '../../src/events/codec.js';
import { encodeSeq } from '../../src/events/wire.js';
import { KvrError } from '../../src/core/errors.js';
import { ProcessStartSignal } from '../../src/events/restart-signal.js';
import type { KvEventSink } from '../../src/events/types.js';
import { KvIndexer } from '../../src/kv-index/kv-indexer.js';
import { MemoryBlockIndex } from '../../src/kv-index/memory-index.js';
import { KvEventPublisher } from '../../src/sim/kv-event-publisher.js';
import { ADDRESS, BS, MODEL, TOPIC, batch, chain, removed, startRig, stored } from '../helpers/kv-rig.js';

test('bind mode listens on loopback unless told otherwise', () => {
  assert.equal(DEFAULT_EVENTS_BIND, 'tcp://127.0.0.1:5557');
});

test('bind mode: a forged BlockStored on a topic naming no known endpoint is dropped and counted', async () => {
  const index = new MemoryBlockIndex();
  const indexer = new KvIndexer({ index });
  const ing = new EventIngestor({ sink: indexer, mode: 'bind', bindAddress: 'tcp://127.0.0.1:*', resyncIntervalMs: 0 });
  await ing.start();
  ing.add({ id: 'pod', address: ADDRESS, model: MODEL });
  const forger = new Publisher({ linger: 0 });
  forger.connect(ing.boundEndpoint!);
  const legit = await KvEventPublisher.start({ endpoint: ing.boundEndpoint!, bind: false, topic: TOPIC });
  try {
    const c = chain(4, 1);
    const forged = encodeEventBatch(batch([stored(c)]));
    // The forger keeps sending (a PUB drops messages until the connection is up).
    for (let i = 0; i < 200 && Object.keys(ing.stats().unknownTopics).length === 0; i++) {
      await forger.send([`kv@10.6.6.6:8000@${MODEL}`, encodeSeq(BigInt(i)), forged]);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok((ing.stats().unknownTopics[`kv@10.6.6.6:8000@${MODEL}`] ?? 0) > 0, 'counted by topic');
    await legit.waitForSubscribers(1);
    const mine = chain(2, 2);
    legit.publish(batch([stored(mine)]));
    const keys = (x: typeof c) => indexer.requestKeys(MODEL, x.tokens, BS);
    for (let i = 0; i < 300 && (await index.lookup(keys(mine), ['pod']))[0].blocks === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await index.lookup(keys(mine), ['pod']))[0].blocks, 2, 'the real publisher is applied');
    assert.equal((await index.lookup(keys(c), ['pod']))[0].blocks, 0, 'the forged blocks are not');
  } finally {
    forger.close();
    await legit.close();
    await ing.close();
  }
});

test('caps: a message over the byte cap and an event over the blocks cap are dropped and counted; the rest applies', async () => {
  const rig = await startRig({ ingestor: { maxMessageBytes: 64 * 1024, maxBlocksPerEvent: 100 } });
  try {
    const big = chain(2000, 3); // 2,000 blocks x 16 tokens (~96 KB of token ids): over both caps
    const small = chain(3, 4);
    rig.pub.publish(batch([stored(big)])); // seq 0: over 64 KiB
    rig.pub.publish(batch([stored(chain(150, 5)), stored(small)])); // seq 1: one event over 100 blocks, one within
    await rig.until(() => rig.ing.stats().endpoints.pod.lastSeq === 1, 'both messages processed');
    const st = rig.ing.stats().endpoints.pod;
    assert.equal(st.oversizedMessages, 1);
    assert.equal(st.oversizedEvents, 1);
    assert.equal(await rig.held(big), 0);
    assert.equal(await rig.held(small), 3, 'the event within the caps applies');
  } finally {
    await rig.close();
  }
});

test('a 200k-block message is applied in slices and the event loop turns between them', async () => {
  let ticks = 0;
  let spinning = true;
  const spin = (): void => {
    ticks++;
    if (spinning) setImmediate(spin);
  };
  const seen: number[] = [];
  const rig = await startRig({
    ingestor: { maxMessageBytes: 64 * 1024 * 1024, maxBlocksPerEvent: 250_000, sliceBlocks: 4096 },
    wrapSink: (s: KvEventSink): KvEventSink => ({
      applyBatch: async (...a) => {
        seen.push(ticks);
        await s.applyBatch(...a);
      },
      resetEndpoint: (id) => s.resetEndpoint(id),
    }),
  });
  try {
    const huge = chain(200_000, 6);
    setImmediate(spin);
    rig.pub.publish(batch([stored(huge)]));
    await rig.until(() => rig.ing.stats().endpoints.pod.batches === 1, 'the huge batch', 60_000);
    spinning = false;
    assert.equal(seen.length, Math.ceil(200_000 / 4096), 'one sink call per slice');
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `the event loop turned between slices ${i - 1} and ${i}`);
    assert.equal(await rig.held(huge), 200_000, 'every block applied, chained across slices');
  } finally {
    spinning = false;
    await rig.close();
  }
});

/** `s`, except that its next `state.failing` batches fail as an unreachable index would. */
function failingSink(s: KvEventSink, state: { failing: number }): KvEventSink {
  return {
    applyBatch: async (...a) => {
      if (state.failing > 0) {
        state.failing--;
        throw new KvrError('KVR_ERR_INDEX_UNAVAILABLE', 'index down (test)');
      }
      await s.applyBatch(...a);
    },
    resetEndpoint: (id) => s.resetEndpoint(id),
  };
}

/** Bind mode: the legit publisher (with replay unless told) and a forger both connect to the SUB. */
async function bindRig(o: { replay?: boolean; signal?: ProcessStartSignal; wrapSink?: (s: KvEventSink) => KvEventSink; sinkRetryMs?: number; lowSeqRecheckMs?: number } = {}) {
  const index = new MemoryBlockIndex();
  const indexer = new KvIndexer({ index });
  const sink = o.wrapSink ? o.wrapSink(indexer) : indexer;
  const ing = new EventIngestor({ sink, mode: 'bind', bindAddress: 'tcp://127.0.0.1:*', resyncIntervalMs: 0, restartSignal: o.signal, sinkRetryMs: o.sinkRetryMs, lowSeqRecheckMs: o.lowSeqRecheckMs });
  await ing.start();
  const legit = await KvEventPublisher.start({ endpoint: ing.boundEndpoint!, bind: false, topic: TOPIC, replayEndpoint: o.replay === false ? undefined : 'tcp://127.0.0.1:*' });
  ing.add({ id: 'pod', address: ADDRESS, model: MODEL, replay: legit.replayEndpoint });
  const forger = new Publisher({ linger: 0 });
  forger.connect(ing.boundEndpoint!);
  await legit.waitForSubscribers(1);
  const pod = () => ing.stats().endpoints.pod;
  const until = async (check: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(check(), `${what}: ${JSON.stringify(pod())}`);
  };
  const held = async (c: ReturnType<typeof chain>) => (await index.lookup(indexer.requestKeys(MODEL, c.tokens, BS), ['pod']))[0].blocks;
  /** Sends a forged message with `seq` until ingestion saw it (a PUB drops messages until connected). */
  const forge = async (seq: bigint, seen: () => boolean): Promise<void> => {
    const payload = encodeEventBatch(batch([{ type: 'AllBlocksCleared' }], 1_800_000_000));
    for (let i = 0; i < 300 && !seen(); i++) {
      await forger.send([TOPIC, encodeSeq(seq), payload]);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const close = async () => {
    forger.close();
    await legit.close();
    await ing.close();
  };
  return { ing, legit, forger, pod, until, held, forge, close };
}

test('a forged lower sequence number that replay does not confirm is dropped: the endpoint is not wiped', async () => {
  const r = await bindRig();
  try {
    const c = chain(4, 7);
    for (let i = 0; i < 5; i++) r.legit.publish(batch([stored(chain(1, 100 + i))]));
    r.legit.publish(batch([stored(c)]));
    await r.until(() => r.pod().lastSeq === 5, 'six batches');
    await r.forge(0n, () => (r.pod().unconfirmedSeqResets ?? 0) > 0);
    assert.ok((r.pod().unconfirmedSeqResets ?? 0) >= 1, 'counted');
    assert.equal(r.pod().restarts, 0);
    assert.equal(r.pod().resets, 0);
    assert.equal(await r.held(c), 4, 'the endpoint keeps its blocks');
    // The real stream goes on.
    const d = chain(2, 8);
    r.legit.publish(batch([stored(d)]));
    await r.until(() => r.pod().lastSeq === 6, 'the next real batch');
    assert.equal(await r.held(d), 2);
  } finally {
    await r.close();
  }
});

test('a forged HIGHER sequence number interleaved with the real stream is dropped: the replay shows the pod never sent it', async () => {
  const r = await bindRig();
  try {
    const c = chain(4, 12);
    for (let i = 0; i < 5; i++) r.legit.publish(batch([stored(chain(1, 400 + i))]));
    r.legit.publish(batch([stored(c)]));
    await r.until(() => r.pod().lastSeq === 5, 'six batches');
    // A second publisher on the pod's topic, far ahead (the soak's flood does this at 40 msg/s).
    await r.forge(1_000_000n, () => (r.pod().foreignMessages ?? 0) > 0);
    for (let k = 0; k < 5; k++) await r.forge(1_000_001n + BigInt(k), () => false);
    // The real stream goes on between the forged messages, and the gap left by a lost real
    // batch is still filled by replay.
    const d = chain(2, 13);
    r.legit.publish(batch([stored(d)]));
    r.legit.loseNext(1);
    r.legit.publish(batch([stored(chain(1, 500))]));
    const e = chain(3, 14);
    r.legit.publish(batch([stored(e)]));
    await r.until(() => r.pod().lastSeq === 8, 'the real batches after the forged ones');
    const st = r.pod();
    assert.ok((st.foreignMessages ?? 0) >= 1, 'counted');
    assert.deepEqual([st.resets, st.restarts, st.unconfirmedSeqResets], [0, 0, 0], 'no reset: the forged AllBlocksCleared never applied');
    assert.equal(await r.held(c), 4, 'the endpoint keeps its blocks');
    assert.equal(await r.held(d), 2);
    assert.equal(await r.held(e), 3, 'the lost real batch was replayed, then the next applied');
    assert.ok(st.replays >= 1);
  } finally {
    await r.close();
  }
});

test('a forged higher seq that arrives while the sink is failing does not make the pod\'s next messages look like a restart', async () => {
  const sink = { failing: 0 };
  const r = await bindRig({
    sinkRetryMs: 400,
    lowSeqRecheckMs: 0, // no window: every forged message goes the slow way
    wrapSink: (s) => failingSink(s, sink),
  });
  try {
    for (let i = 0; i < 6; i++) r.legit.publish(batch([stored(chain(1, 600 + i))]));
    await r.until(() => r.pod().lastSeq === 5, 'six batches');
    await r.forge(1_000_000n, () => (r.pod().foreignMessages ?? 0) > 0); // the forger is connected
    sink.failing = 1;
    const c = chain(3, 15);
    r.legit.publish(batch([stored(c)]));
    await r.until(() => (r.pod().sinkFailures ?? 0) === 1, 'the sink failed');
    for (let k = 0; k < 3; k++) {
      await r.forger.send([TOPIC, encodeSeq(1_000_010n + BigInt(k)), encodeEventBatch(batch([{ type: 'AllBlocksCleared' }], 1_800_000_000))]);
      await new Promise((res) => setTimeout(res, 20));
    }
    const d = chain(2, 16);
    await new Promise((res) => setTimeout(res, 500)); // past the sink's back-off
    r.legit.publish(batch([stored(d)]));
    r.legit.publish(batch([stored(chain(1, 700))]));
    await r.until(() => r.pod().lastSeq === 8, 'the pod\'s batches after the failure');
    const st = r.pod();
    assert.deepEqual([st.unconfirmedSeqResets, st.restarts, st.resets], [0, 0, 0], 'the pod\'s own messages were never taken for a restart');
    assert.equal(await r.held(c), 3);
    assert.equal(await r.held(d), 2);
  } finally {
    await r.close();
  }
});

test('a silent restart (sequence back to 0, no AllBlocksCleared) is confirmed by replay: the endpoint is reset', async () => {
  const r = await bindRig();
  try {
    const c = chain(4, 9);
    for (let i = 0; i < 5; i++) r.legit.publish(batch([stored(chain(1, 200 + i))]));
    r.legit.publish(batch([stored(c)]));
    await r.until(() => r.pod().lastSeq === 5, 'six batches');
    r.legit.restart(); // a new process: seq 0, empty replay buffer
    const d = chain(2, 10);
    r.legit.publish(batch([stored(d)]));
    await r.until(() => r.pod().restarts === 1 && r.pod().lastSeq === 0, 'the restart confirmed');
    assert.equal(await r.held(c), 0, 'the old process\'s blocks are gone');
    assert.equal(await r.held(d), 2, 'the new process\'s blocks are there');
  } finally {
    await r.close();
  }
});

test('without replay: one forged lower seq is dropped; a run of them, or a new process start time, confirms the restart', async () => {
  const signal = new ProcessStartSignal();
  signal.report('pod', 1000);
  const r = await bindRig({ replay: false, signal });
  try {
    const c = chain(3, 11);
    // No replay: publish until the subscription is through (a PUB drops messages before that).
    for (let i = 0; i < 300 && r.pod().batches === 0; i++) {
      r.legit.publish(batch([stored(chain(1, 300 + i))]));
      await new Promise((res) => setTimeout(res, 10));
    }
    r.legit.publish(batch([stored(c)]));
    const last = Number(r.legit.nextSeq) - 1;
    await r.until(() => r.pod().lastSeq === last, 'the chain batch');
    await r.forge(0n, () => (r.pod().unconfirmedSeqResets ?? 0) > 0);
    assert.equal(r.pod().restarts, 0);
    assert.equal(await r.held(c), 3, 'one lower seq alone does not wipe');
    // The datalayer saw a new process start time: the endpoint is reset at once.
    signal.report('pod', 2000);
    await r.until(() => r.pod().restarts === 1, 'restart from the signal');
    assert.equal(await r.held(c), 0);
  } finally {
    await r.close();
  }
});

test('a sink failure is not marked applied: the batch is replayed once the sink works again', async () => {
  const sink = { failing: 0 };
  const rig = await startRig({ ingestor: { sinkRetryMs: 50 }, wrapSink: (s: KvEventSink) => failingSink(s, sink) });
  try {
    const c = chain(4, 12);
    rig.pub.publish(batch([stored(c)]));
    await rig.until(() => rig.ing.stats().endpoints.pod.batches === 1, 'first batch');
    sink.failing = 3;
    rig.pub.publish(batch([removed(c, [3])])); // would leave a phantom block 3 if lost
    rig.pub.publish(batch([removed(c, [2])]));
    await rig.until(() => rig.ing.stats().endpoints.pod.batches === 3, 'both batches applied after the failures');
    const st = rig.ing.stats().endpoints.pod;
    assert.ok((st.sinkFailures ?? 0) >= 1, 'failures counted');
    assert.equal(st.lastSeq, 2);
    assert.equal(await rig.held(c), 2, 'both removals applied: no phantom blocks');
  } finally {
    await rig.close();
  }
});
