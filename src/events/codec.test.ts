import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';

/** A second msgpack encoder (not the one under test); bigints go out as int64 / uint64. */
const pack = (v: unknown): Uint8Array => encode(v, { useBigInt64: true });
import { decodeEventBatch, encodeEventBatch, normalizeHash } from './codec.js';
import { KvrError } from '../core/errors.js';
import type { KvEventBatch } from './types.js';

// Hand-built msgpack pieces (independent of the code under test).
const b = (...xs: number[]): Buffer => Buffer.from(xs);
const cat = (...parts: Buffer[]): Buffer => Buffer.concat(parts);
const f64 = (v: number): Buffer => {
  const x = Buffer.alloc(9);
  x[0] = 0xcb;
  x.writeDoubleBE(v, 1);
  return x;
};
const u64 = (v: bigint): Buffer => {
  const x = Buffer.alloc(9);
  x[0] = 0xcf;
  x.writeBigUInt64BE(v, 1);
  return x;
};
const i64 = (v: bigint): Buffer => {
  const x = Buffer.alloc(9);
  x[0] = 0xd3;
  x.writeBigInt64BE(v, 1);
  return x;
};
const fixstr = (s: string): Buffer => cat(b(0xa0 | s.length), Buffer.from(s));
const NIL = b(0xc0);

const BIG = 0xfffffffffffffffen; // > 2^63
const BIG2 = 0x8000000000000001n;

test('array encoding, built byte by byte: uint64 hashes above 2^63 survive', () => {
  const payload = cat(
    b(0x93), f64(1.5), // [ts, events, rank]
    b(0x92),
    b(0x98), fixstr('BlockStored'), b(0x92), u64(BIG), b(0x05), NIL, b(0x94, 1, 2, 3, 4), b(0x02), NIL, fixstr('GPU'), NIL,
    b(0x93), fixstr('BlockRemoved'), b(0x91), u64(BIG2), fixstr('cpu'),
    b(0x00),
  );
  const { batch, malformedEvents } = decodeEventBatch(payload);
  assert.equal(malformedEvents, 0);
  assert.equal(batch.ts, 1.5);
  assert.equal(batch.dataParallelRank, 0);
  assert.deepEqual(batch.events, [
    { type: 'BlockStored', blockHashes: [BIG, 5n], parentBlockHash: null, tokenIds: [1, 2, 3, 4], blockSize: 2, loraId: null, medium: 'GPU', loraName: null },
    { type: 'BlockRemoved', blockHashes: [BIG2], medium: 'cpu' },
  ]);
});

test('map encoding (@msgpack/msgpack as a second encoder): defaults omitted, unknown fields ignored, signed int64 normalised', () => {
  const payload = pack({
    ts: 1700000000.25,
    events: [
      { type: 'BlockStored', block_hashes: [BIG, 7n], parent_block_hash: BIG2, token_ids: [9, 8, 7, 6], block_size: 2, medium: 'GPU', kv_cache_spec_kind: 'full', kv_cache_spec_sliding_window: 4096, extra_keys: null, group_idx: 1 },
      { type: 'BlockRemoved', block_hashes: [-2n, 3] },
      { type: 'AllBlocksCleared' },
    ],
  });
  // -2n goes out as int64 (0xd3), BIG and 7n as uint64 (0xcf): both kinds appear on the wire.
  assert.ok(Buffer.from(payload).includes(0xd3));
  assert.ok(Buffer.from(payload).includes(0xcf));
  const { batch, malformedEvents } = decodeEventBatch(payload);
  assert.equal(malformedEvents, 0);
  assert.equal(batch.dataParallelRank, null);
  assert.equal(batch.ts, 1700000000.25);
  assert.deepEqual(batch.events, [
    { type: 'BlockStored', blockHashes: [BIG, 7n], parentBlockHash: BIG2, tokenIds: [9, 8, 7, 6], blockSize: 2, loraId: null, medium: 'GPU', loraName: null },
    { type: 'BlockRemoved', blockHashes: [0xfffffffffffffffen, 3n], medium: null },
    { type: 'AllBlocksCleared' },
  ]);
  // A signed int64 on the wire is the same hash as its unsigned value.
  const signed = cat(b(0x92), f64(2), b(0x91), b(0x92), fixstr('BlockRemoved'), b(0x91), i64(-2n));
  assert.deepEqual(decodeEventBatch(signed).batch.events[0], { type: 'BlockRemoved', blockHashes: [BIG], medium: null });
});

test('every trailing-field-count variant of the array form decodes', () => {
  const head = [fixstr('BlockStored'), b(0x91, 0x01), b(0x02), b(0x92, 10, 11), b(0x02)]; // hashes [1], parent 2, tokens, block_size 2
  const variants: Buffer[][] = [
    head, // stops after block_size
    [...head, b(0x07)], // + lora_id (vLLM 0.9/0.10)
    [...head, b(0x07), fixstr('GPU')], // + medium
    [...head, b(0x07), fixstr('GPU'), fixstr('ad')], // + lora_name
    [...head, b(0x07), fixstr('GPU'), NIL, b(0x91, 0x90), b(0x00)], // + extra_keys, group_idx
    [...head, b(0x07), fixstr('GPU'), NIL, NIL, b(0x00), fixstr('full'), b(0x10), fixstr('future')], // + unknown trailing fields
  ];
  for (const v of variants) {
    const ev = cat(b(0x90 | v.length), ...v);
    const { batch, malformedEvents } = decodeEventBatch(cat(b(0x92), f64(3), b(0x91), ev));
    assert.equal(malformedEvents, 0, `variant of ${v.length} fields`);
    const e = batch.events[0];
    assert.equal(e.type, 'BlockStored');
    if (e.type !== 'BlockStored') return;
    assert.deepEqual(e.blockHashes, [1n]);
    assert.equal(e.parentBlockHash, 2n);
    assert.deepEqual(e.tokenIds, [10, 11]);
    assert.equal(e.loraId, v.length >= 6 ? 7 : null);
    assert.equal(e.medium, v.length >= 7 ? 'GPU' : null);
    assert.equal(e.loraName, v.length === 8 ? 'ad' : null);
  }
  for (const tail of [[], [fixstr('GPU')], [fixstr('GPU'), b(0x01)]]) {
    const ev = cat(b(0x92 + tail.length), fixstr('BlockRemoved'), b(0x91, 0x05), ...tail);
    const { batch } = decodeEventBatch(cat(b(0x92), f64(3), b(0x91), ev));
    assert.deepEqual(batch.events, [{ type: 'BlockRemoved', blockHashes: [5n], medium: tail.length ? 'GPU' : null }]);
  }
});

test('a hash sent as raw bytes counts by its last 8 bytes, big-endian', () => {
  const raw = Buffer.alloc(32, 0x11);
  raw.writeBigUInt64BE(BIG, 24);
  const payload = cat(b(0x92), f64(0), b(0x91), b(0x92), fixstr('BlockRemoved'), b(0x91), b(0xc4, 32), raw);
  assert.deepEqual(decodeEventBatch(payload).batch.events[0], { type: 'BlockRemoved', blockHashes: [BIG], medium: null });
  assert.equal(normalizeHash(Uint8Array.of(1, 2)), 0x0102n);
  assert.equal(normalizeHash(-1), 0xffffffffffffffffn);
  assert.throws(() => normalizeHash(1.5));
  assert.throws(() => normalizeHash('12'));
});

test('bad events are skipped and counted; the rest of the batch survives', () => {
  const good = ['BlockRemoved', [1]];
  const payload = pack([
    5.5,
    [
      good,
      ['Mystery', 1],
      ['BlockStored', 'nope', null, [1, 2], 2, null],
      ['BlockStored', [1], null, [1, 2, 3], 2, null], // tokens do not cover 1 block of 2
      ['BlockStored', [1], null, [1, 'x'], 2, null],
      ['BlockStored', [1], null, [1, 2], 0, null],
      { type: 'BlockRemoved', block_hashes: [1.25] },
      { type: 'BlockRemoved', block_hashes: [2], medium: 5 },
      { block_hashes: [3] },
      42,
      null,
      ['AllBlocksCleared'],
    ],
  ]);
  const { batch, malformedEvents } = decodeEventBatch(payload);
  assert.equal(malformedEvents, 10);
  assert.deepEqual(batch.events, [{ type: 'BlockRemoved', blockHashes: [1n], medium: null }, { type: 'AllBlocksCleared' }]);
});

test('undecodable messages throw KVR_ERR_UPSTREAM', () => {
  const bad: Uint8Array[] = [
    new Uint8Array(0),
    b(0xc1), // never-used type byte
    b(0x92, 0xcb, 0x00), // truncated float
    pack('hello'),
    pack({ ts: 1 }),
    pack({ ts: 'now', events: [] }),
    pack([1, 'events']),
    pack([1, [], 'rank']),
  ];
  for (const p of bad) {
    assert.throws(() => decodeEventBatch(p), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_UPSTREAM', `payload ${Buffer.from(p).toString('hex')}`);
  }
});

test('encoder writes what vLLM (msgspec) writes: float64 ts, smallest uint forms, uint64 above 2^63', () => {
  const batch: KvEventBatch = {
    ts: 2, // integral, still float64
    events: [
      { type: 'BlockStored', blockHashes: [BIG, 0x10000000000n], parentBlockHash: 300n, tokenIds: [1, 200, 70000, 5], blockSize: 2, loraId: null, medium: 'GPU', loraName: null },
      { type: 'BlockRemoved', blockHashes: [BIG], medium: 'GPU' },
      { type: 'AllBlocksCleared' },
    ],
    dataParallelRank: 0,
  };
  const stored = [
    fixstr('BlockStored'),
    cat(b(0x92), u64(BIG), u64(0x10000000000n)),
    b(0xcd, 0x01, 0x2c),
    cat(b(0x94, 0x01, 0xcc, 200, 0xce), Buffer.from([0x00, 0x01, 0x11, 0x70]), b(0x05)),
    b(0x02), NIL, fixstr('GPU'), NIL,
  ];
  const removed = [fixstr('BlockRemoved'), cat(b(0x91), u64(BIG)), fixstr('GPU')];
  const expectArray = cat(b(0x93), f64(2), b(0x93), b(0x98), ...stored, b(0x93), ...removed, b(0x91), fixstr('AllBlocksCleared'), b(0x00));
  assert.equal(Buffer.from(encodeEventBatch(batch, { encoding: 'array' })).toString('hex'), expectArray.toString('hex'));

  const keys = ['type', 'block_hashes', 'parent_block_hash', 'token_ids', 'block_size', 'lora_id', 'medium', 'lora_name'];
  const expectMap = cat(
    b(0x83), fixstr('ts'), f64(2), fixstr('events'), b(0x93),
    b(0x88), ...stored.flatMap((v, i) => [fixstr(keys[i]), v]),
    b(0x83), ...removed.flatMap((v, i) => [fixstr(['type', 'block_hashes', 'medium'][i]), v]),
    b(0x81), fixstr('type'), fixstr('AllBlocksCleared'),
    Buffer.concat([b(0xb2), Buffer.from('data_parallel_rank')]), b(0x00),
  );
  assert.equal(Buffer.from(encodeEventBatch(batch, { encoding: 'map' })).toString('hex'), expectMap.toString('hex'));
  for (const encoding of ['array', 'map'] as const) {
    assert.deepEqual(decodeEventBatch(encodeEventBatch(batch, { encoding })), { batch, malformedEvents: 0 });
  }
});
