/**
 * Synthetic BlockStored events for the KV-event flood benchmarks (bench/kv-events-stall-bench.ts,
 * bench/soak-flood-worker.ts): `n` blocks of 16 pseudo-random token ids, hashes unique per seed.
 */
import type { BlockStoredEvent } from '../src/events/types.js';

export function floodStoredEvent(n: number, seed: number, parent: bigint | null = null): BlockStoredEvent {
  const tokens = new Array<number>(n * 16);
  let x = seed * 7919 + 1;
  for (let i = 0; i < tokens.length; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    tokens[i] = x % 30_000;
  }
  const base = BigInt(seed) * 10_000_000n;
  return { type: 'BlockStored', blockHashes: Array.from({ length: n }, (_, i) => base + BigInt(i)), parentBlockHash: parent, tokenIds: tokens, blockSize: 16, loraId: null, medium: 'GPU', loraName: null };
}
