/**
 * Data the block-index benchmarks share (bench/kv-index-bench.ts, bench/redis-index-bench.ts,
 * bench/kv-ingest-rounds.ts): deterministic token streams and the lookup scenario, so the memory
 * and Redis figures measure the same work.
 */
import { BlockKeyer } from '../src/kv-index/block-keys.js';
import type { KvBlockIndex } from '../src/kv-index/kv-block-index.js';

/** `n` deterministic pseudo-random Llama 3 token ids (xorshift32 from `seed`). */
export function tokens(n: number, seed: number): number[] {
  let x = (seed * 2654435761) >>> 0 || 1;
  return Array.from({ length: n }, () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % 128_256;
  });
}

/**
 * Fills `index` for the lookup benchmark: an 8,000-token prompt held whole by 4 endpoints
 * ('typical') or by 8 plus partial prefixes on the rest ('shared'), every endpoint also holding
 * 2,000 unrelated tokens. Returns the prompt's keys and the endpoint ids to look up.
 */
export async function fillLookupScenario(index: KvBlockIndex, model: string, blockSize: number, endpoints: number, mode: 'shared' | 'typical'): Promise<{ keys: Float64Array; ids: string[] }> {
  const keyer = new BlockKeyer();
  const keys = keyer.requestKeys(model, tokens(8_000, 42), blockSize);
  const ids = Array.from({ length: endpoints }, (_, e) => `pod-${e}`);
  for (let e = 0; e < endpoints; e++) {
    const full = mode === 'shared' ? 8 : 4;
    const held = e < full ? keys : mode === 'shared' ? keys.slice(0, 10 + ((e * 37) % 480)) : [];
    await index.add(ids[e], e % 3 === 0 ? 'cpu' : 'gpu', held);
    await index.add(ids[e], 'gpu', keyer.requestKeys(model, tokens(2_000, 1000 + e), blockSize));
  }
  return { keys, ids };
}

/** Lookup latencies in µs over `ms` of back-to-back lookups, after 20 warm-up calls. */
export async function timeLookups(index: KvBlockIndex, keys: Float64Array, ids: string[], ms: number): Promise<number[]> {
  for (let i = 0; i < 20; i++) await index.lookup(keys, ids);
  const samples: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t0 = performance.now();
    await index.lookup(keys, ids);
    samples.push((performance.now() - t0) * 1000);
  }
  return samples;
}
