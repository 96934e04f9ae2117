import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/clock.js';
import type { InferenceRequest } from '../../core/request.js';
import { prefixPredictionOf, predictedCachedTokens } from '../../prefix/prefix-prediction.js';
import type { BlockKey, KvCacheServices, PrefixRun } from '../kv-cache-services.js';
import { fakeEndpoints, fakeRequest, fakeText } from '../testing/fakes.js';
import { PrecisePrefixScorer } from './precise-prefix-scorer.js';

/**
 * A tiny, transparent stand-in for tokenizer + block index, so these tests pin the scorer's own
 * logic (runs, tiers, speculation, fallback); the real index and tokenizer have their own tests
 * and the router's integration tests run them together.
 * One token per character; block key i = the text of blocks 0..i (a chained key by construction).
 */
class TableServices implements KvCacheServices {
  readonly blockSize = 4;
  readonly held = new Map<string, Map<BlockKey, number>>();
  failTokenize = false;
  failLookup = false;
  lookups = 0;

  async tokenize(req: InferenceRequest): Promise<readonly number[]> {
    if (this.failTokenize) throw new Error('tokenizer exploded');
    return [...req.promptText].map((c) => c.charCodeAt(0));
  }

  requestKeys(_model: string, tokens: readonly number[]): ArrayLike<BlockKey> {
    const keys: string[] = [];
    for (let i = this.blockSize; i <= tokens.length; i += this.blockSize) keys.push(String.fromCharCode(...tokens.slice(0, i)));
    return keys;
  }

  async lookup(keys: ArrayLike<BlockKey>, ids: readonly string[]): Promise<PrefixRun[]> {
    this.lookups++;
    if (this.failLookup) throw new Error('redis down');
    return ids.map((id) => {
      const m = this.held.get(id);
      let blocks = 0;
      let weighted = 0;
      while (m !== undefined && blocks < keys.length && m.has(keys[blocks])) weighted += m.get(keys[blocks++])!;
      return { blocks, weighted };
    });
  }

  store(id: string, text: string, weight = 1): void {
    const m = this.held.get(id) ?? new Map<BlockKey, number>();
    this.held.set(id, m);
    const keys = this.requestKeys('', [...text].map((c) => c.charCodeAt(0)));
    for (let i = 0; i < keys.length; i++) m.set(keys[i], weight);
  }
}

const TEXT = fakeText(40, 1); // 10 blocks of 4

test('precise scorer: longest held run / total blocks, CPU blocks weigh 0.8', async () => {
  const svc = new TableServices();
  const clock = new ManualClock(0);
  const s = new PrecisePrefixScorer('p', { burstWaitMs: 0 }, { clock, kvCache: svc });
  const eps = fakeEndpoints(3);
  svc.store('ep-0', TEXT.slice(0, 24)); // 6 blocks on GPU
  svc.store('ep-2', TEXT.slice(0, 40), 0.8); // all 10 on CPU
  const req = fakeRequest(TEXT);
  const out = new Float64Array(3);
  await s.score({ request: req, now: 0 }, eps, out);
  assert.deepEqual([...out].map((v) => +v.toFixed(3)), [0.6, 0, 0.8]);
  const p = prefixPredictionOf(req)!;
  assert.equal(p.source, 'precise');
  assert.equal(predictedCachedTokens(req, eps[0], 40), 24);
  assert.equal(predictedCachedTokens(req, eps[2], 40), 40);
  assert.equal(s.stats().precise, 1);
});

test('precise scorer: a run stops at the first block the endpoint lacks', async () => {
  const svc = new TableServices();
  const s = new PrecisePrefixScorer('p', { burstWaitMs: 0 }, { clock: new ManualClock(0), kvCache: svc });
  const eps = fakeEndpoints(1);
  svc.store('ep-0', TEXT.slice(0, 8));
  // a different block 2 breaks the chain even though later text is the same
  const other = TEXT.slice(0, 8) + 'XXXX' + TEXT.slice(12);
  const out = new Float64Array(1);
  await s.score({ request: fakeRequest(other), now: 0 }, eps, out);
  assert.equal(out[0], 0.2);
});

test('precise scorer: picks add speculative entries until the first token plus a grace period', async () => {
  const svc = new TableServices();
  const clock = new ManualClock(0);
  const s = new PrecisePrefixScorer('p', { speculativeTtlMs: 10_000, confirmGraceMs: 500, burstWaitMs: 0 }, { clock, kvCache: svc });
  const eps = fakeEndpoints(2);
  const first = fakeRequest(TEXT);
  const out = new Float64Array(2);
  await s.score({ request: first, now: 0 }, eps, out);
  assert.deepEqual([...out], [0, 0]);
  s.onPicked({ request: first, now: 0 }, eps[1]);
  // A sibling arrives before any event confirmed the blocks: it is drawn to ep-1.
  const sibling = fakeRequest(TEXT.slice(0, 32) + 'ZZZZZZZZ');
  await s.score({ request: sibling, now: 0 }, eps, out);
  assert.deepEqual([...out], [0, 0.8]);
  assert.equal(s.stats().speculativeHits, 1);
  // After the first token the entries live only the grace period.
  clock.advance(5_000);
  s.onFirstToken({ request: first, now: clock.now() }, eps[1]);
  await s.score({ request: fakeRequest(TEXT), now: clock.now() }, eps, out);
  assert.equal(out[1], 1);
  clock.advance(501);
  await s.score({ request: fakeRequest(TEXT), now: clock.now() }, eps, out);
  assert.equal(out[1], 0);
  // Without a first token, entries expire after the TTL.
  const third = fakeRequest(TEXT);
  await s.score({ request: third, now: clock.now() }, eps, out);
  s.onPicked({ request: third, now: clock.now() }, eps[0]);
  clock.advance(9_999);
  await s.score({ request: fakeRequest(TEXT), now: clock.now() }, eps, out);
  assert.equal(out[0], 1);
  clock.advance(2);
  await s.score({ request: fakeRequest(TEXT), now: clock.now() }, eps, out);
  assert.equal(out[0], 0);
});

test('precise scorer: speculation continues the index run where it stops', async () => {
  const svc = new TableServices();
  const clock = new ManualClock(0);
  const s = new PrecisePrefixScorer('p', { burstWaitMs: 0 }, { clock, kvCache: svc });
  const eps = fakeEndpoints(1);
  svc.store('ep-0', TEXT.slice(0, 12), 0.8); // 3 CPU blocks confirmed
  const first = fakeRequest(TEXT);
  s.onPicked({ request: first, now: 0 }, eps[0]); // scoring skipped (one candidate): keys computed async
  await new Promise((r) => setImmediate(r));
  const out = new Float64Array(1);
  await s.score({ request: fakeRequest(TEXT), now: 0 }, eps, out);
  // 3 x 0.8 from the index + 7 speculative x 1.0, over 10 blocks
  assert.equal(+out[0].toFixed(3), 0.94);
});

test('precise scorer: falls back to approximate routing when the index or tokenizer fails, and counts it', async () => {
  const svc = new TableServices();
  const clock = new ManualClock(0);
  const s = new PrecisePrefixScorer('p', { burstWaitMs: 0 }, { clock, kvCache: svc });
  const eps = fakeEndpoints(2);
  const long = fakeText(64 * 8, 5);
  const a = fakeRequest(long);
  const out = new Float64Array(2);
  await s.score({ request: a, now: 0 }, eps, out);
  s.onPicked({ request: a, now: 0 }, eps[1]);
  svc.failLookup = true;
  await s.score({ request: fakeRequest(long), now: 0 }, eps, out);
  assert.deepEqual([...out], [0, 1], 'approximate index remembers the pick');
  assert.equal(prefixPredictionOf(fakeRequest(long)), undefined);
  svc.failLookup = false;
  svc.failTokenize = true;
  await s.score({ request: fakeRequest(long), now: 0 }, eps, out);
  assert.deepEqual([...out], [0, 1]);
  const st = s.stats();
  assert.equal(st.fallbacks['lookup-failed'], 1);
  assert.equal(st.fallbacks['tokenize-failed'], 1);
  assert.equal(st.lastError, 'tokenizer exploded');
  // Recovers when the index is back.
  svc.failTokenize = false;
  svc.store('ep-0', long);
  await s.score({ request: fakeRequest(long), now: 0 }, eps, out);
  assert.equal(out[0], 1);
});

test('precise scorer without services routes approximately (no-index)', async () => {
  const s = new PrecisePrefixScorer('p', {}, { clock: new ManualClock(0) });
  assert.equal(s.precise, false);
  const eps = fakeEndpoints(2);
  const long = fakeText(64 * 4, 9);
  const a = fakeRequest(long);
  const out = new Float64Array(2);
  await s.score({ request: a, now: 0 }, eps, out);
  s.onPicked({ request: a, now: 0 }, eps[0]);
  await s.score({ request: fakeRequest(long), now: 0 }, eps, out);
  assert.deepEqual([...out], [1, 0]);
  assert.equal(s.stats().fallbacks['no-index'], 2);
});

test('precise scorer: removeEndpoint drops its speculative entries', async () => {
  const svc = new TableServices();
  const s = new PrecisePrefixScorer('p', { burstWaitMs: 0 }, { clock: new ManualClock(0), kvCache: svc });
  const eps = fakeEndpoints(2);
  const a = fakeRequest(TEXT);
  const out = new Float64Array(2);
  await s.score({ request: a, now: 0 }, eps, out);
  s.onPicked({ request: a, now: 0 }, eps[0]);
  assert.equal(s.stats().speculativeEntries, 10);
  s.removeEndpoint(eps[0]);
  assert.equal(s.stats().speculativeEntries, 0);
  await s.score({ request: fakeRequest(TEXT), now: 0 }, eps, out);
  assert.deepEqual([...out], [0, 0]);
});

test('precise scorer: a burst of siblings with a slow index sees where the earlier ones were picked', async () => {
  const svc = new TableServices();
  const pending: (() => Promise<void>)[] = [];
  const slow: KvCacheServices = {
    blockSize: svc.blockSize,
    tokenize: (r) => svc.tokenize(r),
    requestKeys: (m, t) => svc.requestKeys(m, t),
    // Answers arrive together, like pipelined Redis replies read in one socket event.
    lookup: (k, ids) =>
      new Promise((res) => {
        pending.push(async () => res(await svc.lookup(k, ids)));
        if (pending.length === 1) setTimeout(() => pending.splice(0).forEach((f) => void f()), 5);
      }),
  };
  const s = new PrecisePrefixScorer('p', { burstWaitMs: 1000 }, { clock: new ManualClock(0), kvCache: slow });
  const eps = fakeEndpoints(3);
  const picked: number[] = [];
  // What the scheduler does: score, then pick the best (first on ties), then onPicked.
  const one = async (text: string): Promise<void> => {
    const req = fakeRequest(text);
    const out = new Float64Array(3);
    await s.score({ request: req, now: 0 }, eps, out);
    let best = 0;
    for (let i = 1; i < 3; i++) if (out[i] > out[best]) best = i;
    picked.push(best === 0 && out[0] === 0 ? picked.length % 3 : best);
    s.onPicked({ request: req, now: 0 }, eps[picked.at(-1)!]);
  };
  await Promise.all([one(TEXT + 'a'), one(TEXT + 'b'), one(TEXT + 'c'), one(TEXT + 'd')]);
  // The first is cold (spread by the stand-in picker); every later sibling follows it.
  assert.deepEqual(picked, [0, 0, 0, 0]);
  assert.equal(s.stats().speculativeHits, 3);
});
