import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng, type Rng } from '../core/rng.js';
import { ReferenceBlockManager } from '../../test/helpers/reference-block-manager.js';
import { extendBlockHashes, extendBlockLanes, laneHash, newBlockLanes, ROOT_BLOCK_HASH } from './block-hash.js';
import { BlockManager, type KvCacheEvent } from './block-manager.js';

/** FNV-1a 64 in plain BigInt arithmetic, byte by byte: the definition the lane code must match. */
function fnvReference(parent: bigint, tokens: readonly number[], start: number, bs: number): bigint {
  const M = (1n << 64n) - 1n;
  let h = 0xcbf29ce484222325n;
  const mix = (v: number) => {
    for (let s = 0; s < 32; s += 8) h = ((h ^ BigInt((v >>> s) & 0xff)) * 0x100000001b3n) & M;
  };
  mix(Number(parent >> 32n) >>> 0);
  mix(Number(parent & 0xffffffffn) >>> 0);
  for (let i = start; i < start + bs; i++) mix(tokens[i] >>> 0);
  return h;
}

test('block hashes (BigInt and lane forms) equal FNV-1a 64 computed with BigInt arithmetic', () => {
  const rng = seededRng(5);
  for (const bs of [1, 4, 16]) {
    const toks = Array.from({ length: 40 * bs + Math.floor(bs / 2) }, (_, i) => (i % 7 === 0 ? 0xffffffff - i : Math.floor(rng.next() * 2 ** 32)));
    const big = extendBlockHashes(toks, bs, []);
    const lanes = extendBlockLanes(toks.slice(0, 9 * bs + 1), bs, newBlockLanes(1)); // grown later, resumed from block 9
    extendBlockLanes(toks, bs, lanes);
    // Prompt + outputs held as two arrays (the engine's form) hash as one sequence.
    const split = extendBlockLanes(toks.slice(0, 7 * bs + 1), bs, newBlockLanes(2), toks.slice(7 * bs + 1));
    assert.deepEqual(Array.from({ length: split.count }, (_, i) => laneHash(split, i)), big);
    assert.equal(big.length, 40);
    assert.equal(lanes.count, 40);
    let parent = ROOT_BLOCK_HASH;
    for (let i = 0; i < 40; i++) {
      const want = fnvReference(parent, toks, i * bs, bs);
      assert.equal(big[i], want, `block ${i} (block size ${bs})`);
      assert.equal(laneHash(lanes, i), want);
      parent = want;
    }
  }
});

interface Pair {
  fast: BlockManager;
  ref: ReferenceBlockManager;
  fastEvents: KvCacheEvent[];
  refEvents: KvCacheEvent[];
}

function pair(numBlocks: number, bs: number): Pair {
  const fastEvents: KvCacheEvent[] = [];
  const refEvents: KvCacheEvent[] = [];
  return {
    fast: new BlockManager({ numBlocks, blockSize: bs, onEvent: (e) => fastEvents.push(e) }),
    ref: new ReferenceBlockManager({ numBlocks, blockSize: bs, onEvent: (e) => refEvents.push(e) }),
    fastEvents,
    refEvents,
  };
}

function sameState(p: Pair, step: number, probe: bigint[]): void {
  assert.equal(p.fast.numFreeBlocks, p.ref.numFreeBlocks, `free blocks at step ${step}`);
  assert.equal(p.fast.numCachedBlocks, p.ref.numCachedBlocks, `cached blocks at step ${step}`);
  assert.equal(p.fast.usage, p.ref.usage);
  for (let b = 0; b < p.ref.numBlocks; b++) assert.equal(p.fast.refCount(b), p.ref.refCount(b), `ref count of block ${b} at step ${step}`);
  for (const h of probe) assert.equal(p.fast.lookup(h), p.ref.lookup(h), `lookup at step ${step}`);
  assert.deepEqual(p.fastEvents, p.refEvents, `events up to step ${step}`);
}

/** A prompt from a few shared prefixes (so hits, duplicates and evictions all happen). */
function prompt(rng: Rng, bs: number): number[] {
  const family = Math.floor(rng.next() * 4);
  const shared = Math.floor(rng.next() * 6) * bs + Math.floor(rng.next() * 3);
  const own = 1 + Math.floor(rng.next() * 4 * bs);
  const t: number[] = [];
  for (let i = 0; i < shared; i++) t.push(family * 1000 + i);
  for (let i = 0; i < own; i++) t.push(Math.floor(rng.next() * 50));
  return t;
}

test('the rewritten block manager matches the reference (pre-rewrite) one, operation by operation', () => {
  for (const seed of [1, 2, 3, 4]) {
    const rng = seededRng(seed);
    const bs = seed % 2 === 0 ? 4 : 2;
    const p = pair(24 + seed * 5, bs);
    const held: number[][] = [];
    const seen: bigint[] = [];
    for (let step = 0; step < 1500; step++) {
      const op = rng.next();
      if (op < 0.55) {
        // Admit a request as the engine does: look up, check, touch the hit, allocate, cache.
        const toks = prompt(rng, bs);
        const hashes = p.ref.hashTokens(toks);
        for (const h of hashes) if (seen.length < 400) seen.push(h);
        const hf = p.fast.findCachedPrefix(hashes, toks.length);
        const hr = p.ref.findCachedPrefix(hashes, toks.length);
        assert.deepEqual(hf, hr, `hit at step ${step}`);
        const fresh = Math.ceil(toks.length / bs) - hr.blocks.length;
        const ok = p.ref.canAllocate(hr.blocks, fresh);
        assert.equal(p.fast.canAllocate(hf.blocks, fresh), ok);
        if (!ok) continue;
        p.fast.touch(hf.blocks);
        p.ref.touch(hr.blocks);
        assert.equal(p.fast.allocate(fresh, hf.blocks), p.ref.allocate(fresh, hr.blocks));
        assert.deepEqual(hf.blocks, hr.blocks, `allocated blocks at step ${step}`);
        const full = Math.floor(toks.length / bs);
        const from = Math.floor(rng.next() * (hr.tokens / bs + 1));
        // Sometimes through the lanes API, as the engine calls it.
        if (rng.next() < 0.5) p.fast.cacheBlocksLanes(hf.blocks, p.fast.hashLanes(toks), toks, from, full);
        else p.fast.cacheBlocks(hf.blocks, hashes, toks, from, full);
        p.ref.cacheBlocks(hr.blocks, hashes, toks, from, full);
        held.push(hr.blocks);
      } else if (op < 0.93 && held.length > 0) {
        const [blocks] = held.splice(Math.floor(rng.next() * held.length), 1);
        p.fast.free(blocks);
        p.ref.free(blocks);
      } else if (op < 0.97) {
        assert.equal(p.fast.resetPrefixCache(), p.ref.resetPrefixCache());
      } else if (op < 0.985) {
        const ev = rng.next() < 0.5;
        p.fast.reset(ev);
        p.ref.reset(ev);
        held.length = 0;
      } else {
        const n = Math.floor(rng.next() * 4);
        const a: number[] = [];
        const b: number[] = [];
        assert.equal(p.fast.allocate(n, a), p.ref.allocate(n, b));
        assert.deepEqual(a, b);
        if (a.length > 0) held.push(b);
      }
      if (step % 25 === 0) sameState(p, step, seen);
    }
    sameState(p, -1, seen);
    assert.ok(p.refEvents.filter((e) => e.type === 'BlockRemoved').length > 10, `seed ${seed}: evictions happened`);
    assert.ok(p.refEvents.filter((e) => e.type === 'BlockStored').length > 50, `seed ${seed}: blocks were stored`);
  }
});
