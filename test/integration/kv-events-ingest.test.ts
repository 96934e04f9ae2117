import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XPublisher } from 'zeromq';
import { encode } from '@msgpack/msgpack';

/** A second msgpack encoder (not the one under test); bigints go out as int64 / uint64. */
const pack = (v: unknown): Uint8Array => encode(v, { useBigInt64: true });
import { EventIngestor, ingestEndpointOf, type EventIngestorOptions } from '../../src/events/event-ingestor.js';
import { EndpointPool, parseEndpointList } from '../../src/datalayer/endpoint-pool.js';
import { RecordingSink } from '../../src/events/recording-sink.js';
import { encodeEventBatch } from '../../src/events/codec.js';
import { KvEventPublisher, type KvEventPublisherOptions } from '../../src/sim/kv-event-publisher.js';
import type { KvEvent } from '../../src/events/types.js';

const MODEL = 'm/odel';
const removed = (h: number): KvEvent => ({ type: 'BlockRemoved', blockHashes: [BigInt(h)], medium: 'GPU' });

/** Runs `fn` with a started publisher and ingestor; closes both whatever happens. */
async function withRig(
  pubOpts: Partial<KvEventPublisherOptions> & { replay?: boolean },
  ingOpts: Partial<EventIngestorOptions>,
  fn: (r: { pub: KvEventPublisher; ing: EventIngestor; sink: RecordingSink; send: (n: number) => void }) => Promise<void>,
): Promise<void> {
  const pub = await KvEventPublisher.start({
    endpoint: 'tcp://127.0.0.1:*',
    replayEndpoint: pubOpts.replay === false ? undefined : 'tcp://127.0.0.1:*',
    topic: `kv@127.0.0.1:8000@${MODEL}`,
    ...pubOpts,
  });
  const sink = new RecordingSink();
  const ing = new EventIngestor({ sink, replayTimeoutMs: 2000, ...ingOpts });
  let next = 0;
  const send = (n: number): void => {
    for (let i = 0; i < n; i++) pub.publish({ ts: 1, events: [removed(next++)], dataParallelRank: null });
  };
  try {
    await fn({ pub, ing, sink, send });
  } finally {
    await ing.close();
    await pub.close();
  }
}

test('connect mode: in order, one batch at a time per endpoint; a held endpoint does not block another', async () => {
  const pubB = await KvEventPublisher.start({ endpoint: 'tcp://127.0.0.1:*', topic: 'kv@127.0.0.1:8001@other' });
  try {
    await withRig({}, {}, async ({ pub, ing, sink, send }) => {
      ing.add({ id: 'a', address: '127.0.0.1:8000', events: pub.endpoint, replay: pub.replayEndpoint });
      ing.add({ id: 'b', address: '127.0.0.1:8001', events: pubB.endpoint });
      await ing.idle();
      await pub.waitForSubscribers(1);
      await pubB.waitForSubscribers(1);
      const release = sink.hold('a');
      send(30);
      for (let i = 0; i < 30; i++) pubB.publish({ ts: 2, events: [removed(i)], dataParallelRank: 3 });
      await sink.waitFor(() => sink.seqs('b').length === 30, "b's 30 batches while a is held");
      assert.ok(sink.seqs('a').length === 0, 'a is still held');
      release();
      await sink.waitFor(() => sink.seqs('a').length === 30, "a's 30 batches");
      await ing.idle();
      assert.deepEqual(sink.seqs('a'), [...Array(30).keys()]);
      assert.deepEqual(sink.seqs('b'), [...Array(30).keys()]);
      assert.equal(sink.maxConcurrentPerEndpoint, 1);
      const b0 = sink.batches.find((x) => x.endpointId === 'b')!;
      assert.equal(b0.model, 'other', 'model from the topic');
      assert.equal(b0.batch.dataParallelRank, 3);
      assert.deepEqual(b0.batch.events, [removed(0)]);
      const st = ing.stats();
      assert.equal(st.mode, 'connect');
      assert.equal(st.endpoints.a.batches, 30);
      assert.equal(st.endpoints.a.events, 30);
      assert.equal(st.endpoints.a.lastSeq, 29);
      assert.equal(st.endpoints.a.topic, `kv@127.0.0.1:8000@${MODEL}`);
      assert.equal(st.endpoints.a.gaps + st.endpoints.a.resets + st.endpoints.a.replayFailures, 0);
      assert.ok(st.endpoints.a.lastEventAt > 0);
    });
  } finally {
    await pubB.close();
  }
});

test('a gap is filled from the replay socket, then live batches continue without duplicates; resync replays from 0', async () => {
  await withRig({}, {}, async ({ pub, ing, sink, send }) => {
    ing.add({ id: 'a', address: '127.0.0.1:8000', events: pub.endpoint, replay: pub.replayEndpoint });
    await ing.idle();
    await pub.waitForSubscribers(1);
    send(2);
    pub.loseNext(3); // seqs 2..4 never reach the wire
    send(5);
    await sink.waitFor(() => sink.seqs('a').length >= 7, '7 batches');
    await ing.idle();
    assert.deepEqual(sink.seqs('a'), [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(sink.batches.map((b) => b.batch.events[0]), [0, 1, 2, 3, 4, 5, 6].map(removed));
    let st = ing.stats().endpoints.a;
    assert.equal(st.gaps, 1);
    assert.equal(st.replays, 1);
    assert.equal(st.resets, 0);
    assert.deepEqual(sink.resets, []);

    assert.equal(ing.resync('a'), true);
    await sink.waitFor(() => sink.seqs('a').length === 14, 'the resync replay');
    await ing.idle();
    assert.deepEqual(sink.seqs('a').slice(7), [0, 1, 2, 3, 4, 5, 6]);
    send(1);
    await sink.waitFor(() => sink.seqs('a').length === 15, 'live after resync');
    st = ing.stats().endpoints.a;
    assert.equal(st.replays, 2);
    assert.equal(ing.resync('nope'), false);
  });
});

test('a gap without a replay socket resets the endpoint and goes on from the live stream', async () => {
  await withRig({ replay: false }, {}, async ({ pub, ing, sink, send }) => {
    ing.add({ id: 'a', address: '127.0.0.1:8000', events: pub.endpoint });
    await pub.waitForSubscribers(1);
    send(1);
    pub.loseNext(2);
    send(3);
    await sink.waitFor(() => sink.seqs('a').length === 2, '2 batches');
    await ing.idle();
    assert.deepEqual(sink.seqs('a'), [0, 3]);
    assert.deepEqual(sink.resets, ['a']);
    const st = ing.stats().endpoints.a;
    assert.deepEqual([st.gaps, st.replays, st.replayFailures, st.resets, st.lastSeq], [1, 0, 1, 1, 3]);
  });
});

test('the periodic check does not take a last batch that was over the byte cap for a restart', async () => {
  await withRig({}, { maxMessageBytes: 400, resyncIntervalMs: 100 }, async ({ pub, ing, sink, send }) => {
    ing.add({ id: 'a', address: '127.0.0.1:8000', events: pub.endpoint, replay: pub.replayEndpoint });
    await ing.idle();
    await pub.waitForSubscribers(1);
    send(2);
    pub.publish({ ts: 1, events: Array.from({ length: 40 }, (_, i) => removed(1000 + i)), dataParallelRank: null }); // > 400 bytes
    for (let i = 0; i < 500 && (ing.stats().endpoints.a.resyncChecks ?? 0) < 3; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok((ing.stats().endpoints.a.resyncChecks ?? 0) >= 3, `three periodic checks: ${JSON.stringify(ing.stats().endpoints.a)}`);
    const st = ing.stats().endpoints.a;
    assert.ok((st.oversizedMessages ?? 0) >= 1, 'batch 2 was over the cap');
    assert.deepEqual([st.resets, st.restarts], [0, 0], 'the replay holds batch 2 as it was sent: same process');
    assert.deepEqual(sink.seqs('a'), [0, 1]);
  });
});

test('live messages queued behind a replay that covered them are duplicates, not suspected restarts', async () => {
  await withRig({}, {}, async ({ pub, ing, sink, send }) => {
    ing.add({ id: 'a', address: '127.0.0.1:8000', events: pub.endpoint, replay: pub.replayEndpoint });
    await ing.idle();
    await pub.waitForSubscribers(1);
    const release = sink.hold('a');
    send(1); // batch 0 blocks in the held sink
    for (let i = 0; i < 200 && sink.seqs('a').length === 0 && ing.stats().endpoints.a.queuedBytes === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(ing.resync('a'), true); // a replay from 0 queued behind batch 0
    send(1100); // more than the 1,024 digests a stream keeps, queued behind the replay
    await pub.drain();
    for (let i = 0; i < 500 && (ing.stats().endpoints.a.queuedBytes ?? 0) < 1000 * 20; i++) await new Promise((r) => setTimeout(r, 10));
    release();
    for (let i = 0; i < 1000 && !(ing.stats().endpoints.a.lastSeq === 1100 && ing.stats().endpoints.a.queuedBytes === 0); i++) await new Promise((r) => setTimeout(r, 10));
    await ing.idle();
    const st = ing.stats().endpoints.a;
    assert.deepEqual([st.unconfirmedSeqResets, st.restarts, st.resets], [0, 0, 0], 'the queued copies were dropped as duplicates');
    assert.equal(st.lastSeq, 1100);
  });
});

test('a router that starts after its pods learns the cache by replay (at subscription, or on a first seq > 0)', async () => {
  await withRig({}, {}, async ({ pub, ing, sink, send }) => {
    send(3); // nobody listens yet
    ing.add({ id: 'a', address: '127.0.0.1:8000', events: pub.endpoint, replay: pub.replayEndpoint });
    await sink.waitFor(() => sink.seqs('a').length === 3, 'replay at subscription');
    await pub.waitForSubscribers(1);
    send(1);
    await sink.waitFor(() => sink.seqs('a').length === 4, 'live');
    assert.deepEqual(sink.seqs('a'), [0, 1, 2, 3]);
    assert.equal(ing.stats().endpoints.a.replays, 1);
    assert.equal(ing.stats().endpoints.a.gaps, 0);
  });
  await withRig({}, { replayOnJoin: false }, async ({ pub, ing, sink, send }) => {
    send(3);
    ing.add({ id: 'a', address: '127.0.0.1:8000', events: pub.endpoint, replay: pub.replayEndpoint });
    await pub.waitForSubscribers(1);
    send(1); // first live seq is 3
    await sink.waitFor(() => sink.seqs('a').length === 4, 'replay on first seq > 0');
    await ing.idle();
    assert.deepEqual(sink.seqs('a'), [0, 1, 2, 3]);
    const st = ing.stats().endpoints.a;
    assert.deepEqual([st.gaps, st.replays, st.resets], [0, 1, 0]);
  });
});

test('a seq that goes backwards is a restarted pod: the endpoint is reset', async () => {
  await withRig({}, {}, async ({ pub, ing, sink, send }) => {
    ing.add({ id: 'a', address: '127.0.0.1:8000', events: pub.endpoint, replay: pub.replayEndpoint });
    await ing.idle();
    await pub.waitForSubscribers(1);
    send(3);
    await sink.waitFor(() => sink.seqs('a').length === 3, '3 batches');
    pub.restart();
    send(2);
    await sink.waitFor(() => sink.seqs('a').length === 5, 'after the restart');
    await ing.idle();
    assert.deepEqual(sink.seqs('a'), [0, 1, 2, 0, 1]);
    assert.deepEqual(sink.resets, ['a']);
    assert.equal(ing.stats().endpoints.a.resets, 1);
    assert.equal(ing.stats().endpoints.a.lastSeq, 1);
  });
});

test('malformed messages are counted and skipped; their seq is consumed (no false gap)', async () => {
  const raw = new XPublisher({ linger: 0 });
  await raw.bind('tcp://127.0.0.1:*');
  const sink = new RecordingSink();
  const ing = new EventIngestor({ sink });
  try {
    ing.add({ id: 'r', address: '127.0.0.1:9000', events: raw.lastEndpoint!, model: 'fallback' });
    await raw.receive(); // the subscription
    const seq = (n: number): Buffer => Buffer.from([0, 0, 0, 0, 0, 0, 0, n]);
    const good = Buffer.from(encodeEventBatch({ ts: 1, events: [removed(1)], dataParallelRank: null }));
    await raw.send(['', seq(0), Buffer.from([0xc1])]); // not msgpack
    await raw.send(['', seq(1)]); // 2 frames
    await raw.send(['', Buffer.from([1]), good]); // 1-byte seq
    await raw.send(['', seq(1), pack([1.5, [['BlockRemoved', [2]], ['Nope']]])]);
    await raw.send(['', seq(2), good]);
    await sink.waitFor(() => sink.seqs('r').length === 2, '2 good batches');
    await ing.idle();
    assert.deepEqual(sink.seqs('r'), [1, 2]);
    assert.equal(sink.batches[0].model, 'fallback', "vLLM's default topic '' names no model");
    const st = ing.stats().endpoints.r;
    assert.deepEqual([st.malformedMessages, st.malformedEvents, st.gaps, st.resets, st.batches, st.events], [3, 1, 0, 0, 2, 2]);
  } finally {
    await ing.close();
    raw.close();
  }
});

test('bind mode: pods connect, topics map to endpoints by ip:port (or a unique ip), unknown topics are counted', async () => {
  const sink = new RecordingSink();
  const ing = new EventIngestor({ sink, mode: 'bind', bindAddress: 'tcp://127.0.0.1:*' });
  await ing.start();
  const bound = ing.boundEndpoint!;
  assert.match(bound, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  const p1 = await KvEventPublisher.start({ endpoint: bound, replayEndpoint: 'tcp://127.0.0.1:*', topic: 'kv@10.1.1.1:8000@model-a' });
  const p2 = await KvEventPublisher.start({ endpoint: bound, replayEndpoint: 'tcp://127.0.0.1:*', topic: 'kv@10.1.1.2@model-b' });
  try {
    ing.add({ id: 'pod-1', address: '10.1.1.1:8000', replay: p1.replayEndpoint });
    ing.add({ id: 'pod-2', address: '10.1.1.2:8000', replay: p2.replayEndpoint });
    await ing.idle();
    await p1.waitForSubscribers(1);
    await p2.waitForSubscribers(1);
    // A first batch may pass before the subscription settles; the next one's seq then triggers replay.
    for (const p of [p1, p2]) for (let i = 0; i < 3; i++) p.publish({ ts: 1, events: [removed(i)], dataParallelRank: null });
    await sink.waitFor(() => sink.seqs('pod-1').length === 3 && sink.seqs('pod-2').length === 3, 'both pods');
    assert.deepEqual(sink.seqs('pod-1'), [0, 1, 2]);
    assert.deepEqual(sink.seqs('pod-2'), [0, 1, 2]);
    assert.equal(sink.batches.find((b) => b.endpointId === 'pod-2')!.model, 'model-b');
    // Same connection, so ordered: the unknown-topic message is counted before the next known one lands.
    p1.topic = 'kv@10.9.9.9:8000@model-a';
    p1.publish({ ts: 1, events: [], dataParallelRank: null });
    p1.topic = 'kv@10.1.1.1:8000@model-a';
    p1.publish({ ts: 1, events: [], dataParallelRank: null });
    await sink.waitFor(() => sink.seqs('pod-1').length === 5, 'pod-1 after the stray');
    await ing.idle();
    const st = ing.stats();
    assert.equal(st.mode, 'bind');
    assert.deepEqual(st.unknownTopics, { 'kv@10.9.9.9:8000@model-a': 1 });
    assert.equal(st.endpoints['pod-1'].connected, true);
    assert.equal(st.endpoints['pod-1'].resets, 0);
  } finally {
    await ing.close();
    await p1.close();
    await p2.close();
  }
});

test('removing an endpoint closes its socket and resets it; adding it again replays from 0', async () => {
  await withRig({}, {}, async ({ pub, ing, sink, send }) => {
    ing.add({ id: 'a', address: '127.0.0.1:8000', events: pub.endpoint, replay: pub.replayEndpoint });
    await ing.idle();
    await pub.waitForSubscribers(1);
    send(2);
    await sink.waitFor(() => sink.seqs('a').length === 2, '2 batches');
    assert.throws(() => ing.add({ id: 'a', address: 'x:1', events: pub.endpoint }), /already has an event subscription/);
    assert.throws(() => ing.add({ id: 'c', address: 'x:1' }), /events=tcp/);
    assert.equal(await ing.remove('a'), true);
    assert.equal(await ing.remove('a'), false);
    assert.deepEqual(sink.resets, ['a']);
    assert.deepEqual(ing.endpointIds(), []);
    assert.equal(ing.stats().endpoints.a, undefined);
    ing.add({ id: 'a', address: '127.0.0.1:8000', events: pub.endpoint, replay: pub.replayEndpoint });
    await sink.waitFor(() => sink.seqs('a').length === 4, 'replay after re-adding');
    assert.deepEqual(sink.seqs('a'), [0, 1, 0, 1]);
  });
});

test('endpoint options events= / replay= parse into Endpoint.kvEvents and feed the ingestor', async () => {
  const specs = parseEndpointList('10.0.0.1:8000;events=tcp://10.0.0.1:5557;replay=tcp://10.0.0.1:5558,10.0.0.2:8000;replay=tcp://10.0.0.2:5558;id=p2,10.0.0.3:8000');
  assert.deepEqual(specs[0].kvEvents, { endpoint: 'tcp://10.0.0.1:5557', replayEndpoint: 'tcp://10.0.0.1:5558' });
  assert.deepEqual(specs[1].kvEvents, { endpoint: '', replayEndpoint: 'tcp://10.0.0.2:5558' });
  assert.equal(specs[2].kvEvents, undefined);
  const pool = new EndpointPool(specs);
  assert.deepEqual(pool.all().map(ingestEndpointOf), [
    { id: '10.0.0.1:8000', address: '10.0.0.1:8000', events: 'tcp://10.0.0.1:5557', replay: 'tcp://10.0.0.1:5558', model: undefined },
    { id: 'p2', address: '10.0.0.2:8000', events: undefined, replay: 'tcp://10.0.0.2:5558', model: undefined },
    undefined,
  ]);
  assert.throws(() => parseEndpointList('a:1;events=10.0.0.1:5557'), /events= must be a ZeroMQ address like tcp:\/\/10\.0\.0\.5:5557/);
  assert.throws(() => parseEndpointList('a:1;replay=tcp://h'), /replay= must be a ZeroMQ address/);
  assert.throws(() => parseEndpointList('a:1;colour=red'), /allowed: role=, engine=, id=, events=, replay=/);
  // Connect mode ingests only endpoints with events=; bind mode also those with replay= alone.
  const sink = new RecordingSink();
  const connect = new EventIngestor({ sink, replayOnJoin: false });
  const bind = new EventIngestor({ sink, mode: 'bind', replayOnJoin: false });
  try {
    await connect.sync(pool.all());
    await bind.sync(pool.all());
    assert.deepEqual(connect.endpointIds(), ['10.0.0.1:8000']);
    assert.deepEqual(bind.endpointIds(), ['10.0.0.1:8000', 'p2']);
    await connect.sync(pool.all().slice(1));
    assert.deepEqual(connect.endpointIds(), []);
    assert.deepEqual(sink.resets, ['10.0.0.1:8000']);
  } finally {
    await connect.close();
    await bind.close();
  }
});

test('removing an endpoint aborts its replay in flight (no wait for the replay timeout)', { timeout: 10_000 }, async () => {
  const sink = new RecordingSink();
  const ing = new EventIngestor({ sink, replayTimeoutMs: 60_000 });
  try {
    // Nothing listens on port 1: the join replay waits for a peer until aborted.
    ing.add({ id: 'x', address: '127.0.0.1:9', events: 'tcp://127.0.0.1:1', replay: 'tcp://127.0.0.1:1' });
    assert.equal(ing.stats().endpoints.x.connected, false);
    assert.equal(await ing.remove('x'), true);
    assert.deepEqual(sink.resets, ['x']);
  } finally {
    await ing.close();
  }
});
