import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { SimEngine } from './engine.js';
import type { KvCacheEvent } from './block-manager.js';

test('two identical prompts admitted in one step share blocks, as vLLM v1 caches blocks at allocation', () => {
  const clock = new ManualClock(0);
  const events: KvCacheEvent[] = [];
  const e = new SimEngine({ clock, numGpuBlocks: 1000, onKvEvent: (ev) => events.push(ev) });
  const prompt = Array.from({ length: 100 }, (_, i) => 500 + i); // 6 full blocks + 4 tokens
  const cached: number[] = [];
  for (const id of ['a', 'b']) e.submit({ id, promptTokens: prompt, maxTokens: 2 }, { onFirstToken: (i) => cached.push(i.cachedTokens) });
  clock.advance(1000);
  assert.deepEqual(cached, [0, 96], 'the second request hits the 6 full blocks the first allocated in the same step');
  const stored = events.filter((ev) => ev.type === 'BlockStored');
  assert.equal(stored.length, 1, 'the shared blocks are stored once');
  assert.equal(e.stats().prefixCacheQueries, 200);
  assert.equal(e.stats().prefixCacheHits, 96);
});
