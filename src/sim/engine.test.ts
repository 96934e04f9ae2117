import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { SimEngine, type SimEngineOptions, type SimEngineResult } from './engine.js';
import { extendBlockHashes } from './block-hash.js';
import type { KvCacheEvent } from './block-manager.js';

const seq = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);
/** 1 ms per step + 0.01 ms per prefill token: easy arithmetic. */
const STEP = { t0: 1, a: 0.01, b: 0, c: 0, d: 0 };

function run(e: SimEngine, clock: ManualClock, id: string, prompt: number[], maxTokens = 4) {
  const out = { id, tokens: [] as number[], ttft: -1, start: clock.now(), cached: -1, result: undefined as SimEngineResult | undefined };
  e.submit({ id, promptTokens: prompt, maxTokens }, {
    onFirstToken: (i) => { out.ttft = clock.now() - out.start; out.cached = i.cachedTokens; },
    onToken: (t) => out.tokens.push(t),
    onFinish: (r) => (out.result = r),
  });
  return out;
}

function engine(extra: Partial<SimEngineOptions> = {}) {
  const clock = new ManualClock();
  const e = new SimEngine({ clock, stepModel: STEP, numGpuBlocks: 1000, ...extra });
  return { clock, e };
}

test('idle engine sets no timer; a request runs to max_tokens with cached-token accounting', () => {
  const { clock, e } = engine();
  assert.equal(clock.pending, 0);
  const r = run(e, clock, 'a', seq(100), 5);
  clock.runUntilIdle();
  assert.equal(clock.pending, 0);
  assert.deepEqual(r.result, { promptTokens: 100, completionTokens: 5, cachedTokens: 0, finishReason: 'length' });
  assert.equal(r.tokens.length, 5);
  const s = e.stats();
  assert.equal(s.prefixCacheQueries, 100);
  assert.equal(s.prefixCacheHits, 0);
  assert.equal(s.generationTokens, 5);
  assert.equal(s.requestSuccess, 1);
  assert.equal(s.kvUsage, 0);
  assert.equal(s.ttft.count, 1);
  assert.equal(s.itl.count, 4);
});

test('a cached prompt has much lower TTFT than a cold one (simulated time)', () => {
  const { clock, e } = engine({ stepModel: { t0: 1, a: 0.05, b: 0, c: 0.01, d: 0 } });
  const cold = run(e, clock, 'cold', seq(4000), 2);
  clock.runUntilIdle();
  const warm = run(e, clock, 'warm', seq(4000), 2);
  clock.runUntilIdle();
  assert.equal(warm.cached, 3984, 'all full blocks but the last');
  assert.ok(warm.ttft * 10 < cold.ttft, `warm ${warm.ttft} ms vs cold ${cold.ttft} ms`);
  assert.equal(e.stats().prefixCacheHits, 3984);
  assert.equal(e.stats().prefixCacheQueries, 8000);
});

test('chunked prefill splits a long prompt by max_num_batched_tokens; disabled, it runs whole', () => {
  const on = engine({ maxNumBatchedTokens: 1000 });
  const r1 = run(on.e, on.clock, 'a', seq(2500), 1);
  on.clock.runUntilIdle();
  assert.equal(on.e.stats().steps, 3);
  assert.equal(r1.ttft, 3 * 1 + 2500 * 0.01);
  const off = engine({ maxNumBatchedTokens: 1000, enableChunkedPrefill: false });
  const r2 = run(off.e, off.clock, 'a', seq(2500), 1);
  off.clock.runUntilIdle();
  assert.equal(off.e.stats().steps, 1);
  assert.equal(r2.ttft, 1 + 25);
});

test('batching limits: max_num_seqs caps running; the token budget is shared by decodes and prefills', () => {
  const { clock, e } = engine({ maxNumSeqs: 2, maxNumBatchedTokens: 64 });
  for (let i = 0; i < 4; i++) run(e, clock, `r${i}`, seq(40, i * 1000), 3);
  // the first submit started a step with r0 alone; the others wait for the next step
  assert.equal(e.stats().running, 1);
  assert.equal(e.stats().waiting, 3);
  clock.advance(clock.nextAt()! - clock.now());
  // step 2: r0 decodes (1 token) + r1 prefills; max_num_seqs keeps r2, r3 waiting
  assert.equal(e.stats().running, 2);
  assert.equal(e.stats().waiting, 2);
  clock.runUntilIdle();
  assert.equal(e.stats().requestSuccess, 4);
  assert.equal(e.stats().running, 0);
});

test('out of blocks: the most recently admitted request is preempted and recomputed; all finish', () => {
  // 10 blocks of 16 tokens; two 64-token prompts growing to 104 tokens each need 14 blocks
  const { clock, e } = engine({ numGpuBlocks: 10 });
  const a = run(e, clock, 'a', seq(64), 40);
  const b = run(e, clock, 'b', seq(64, 500), 40);
  clock.runUntilIdle();
  assert.ok(e.stats().preemptions >= 1);
  assert.equal(a.result?.completionTokens, 40);
  assert.equal(b.result?.completionTokens, 40);
  assert.ok(a.ttft < b.ttft || a.result!.completionTokens === 40);
  assert.equal(e.blockManager.numFreeBlocks, 10);
});

test('deterministic outputs: same prompt and seed give the same tokens; seed changes them', () => {
  const out = (seed: number) => {
    const { clock, e } = engine({ seed });
    const r = run(e, clock, 'x', seq(50), 8);
    clock.runUntilIdle();
    return r.tokens;
  };
  assert.deepEqual(out(1), out(1));
  assert.notDeepEqual(out(1), out(2));
});

test('abort frees blocks and stops callbacks; reset clears cache and counters and fails in-flight work', () => {
  const { clock, e } = engine();
  const r = run(e, clock, 'a', seq(100), 50);
  const h = e.submit({ id: 'b', promptTokens: seq(100, 7), maxTokens: 50 }, { onToken: () => h.abort() });
  clock.advance(clock.nextAt()!);
  clock.advance(clock.nextAt()!);
  assert.equal(e.stats().running, 1);
  let err = '';
  e.submit({ id: 'c', promptTokens: seq(30), maxTokens: 5 }, { onError: (x) => (err = x.code) });
  e.reset();
  assert.equal(err, 'KVR_ERR_SIM_DOWN');
  assert.equal(r.result, undefined);
  const s = e.stats();
  assert.equal(s.running + s.waiting + s.prefixCacheQueries + s.generationTokens, 0);
  assert.equal(e.blockManager.numCachedBlocks, 0);
  assert.equal(clock.pending, 0);
});

test('timeScale scales step time', () => {
  const { clock, e } = engine({ timeScale: 0.25 });
  const r = run(e, clock, 'a', seq(100), 1);
  clock.runUntilIdle();
  assert.equal(r.ttft, (1 + 100 * 0.01) * 0.25);
});

test('throughput: 2,000 requests with shared prefixes run fast in simulated time', () => {
  const { clock, e } = engine({ numGpuBlocks: 4000, stepModel: { t0: 5, a: 0.015, b: 0, c: 0.015, d: 0.00003 } });
  const sys = seq(1024, 10_000);
  let done = 0;
  for (let i = 0; i < 2000; i++) {
    e.submit({ id: `r${i}`, promptTokens: [...sys, ...seq(128, i * 200)], maxTokens: 16 }, { onFinish: () => done++ });
  }
  const t = performance.now();
  clock.runUntilIdle();
  assert.equal(done, 2000);
  assert.ok(e.stats().prefixCacheHits / e.stats().prefixCacheQueries > 0.8);
  assert.ok(performance.now() - t < 5000);
});

test('BlockStored covers prompt and output blocks: token ids in order, hashes of the whole sequence; the prompt array is not modified', () => {
  const events: KvCacheEvent[] = [];
  const { clock, e } = engine({ blockSize: 4, onKvEvent: (ev) => events.push(ev) });
  const prompt = seq(10, 500);
  const frozen = prompt.slice();
  const r = run(e, clock, 'a', prompt, 13);
  clock.runUntilIdle();
  assert.deepEqual(prompt, frozen, 'the engine keeps the caller\'s prompt by reference and never writes it');
  assert.equal(r.tokens.length, 13);
  const all = [...prompt, ...r.tokens];
  const stored = events.filter((ev): ev is Extract<KvCacheEvent, { type: 'BlockStored' }> => ev.type === 'BlockStored');
  const full = Math.floor((all.length - 1) / 4); // the last sampled token is never computed, so never cached
  assert.deepEqual(stored.flatMap((ev) => ev.tokenIds), all.slice(0, full * 4), 'blocks spanning prompt and outputs carry both');
  assert.deepEqual(stored.flatMap((ev) => ev.blockHashes), extendBlockHashes(all, 4, []).slice(0, full));
});
