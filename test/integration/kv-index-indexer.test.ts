/**
 * The indexer (the KvEventSink) on the memory index: hand-built vLLM event batches in, lookups
 * with the request's own keys out. Stores, removes, clears, tiers, LoRA, unknown parents,
 * malformed events, resets and publisher restarts; the instrumented decorator's counters.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import type { BlockStoredEvent, KvEvent, KvEventBatch } from '../../src/events/types.js';
import { KvIndexer } from '../../src/kv-index/kv-indexer.js';
import { MemoryBlockIndex } from '../../src/kv-index/memory-index.js';
import { InstrumentedBlockIndex } from '../../src/kv-index/instrumented-index.js';
import { ManualClock } from '../../src/core/clock.js';
import { KvrError } from '../../src/core/errors.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const BS = 16;
const prompt = Array.from({ length: 8 * BS + 5 }, (_, i) => (i * 7 + 3) % 128_000);
const blockTokens = (from: number, to: number) => prompt.slice(from * BS, to * BS);
const H = (i: number) => 0xf000_0000_0000_0000n + BigInt(i); // engine hashes above 2^63

function stored(from: number, to: number, parent: bigint | null, extra: Partial<BlockStoredEvent> = {}): BlockStoredEvent {
  const hashes: bigint[] = [];
  for (let i = from; i < to; i++) hashes.push(H(i));
  return { type: 'BlockStored', blockHashes: hashes, parentBlockHash: parent, tokenIds: blockTokens(from, to), blockSize: BS, loraId: null, medium: null, loraName: null, ...extra };
}
const removed = (idx: number[], medium: string | null = null): KvEvent => ({ type: 'BlockRemoved', blockHashes: idx.map(H), medium });
const batch = (events: KvEvent[], ts = 1_700_000_000): KvEventBatch => ({ ts, events, dataParallelRank: null });

function setup() {
  const index = new InstrumentedBlockIndex(new MemoryBlockIndex(), { clock: new ManualClock() });
  const indexer = new KvIndexer({ index });
  const keys = indexer.requestKeys(MODEL, prompt, BS);
  const run = async (ep = 'pod-a') => {
    const [r] = await indexer.index.lookup(keys, [ep]);
    return [r.blocks, Math.round(r.weighted * 100) / 100];
  };
  return { index, indexer, keys, run };
}

test('keys from events equal keys from the request tokens: a chain stored over two events is found whole', async () => {
  const { indexer, keys, run } = setup();
  assert.equal(keys.length, 8); // the trailing 5 tokens are a partial block
  await indexer.applyBatch('pod-a', MODEL, 0n, batch([stored(0, 3, null), stored(3, 5, H(2))]));
  assert.deepEqual(await run(), [5, 5]);
  // A later batch continues the chain from a parent stored in an earlier batch.
  await indexer.applyBatch('pod-a', MODEL, 1n, batch([stored(5, 8, H(4))]));
  assert.deepEqual(await run(), [8, 8]);
  assert.deepEqual(await run('pod-b'), [0, 0]);
  const s = indexer.indexerStats();
  assert.equal(s.storedBlocks, 8);
  assert.equal(s.batches.applied, 2);
});

test('BlockRemoved ends the run at the removed block; AllBlocksCleared drops the endpoint', async () => {
  const { indexer, run } = setup();
  await indexer.applyBatch('pod-a', MODEL, 0n, batch([stored(0, 8, null)]));
  await indexer.applyBatch('pod-b', MODEL, 0n, batch([stored(0, 8, null)]));
  await indexer.applyBatch('pod-a', MODEL, 1n, batch([removed([5, 6])]));
  assert.deepEqual(await run(), [5, 5]);
  await indexer.applyBatch('pod-a', MODEL, 2n, batch([{ type: 'AllBlocksCleared' }]));
  assert.deepEqual(await run(), [0, 0]);
  assert.deepEqual(await run('pod-b'), [8, 8]);
});

test('tiers: medium names are normalized; GPU and CPU copies weigh 1.0 and 0.8, removal is per tier', async () => {
  const { indexer, run } = setup();
  await indexer.applyBatch('pod-a', MODEL, 0n, batch([stored(0, 4, null, { medium: 'GPU' }), stored(0, 8, null, { medium: 'CPU' })]));
  assert.deepEqual(await run(), [8, 7.2]); // 4 x 1.0 + 4 x 0.8
  await indexer.applyBatch('pod-a', MODEL, 1n, batch([removed([0, 1, 2, 3], 'gpu')]));
  assert.deepEqual(await run(), [8, 6.4]);
  await indexer.applyBatch('pod-a', MODEL, 2n, batch([removed([2], 'Cpu')]));
  assert.deepEqual(await run(), [2, 1.6]);
});

test('an unknown parent skips the event and what it chains to in the batch, and is counted', async () => {
  const { indexer, run } = setup();
  await indexer.applyBatch('pod-a', MODEL, 0n, batch([stored(2, 4, H(1)), stored(4, 6, H(3)), stored(0, 1, null)]));
  assert.deepEqual(await run(), [1, 1]);
  assert.equal(indexer.indexerStats().unknownParents, 2);
  assert.equal(indexer.stats().unknownParents, 2);
});

test('malformed events are skipped and counted; the good events of the batch apply', async () => {
  const { indexer, run } = setup();
  const bad: KvEvent[] = [
    stored(0, 2, null, { medium: 'G,PU' }),
    stored(0, 2, null, { tokenIds: blockTokens(0, 2).slice(1) }),
    stored(0, 2, null, { tokenIds: [-1, ...blockTokens(0, 2).slice(1)] }),
    stored(0, 2, null, { blockSize: 0 }),
    { type: 'BlockRemoved', blockHashes: [1 as unknown as bigint], medium: null },
    { type: 'Nonsense' } as unknown as KvEvent,
    null as unknown as KvEvent,
  ];
  await indexer.applyBatch('pod-a', MODEL, 0n, batch([...bad, stored(0, 3, null)]));
  assert.deepEqual(await run(), [3, 3]);
  assert.equal(indexer.indexerStats().malformedEvents, bad.length);
  await assert.rejects(indexer.applyBatch('pod-a', MODEL, -1n, batch([])), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_BAD_REQUEST');
  await assert.rejects(indexer.applyBatch('pod-a', MODEL, 2n, { ts: Number.NaN, events: [], dataParallelRank: null }), KvrError);
  assert.deepEqual(await run(), [3, 3]);
});

test('LoRA blocks are keyed apart from the base model', async () => {
  const { indexer, keys } = setup();
  await indexer.applyBatch('pod-a', MODEL, 0n, batch([stored(0, 8, null, { loraId: 1, loraName: 'sql-adapter' })]));
  const lora = indexer.requestKeys(MODEL, prompt, BS, 'sql-adapter');
  assert.equal((await indexer.index.lookup(lora, ['pod-a']))[0].blocks, 8);
  assert.equal((await indexer.index.lookup(keys, ['pod-a']))[0].blocks, 0);
});

test('resetEndpoint and a publisher restart (seq going back) drop what the endpoint had', async () => {
  const { indexer, run } = setup();
  await indexer.applyBatch('pod-a', MODEL, 0n, batch([stored(0, 8, null)]));
  await indexer.resetEndpoint('pod-a');
  assert.deepEqual(await run(), [0, 0]);
  await indexer.applyBatch('pod-a', MODEL, 7n, batch([stored(0, 4, null)]));
  await indexer.applyBatch('pod-a', MODEL, 8n, batch([stored(4, 6, H(3))]));
  assert.deepEqual(await run(), [6, 6]);
  // The publisher restarts: seq starts over at 0, with blocks of a new cache.
  await indexer.applyBatch('pod-a', MODEL, 0n, batch([stored(0, 2, null)], 1_700_000_100));
  assert.deepEqual(await run(), [2, 2]);
  await indexer.forgetEndpoint('pod-a');
  assert.deepEqual(await run(), [0, 0]);
});

test('the instrumented index counts calls and batch outcomes by operation', async () => {
  const { index, indexer, keys } = setup();
  await indexer.applyBatch('pod-a', MODEL, 0n, batch([stored(0, 2, H(99))]));
  await indexer.applyBatch('pod-a', MODEL, 1n, batch([stored(0, 2, null)]));
  await index.lookup(keys, ['pod-a']);
  await index.lookup(keys, ['pod-a']);
  const ops = index.operationStats();
  assert.equal(ops.lookup.calls, 2);
  assert.equal(ops.apply.calls, 2);
  assert.equal(ops.resolve.calls, 1);
  assert.equal(index.applyOutcomes().applied, 2);
  assert.equal(index.stats().lookups, 2);
  assert.ok(ops.lookup.p99Ms >= ops.lookup.p50Ms);
});
