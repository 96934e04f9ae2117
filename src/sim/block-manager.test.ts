import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockManager, type KvCacheEvent } from './block-manager.js';
import { chainBlockHash, ROOT_BLOCK_HASH } from './block-hash.js';

const seq = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

test('block hashes chain: same prefix, same hashes; a change propagates to later blocks', () => {
  const bm = new BlockManager({ numBlocks: 8, blockSize: 4 });
  const a = bm.hashTokens(seq(12));
  const b = bm.hashTokens([...seq(4), 99, ...seq(7, 5)]);
  assert.equal(a.length, 3);
  assert.equal(a[0], b[0]);
  assert.notEqual(a[1], b[1]);
  assert.notEqual(a[2], b[2]);
  assert.equal(a[1], chainBlockHash(a[0], seq(12), 4, 4));
  assert.equal(a[0], chainBlockHash(null, seq(4), 0, 4));
  assert.notEqual(a[0], ROOT_BLOCK_HASH);
  // only full blocks
  assert.equal(bm.hashTokens(seq(11)).length, 2);
  // deterministic across instances
  assert.deepEqual(new BlockManager({ numBlocks: 1, blockSize: 4 }).hashTokens(seq(12)), a);
});

test('hit = longest cached prefix, at most prompt_len - 1 tokens', () => {
  const bm = new BlockManager({ numBlocks: 8, blockSize: 4 });
  const toks = seq(12);
  const h = bm.hashTokens(toks);
  const blocks: number[] = [];
  assert.ok(bm.allocate(3, blocks));
  bm.cacheBlocks(blocks, h, toks, 0, 3);
  bm.free(blocks);
  assert.equal(bm.findCachedPrefix(h, 12).tokens, 8, 'fully cached 12-token prompt recomputes its last block');
  assert.equal(bm.findCachedPrefix(h, 13).tokens, 12);
  const other = bm.hashTokens([...seq(4), 7, 7, 7, 7]);
  assert.equal(bm.findCachedPrefix(other, 9).tokens, 4);
  assert.equal(bm.findCachedPrefix(bm.hashTokens(seq(8, 50)), 9).tokens, 0);
});

test('ref counts: touch takes cached free blocks out of the free queue; free puts them back', () => {
  const bm = new BlockManager({ numBlocks: 4, blockSize: 2 });
  const toks = seq(4);
  const h = bm.hashTokens(toks);
  const b: number[] = [];
  bm.allocate(2, b);
  bm.cacheBlocks(b, h, toks, 0, 2);
  assert.equal(bm.numFreeBlocks, 2);
  assert.equal(bm.usage, 0.5);
  bm.touch(b);
  assert.equal(bm.refCount(b[0]), 2);
  bm.free(b);
  bm.free(b);
  assert.equal(bm.refCount(b[0]), 0);
  assert.equal(bm.numFreeBlocks, 4);
  assert.equal(bm.usage, 0);
  assert.equal(bm.numCachedBlocks, 2, 'freed blocks stay cached');
  assert.ok(!bm.canAllocate(b, 3), 'touching 2 free hit blocks leaves 2 for new ones');
  assert.ok(bm.canAllocate(b, 2));
  assert.throws(() => bm.free(b));
});

test('eviction takes the least recently freed block first, tail blocks of a request before its head', () => {
  const events: KvCacheEvent[] = [];
  const bm = new BlockManager({ numBlocks: 4, blockSize: 2, onEvent: (e) => events.push(e) });
  const t1 = [1, 2, 3, 4];
  const t2 = [5, 6, 7, 8];
  const h1 = bm.hashTokens(t1);
  const h2 = bm.hashTokens(t2);
  const b1: number[] = [];
  const b2: number[] = [];
  bm.allocate(2, b1);
  bm.allocate(2, b2);
  bm.cacheBlocks(b1, h1, t1, 0, 2);
  bm.cacheBlocks(b2, h2, t2, 0, 2);
  bm.free(b1); // freed first: b1[1] then b1[0]
  bm.free(b2);
  events.length = 0;
  const got: number[] = [];
  bm.allocate(1, got);
  assert.deepEqual(got, [b1[1]]);
  assert.deepEqual(events, [{ type: 'BlockRemoved', blockHashes: [h1[1]], medium: 'GPU' }]);
  assert.equal(bm.lookup(h1[1]), undefined);
  assert.equal(bm.lookup(h1[0]), b1[0]);
  bm.allocate(1, got);
  assert.deepEqual(got, [b1[1], b1[0]]);
  assert.ok(!bm.allocate(3, got), 'only 2 free');
  assert.equal(got.length, 2);
});

test('events: BlockStored with parent and tokens; AllBlocksCleared on reset', () => {
  const events: KvCacheEvent[] = [];
  const bm = new BlockManager({ numBlocks: 4, blockSize: 2, onEvent: (e) => events.push(e) });
  const t = [10, 11, 12, 13, 14, 15];
  const h = bm.hashTokens(t);
  const b: number[] = [];
  bm.allocate(3, b);
  bm.cacheBlocks(b, h, t, 0, 1);
  bm.cacheBlocks(b, h, t, 1, 3);
  assert.deepEqual(events, [
    { type: 'BlockStored', blockHashes: [h[0]], parentBlockHash: null, tokenIds: [10, 11], blockSize: 2, medium: 'GPU' },
    { type: 'BlockStored', blockHashes: [h[1], h[2]], parentBlockHash: h[0], tokenIds: [12, 13, 14, 15], blockSize: 2, medium: 'GPU' },
  ]);
  events.length = 0;
  // a duplicate hash in another block is stored again, like vLLM (no de-duplication)
  const d: number[] = [];
  bm.allocate(1, d);
  bm.cacheBlocks(d, h, t, 0, 1);
  assert.deepEqual(events, [{ type: 'BlockStored', blockHashes: [h[0]], parentBlockHash: null, tokenIds: [10, 11], blockSize: 2, medium: 'GPU' }]);
  assert.equal(bm.numCachedBlocks, 4);
  events.length = 0;
  assert.equal(bm.resetPrefixCache(), false, 'blocks in use');
  bm.reset();
  assert.deepEqual(events, [{ type: 'AllBlocksCleared' }]);
  assert.equal(bm.numCachedBlocks, 0);
  assert.equal(bm.numFreeBlocks, 4);
});

test('duplicates: a hash held by two blocks stays cached until both are evicted, one BlockRemoved each', () => {
  const events: KvCacheEvent[] = [];
  const bm = new BlockManager({ numBlocks: 3, blockSize: 2, onEvent: (e) => events.push(e) });
  const t = [1, 2];
  const h = bm.hashTokens(t);
  const a: number[] = [];
  const b: number[] = [];
  bm.allocate(1, a);
  bm.cacheBlocks(a, h, t, 0, 1);
  bm.allocate(1, b);
  bm.cacheBlocks(b, h, t, 0, 1);
  assert.equal(events.filter((e) => e.type === 'BlockStored').length, 2);
  bm.free(a);
  bm.free(b);
  events.length = 0;
  // the free queue is [2 (never used), a, b]: allocating 2 evicts block a's copy only
  const x: number[] = [];
  bm.allocate(2, x);
  assert.deepEqual(events, [{ type: 'BlockRemoved', blockHashes: [h[0]], medium: 'GPU' }]);
  assert.equal(bm.lookup(h[0]), b[0], 'the other copy is found');
  events.length = 0;
  bm.allocate(1, x);
  assert.deepEqual(events, [{ type: 'BlockRemoved', blockHashes: [h[0]], medium: 'GPU' }]);
  assert.equal(bm.lookup(h[0]), undefined);
  assert.equal(bm.numCachedBlocks, 0);
});

test('reset(false): a silent restart sends no AllBlocksCleared', () => {
  const events: KvCacheEvent[] = [];
  const bm = new BlockManager({ numBlocks: 2, blockSize: 2, onEvent: (e) => events.push(e) });
  const b: number[] = [];
  bm.allocate(1, b);
  bm.cacheBlocks(b, bm.hashTokens([1, 2]), [1, 2], 0, 1);
  events.length = 0;
  bm.reset(false);
  assert.deepEqual(events, []);
  assert.equal(bm.numCachedBlocks, 0);
});
