/**
 * The references a virtual or live bench reports beside each strategy, computed offline from the
 * workload alone: the pooled-LRU reference (oracle.ts) and the OPT bound (belady.ts) on one
 * pooled cache of the fleet's capacity. Both read the same hashing of each prompt.
 */
import { OptBound } from './belady.js';
import { blockKeys, PooledCacheOracle } from './oracle.js';
import { builtinTokenizer, promptTokens } from './prompt.js';
import type { Workload } from './types.js';

/** The pooled-LRU reference and the OPT bound (Belady on the pooled cache) of a workload. */
export function referenceHitRates(workload: Pick<Workload, 'requests'>, capacityBlocks: number, blockSize: number): { lru: number; opt: number } {
  const oracle = new PooledCacheOracle(capacityBlocks, blockSize);
  const tok = builtinTokenizer();
  const opt = new OptBound(blockSize);
  for (const r of workload.requests) {
    const tokens = promptTokens(r.prompt(), tok);
    const keys = blockKeys(tokens, blockSize);
    oracle.feedKeys(keys, tokens.length, r.phase !== 'warmup');
    opt.add(keys, tokens.length, r.phase !== 'warmup');
  }
  return { lru: oracle.hitRate, opt: opt.hitRate(capacityBlocks) };
}
