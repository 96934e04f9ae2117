/**
 * Bind mode's publisher address allow-list (`--kv-events-allow-from`), with real ZeroMQ: an
 * allowed publisher's events are applied; a publisher connecting from an address outside the
 * list (ZeroMQ lets a connecting socket choose its source address: 127.0.0.2 is loopback too)
 * is refused by ZAP during the handshake, its events are never applied, the refusals are
 * counted per address (stats and `kvroute_kv_event_rejected_connections_total`) and logged once.
 * Before: anyone reaching the bound address could publish for a known topic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Publisher } from 'zeromq';
import { EventIngestor } from '../../src/events/event-ingestor.js';
import { encodeEventBatch } from '../../src/events/codec.js';
import { encodeSeq } from '../../src/events/wire.js';
import { KvrError } from '../../src/core/errors.js';
import { KvIndexer } from '../../src/kv-index/kv-indexer.js';
import { MemoryBlockIndex } from '../../src/kv-index/memory-index.js';
import { RouterMetrics } from '../../src/metrics/router-metrics.js';
import { KvEventPublisher } from '../../src/sim/kv-event-publisher.js';
import { ADDRESS, BS, MODEL, TOPIC, batch, chain, stored } from '../helpers/kv-rig.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function memoryLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'warn' }, sink), lines };
}

test('allow-list: an allowed publisher is applied; one from another address is refused by ZAP, never applied, counted and logged once', async () => {
  const index = new MemoryBlockIndex();
  const indexer = new KvIndexer({ index });
  const { logger, lines } = memoryLogger();
  const ing = new EventIngestor({ sink: indexer, mode: 'bind', bindAddress: 'tcp://127.0.0.1:*', allowFrom: ['127.0.0.1/32', '10.0.0.0/8'], resyncIntervalMs: 0, logger });
  await ing.start();
  ing.add({ id: 'pod', address: ADDRESS, model: MODEL });
  const metrics = new RouterMetrics();
  metrics.attachEventStats(() => ing.stats());
  const port = ing.boundEndpoint!.slice(ing.boundEndpoint!.lastIndexOf(':') + 1);
  // Two intruder connections from 127.0.0.2, one from 127.0.0.3.
  const intruders = ['127.0.0.2', '127.0.0.2', '127.0.0.3'].map((src) => {
    const p = new Publisher({ linger: 0 });
    p.connect(`tcp://${src}:0;127.0.0.1:${port}`);
    return p;
  });
  const refused = (a: string) => ing.stats().rejectedPublishers?.[a] ?? 0;
  const legit = await KvEventPublisher.start({ endpoint: ing.boundEndpoint!, bind: false, topic: TOPIC });
  const keys = (x: ReturnType<typeof chain>) => indexer.requestKeys(MODEL, x.tokens, BS);
  try {
    const forged = chain(4, 1);
    const payload = encodeEventBatch(batch([stored(forged)]));
    // The intruders keep sending on the known topic, with their own sequence: every connection
    // attempt is refused during the handshake.
    let seq = 0n;
    for (let i = 0; i < 300 && (refused('127.0.0.2') < 2 || refused('127.0.0.3') < 1); i++) {
      for (const p of intruders) await p.send([TOPIC, encodeSeq(seq++), payload]);
      await sleep(10);
    }
    assert.ok(refused('127.0.0.2') >= 2 && refused('127.0.0.3') >= 1, `refusals counted per address: ${JSON.stringify(ing.stats().rejectedPublishers)}`);
    await legit.waitForSubscribers(1);
    const mine = chain(2, 2);
    legit.publish(batch([stored(mine)]));
    // Waits for a condition (up to 15 s on a loaded machine), not for a time.
    for (let i = 0; i < 1500 && (await index.lookup(keys(mine), ['pod']))[0].blocks === 0; i++) await sleep(10);
    assert.equal((await index.lookup(keys(mine), ['pod']))[0].blocks, 2, 'the allowed publisher is applied');
    for (let i = 0; i < 20; i++) {
      for (const p of intruders) await p.send([TOPIC, encodeSeq(seq++), payload]);
      await sleep(5);
    }
    await ing.idle();
    assert.equal((await index.lookup(keys(forged), ['pod']))[0].blocks, 0, 'the refused publisher never is');
    const st = ing.stats().endpoints.pod;
    assert.equal(st.batches, 1, 'only the allowed batch reached the stream');
    assert.equal((st.unconfirmedSeqResets ?? 0) + st.gaps, 0, 'no intruder message was even seen');
    assert.equal(ing.stats().rejectedPublishers?.['127.0.0.1'], undefined, 'the allowed address is never refused');
    assert.equal(lines.filter((l) => l.address === '127.0.0.2').length, 1, 'logged once per address');
    assert.equal(lines.filter((l) => l.address === '127.0.0.3').length, 1, 'each address logged');
    const text = await metrics.registry.metrics();
    const m = /^kvroute_kv_event_rejected_connections_total\{address="127\.0\.0\.2"\} (\d+)/m.exec(text);
    assert.ok(m && Number(m[1]) >= 2, `metric: ${text.split('\n').filter((l) => l.includes('rejected')).join(' | ')}`);
  } finally {
    for (const p of intruders) p.close();
    await legit.close();
    await ing.close();
  }
});

test('allow-list: refused outside bind mode and for malformed entries, with what to do', () => {
  const sink = new KvIndexer({ index: new MemoryBlockIndex() });
  assert.throws(() => new EventIngestor({ sink, mode: 'connect', allowFrom: ['127.0.0.1'] }), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_USAGE' && /bind mode/.test(e.message));
  assert.throws(() => new EventIngestor({ sink, mode: 'bind', allowFrom: ['10.0.0.300'] }), (e: unknown) => e instanceof KvrError && /not an IP address or CIDR/.test(e.message));
  assert.throws(() => new EventIngestor({ sink, mode: 'bind', allowFrom: ['10.0.0.0/33'] }), (e: unknown) => e instanceof KvrError && /prefix length/.test(e.message));
  assert.throws(() => new EventIngestor({ sink, mode: 'bind', allowFrom: [] }), (e: unknown) => e instanceof KvrError && /empty/.test(e.message));
});
