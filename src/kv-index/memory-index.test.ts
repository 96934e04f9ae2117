import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvrError } from '../core/errors.js';
import { randInt, seededRng } from '../core/rng.js';
import type { EngineOp } from './kv-block-index.js';
import { MemoryBlockIndex } from './memory-index.js';

/**
 * A plain model of the index's semantics (no bounds): per endpoint, key -> tier -> copies, and
 * engine hash -> key. The typed-array index must give the same runs and counts after every step.
 */
class Model {
  held = new Map<string, Map<number, Map<string, number>>>();
  engine = new Map<string, Map<bigint, number>>();
  tiersOf(ep: string, key: number): Map<string, number> {
    let m = this.held.get(ep);
    if (m === undefined) this.held.set(ep, (m = new Map()));
    let t = m.get(key);
    if (t === undefined) m.set(key, (t = new Map()));
    return t;
  }
  drop(ep: string, key: number, tier: string): number {
    const t = this.tiersOf(ep, key);
    t.delete(tier);
    if (t.size === 0) this.held.get(ep)!.delete(key);
    return t.size;
  }
  clear(ep: string): void {
    this.held.delete(ep);
    this.engine.delete(ep);
  }
  entries(ep?: string): number {
    let n = 0;
    for (const [e, m] of this.held) if (ep === undefined || e === ep) for (const t of m.values()) n += t.size;
    return n;
  }
  lookup(keys: number[], eps: string[]): [number, number][] {
    const w: Record<string, number> = { gpu: 1, cpu: 0.8 };
    const runs = eps.map(() => 0);
    const weights = eps.map(() => 0);
    for (let i = 0; i < keys.length; i++) {
      let cont = 0;
      eps.forEach((ep, c) => {
        const t = this.held.get(ep)?.get(keys[i]);
        if (runs[c] === i && t !== undefined && t.size > 0) {
          runs[c]++;
          weights[c] += Math.max(...[...t.keys()].map((x) => w[x]));
          cont++;
        }
      });
      if (cont === 0) break;
    }
    return runs.map((r, c) => [r, Math.round(weights[c] * 100) / 100]);
  }
}

test('the memory index matches a plain model over random adds, removes, stores with copies, engine removes and clears', async () => {
  const rng = seededRng(11);
  const idx = new MemoryBlockIndex();
  const model = new Model();
  const eps = ['a', 'b', 'c', 'd'];
  const tiers = ['gpu', 'cpu'];
  const keyOf = (i: number) => (i * 0x9e3779b1 + 2 ** 40 * (i % 7)) % 2 ** 53;
  const hashOf = (ep: string, i: number) => (BigInt(ep.charCodeAt(0)) << 56n) | BigInt(i * 977);
  const seq: Record<string, number> = {};
  await idx.add('a', 'gpu', []);
  await idx.add('a', 'cpu', []);
  for (let step = 0; step < 3_000; step++) {
    const ep = eps[randInt(rng, eps.length)];
    const tier = tiers[randInt(rng, 2)];
    const from = randInt(rng, 40);
    const n = 1 + randInt(rng, 6);
    const ks = Array.from({ length: n }, (_, j) => from + j);
    const r = randInt(rng, 10);
    if (r < 2) {
      await idx.add(ep, tier, ks.map(keyOf));
      for (const k of ks) {
        const t = model.tiersOf(ep, keyOf(k));
        if (!t.has(tier)) t.set(tier, 1);
      }
    } else if (r < 3) {
      await idx.remove(ep, tier, ks.map(keyOf));
      for (const k of ks) model.drop(ep, keyOf(k), tier);
    } else if (r < 9) {
      const ops: EngineOp[] = [];
      const kind = randInt(rng, 12);
      if (kind === 0) {
        ops.push({ kind: 'clear' });
        model.clear(ep);
      } else if (kind < 7) {
        ops.push({ kind: 'store', tier, engineHashes: ks.map((k) => hashOf(ep, k)), keys: ks.map(keyOf) });
        let em = model.engine.get(ep);
        if (em === undefined) model.engine.set(ep, (em = new Map()));
        for (const k of ks) {
          const t = model.tiersOf(ep, keyOf(k));
          t.set(tier, (t.get(tier) ?? 0) + 1);
          em.set(hashOf(ep, k), keyOf(k));
        }
      } else {
        ops.push({ kind: 'remove', tier, engineHashes: ks.map((k) => hashOf(ep, k)) });
        const em = model.engine.get(ep);
        for (const k of ks) {
          const key = em?.get(hashOf(ep, k));
          if (key === undefined) continue;
          const t = model.tiersOf(ep, key);
          const c = t.get(tier) ?? 0;
          if (c > 1) t.set(tier, c - 1);
          else if (model.drop(ep, key, tier) === 0) em!.delete(hashOf(ep, k));
        }
      }
      seq[ep] = (seq[ep] ?? 0) + 1;
      assert.notEqual(await idx.applyEngineBatch({ endpointId: ep, seq: seq[ep], ts: 1, mode: 'force', ops }), 'stale');
    } else {
      await idx.clearEndpoint(ep);
      model.clear(ep);
    }
    const probe = Array.from({ length: 48 }, (_, j) => keyOf(j));
    const got = (await idx.lookup(probe, eps)).map((x) => [x.blocks, Math.round(x.weighted * 100) / 100]);
    assert.deepEqual(got, model.lookup(probe, eps), `step ${step}`);
    const st = idx.stats();
    assert.equal(st.entries, model.entries(), `entries at step ${step}`);
    for (const e of eps) assert.equal(st.endpoints[e] ?? 0, model.entries(e));
    const hs = Array.from({ length: 48 }, (_, j) => hashOf(ep, j));
    const resolved = await idx.resolveEngineHashes(ep, hs);
    assert.deepEqual(resolved, hs.map((h) => model.engine.get(ep)?.get(h)), `engine map at step ${step}`);
  }
});

test('keys that are not router keys and hashes that are not unsigned 64-bit are refused whole; lookups stop at them', async () => {
  const idx = new MemoryBlockIndex();
  await idx.add('a', 'gpu', [1, 2, 3]);
  for (const bad of [-1, 1.5, 2 ** 53, NaN]) {
    await assert.rejects(idx.add('a', 'gpu', [4, bad]), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_BAD_REQUEST' && /router key/.test(e.message));
  }
  await assert.rejects(
    idx.applyEngineBatch({ endpointId: 'a', seq: 1, ts: 1, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [5n, 2n ** 64n], keys: [5, 6] }] }),
    (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_BAD_REQUEST' && /64-bit/.test(e.message),
  );
  assert.equal(idx.stats().entries, 3, 'nothing of the refused writes applied');
  assert.deepEqual((await idx.lookup([1, 2, 3], ['a'])).map((r) => r.blocks), [3]);
  assert.deepEqual((await idx.lookup([1, 2.5, 3], ['a'])).map((r) => r.blocks), [1]);
  // Hashes across the whole 64-bit range stay apart (high and low words both count).
  const hs = [0n, 1n, 2n ** 32n, 2n ** 32n + 1n, 2n ** 63n, 2n ** 64n - 1n];
  await idx.applyEngineBatch({ endpointId: 'a', seq: 2, ts: 1, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: hs, keys: [10, 11, 12, 13, 14, 15] }] });
  assert.deepEqual(await idx.resolveEngineHashes('a', [...hs, 3n, 2n ** 64n]), [10, 11, 12, 13, 14, 15, undefined, undefined]);
});

test('the per-endpoint engine-hash cap drops the oldest hash and its block, counted as evicted', async () => {
  const idx = new MemoryBlockIndex({ maxEngineHashesPerEndpoint: 3 });
  await idx.applyEngineBatch({ endpointId: 'a', seq: 1, ts: 1, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [1n, 2n, 3n, 4n], keys: [11, 12, 13, 14] }] });
  // Stored leaf first: 4, 3, 2, 1; the oldest (hash 4, key 14) went.
  assert.deepEqual(await idx.resolveEngineHashes('a', [1n, 2n, 3n, 4n]), [11, 12, 13, undefined]);
  assert.equal(idx.stats().entries, 3);
  assert.equal(idx.stats().evicted, 1);
  assert.deepEqual((await idx.lookup([11, 12, 13, 14], ['a'])).map((r) => r.blocks), [3]);
});
