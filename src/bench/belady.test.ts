import { test } from 'node:test';
import assert from 'node:assert/strict';
import { beladyHitRate, optRequest } from './belady.js';
import { PooledCacheOracle } from './oracle.js';

const prompt = (id: number, blocks: number): number[] => Array.from({ length: blocks * 4 }, (_, i) => id * 1000 + i);

test('OPT keeps what is used again soonest; LRU loses it in a cyclic pattern', () => {
  // Three 2-block prompts cycled through a 4-block cache: LRU always evicts the next one needed.
  const seq = [0, 1, 2, 0, 1, 2, 0, 1, 2].map((id) => prompt(id, 2).concat([9]));
  const lru = new PooledCacheOracle(4, 4);
  for (const t of seq) lru.feed(t);
  const opt = beladyHitRate(seq.map((t) => optRequest(t, true, 4)), 4, 4);
  assert.equal(lru.hitRate, 0, 'LRU misses every time in a cycle one larger than the cache');
  assert.ok(opt > 0.3, `OPT keeps one prompt resident: ${opt}`);
});

test('OPT is never below the pooled LRU and equals it when nothing is evicted', () => {
  const seq = Array.from({ length: 60 }, (_, i) => prompt((i * 7) % 11, 1 + (i % 5)).concat([1]));
  for (const cap of [3, 8, 20, 1000]) {
    const lru = new PooledCacheOracle(cap, 4);
    for (const t of seq) lru.feed(t);
    const opt = beladyHitRate(seq.map((t) => optRequest(t, true, 4)), cap, 4);
    assert.ok(opt >= lru.hitRate - 1e-12, `cap ${cap}: OPT ${opt} < LRU ${lru.hitRate}`);
    if (cap === 1000) assert.equal(opt, lru.hitRate);
  }
  assert.throws(() => beladyHitRate([], 0), /capacity/);
});
