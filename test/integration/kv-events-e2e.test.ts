import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFleet, fleetEndpointList } from '../../src/sim/index.js';
import { EndpointPool, parseEndpointList } from '../../src/datalayer/endpoint-pool.js';
import { EventIngestor } from '../../src/events/event-ingestor.js';
import { RecordingSink } from '../../src/events/recording-sink.js';
import type { BlockStoredEvent } from '../../src/events/types.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

test('end to end: simulated replicas publish their real cache events; the router ingests them through endpoint options', async () => {
  const fleet = await startFleet({ replicas: 2, basePort: 0, timeScale: 0.01, maxModelLen: 4096, seed: 3, kvEvents: { encoding: 'map' } });
  const sink = new RecordingSink();
  const ing = new EventIngestor({ sink });
  try {
    // The fleet describes itself as an endpoint list with events= / replay= options.
    const list = fleetEndpointList(fleet);
    assert.match(list, /^127\.0\.0\.1:\d+;events=tcp:\/\/127\.0\.0\.1:\d+;replay=tcp:\/\/127\.0\.0\.1:\d+,/);
    const pool = new EndpointPool(parseEndpointList(list));
    await ing.sync(pool.all());
    assert.equal(ing.endpointIds().length, 2);
    await ing.idle();
    for (const r of fleet.replicas) await r.kvEventPublisher!.waitForSubscribers(1);

    const r0 = fleet.replicas[0];
    const id = `${r0.host}:${r0.port}`;
    assert.equal(fleet.kvEvents[0].topic, `kv@${id}@${MODEL}`);
    const prompt = 'Paged attention keeps the KV cache in fixed-size blocks. '.repeat(12);
    const tok = (await (await fetch(r0.url + '/tokenize', { method: 'POST', body: JSON.stringify({ model: MODEL, prompt }) })).json()) as { tokens: number[] };
    const res = await fetch(r0.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt, max_tokens: 1 }) });
    assert.equal(res.status, 200);
    await res.text();
    const nBlocks = Math.floor(tok.tokens.length / 16);
    assert.ok(nBlocks >= 4);
    const storedOf = (ep: string): BlockStoredEvent[] =>
      sink.batches.filter((b) => b.endpointId === ep).flatMap((b) => b.batch.events.filter((e): e is BlockStoredEvent => e.type === 'BlockStored'));
    await sink.waitFor(() => storedOf(id).reduce((n, e) => n + e.blockHashes.length, 0) >= nBlocks, 'the prompt blocks');

    const stored = storedOf(id);
    const bm = r0.engine.blockManager;
    assert.equal(stored[0].parentBlockHash, null);
    assert.deepEqual(stored.flatMap((e) => e.tokenIds), tok.tokens.slice(0, nBlocks * 16), 'token_ids cover the prompt blocks in order');
    assert.deepEqual(stored.flatMap((e) => e.blockHashes), bm.hashTokens(tok.tokens).slice(0, nBlocks), 'hashes are the engine block hashes');
    for (const h of stored.flatMap((e) => e.blockHashes)) assert.notEqual(bm.lookup(h), undefined, 'every stored block is cached');
    assert.equal(sink.batches.find((b) => b.endpointId === id)!.model, MODEL);
    assert.equal(storedOf(`${fleet.replicas[1].host}:${fleet.replicas[1].port}`).length, 0, 'the other replica cached nothing');

    // A restart is a new vLLM process: no AllBlocksCleared, seq from 0; the replay socket no longer
    // holds the last batch, which confirms the restart -> the router resets the endpoint.
    assert.equal((await fetch(r0.url + '/sim/restart', { method: 'POST' })).status, 200);
    const again = await fetch(r0.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt, max_tokens: 1 }) });
    await again.text();
    await sink.waitFor(() => sink.resets.includes(id), 'the reset after the restart');
    await ing.idle();
    const st = ing.stats().endpoints[id];
    assert.equal(st.resets, 1);
    assert.equal(st.restarts, 1);
    assert.ok(!sink.batches.some((b) => b.endpointId === id && b.batch.events.some((e) => e.type === 'AllBlocksCleared')), 'like vLLM, no AllBlocksCleared');
    assert.equal(st.malformedMessages + st.malformedEvents + st.gaps, 0);
    assert.equal(st.connected, true);
    assert.equal(sink.seqs(id).at(-1), 0, 'the new process counts from 0');
  } finally {
    await ing.close();
    await fleet.close();
  }
});
