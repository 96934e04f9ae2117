/**
 * The decode side of a KV transfer on a simulated replica's block manager, shared by the HTTP
 * connector (pd-connector.ts) and the virtual P/D bench:
 *
 *   reserve(tokens): local prefix hit -> hold it; allocate the blocks still missing (the full
 *                    blocks the engine will look up, i.e. up to (len - 1) / blockSize)
 *   commit():        the transfer arrived: cache the blocks under the prompt's hashes
 *                    (BlockStored events) and release them to the prefix cache, so the engine's
 *                    lookup finds them and recomputes only the last partial block
 *   cancel():        the transfer failed: release without caching
 */
import type { BlockManager } from '../block-manager.js';

/** Blocks held for one incoming transfer. */
export interface KvReservation {
  /** Prompt tokens to transfer (the prompt minus the local hit). */
  readonly tokensToPull: number;
  /** Blocks allocated for the transfer. */
  readonly blocks: number;
  commit(): void;
  cancel(): void;
}

/** Reserves blocks for the part of `tokens` not cached here; 'local_hit' or 'no_space' when there is nothing to do. */
export function reserveKv(bm: BlockManager, tokens: readonly number[]): KvReservation | 'local_hit' | 'no_space' {
  const hashes = bm.hashTokens(tokens);
  const hit = bm.findCachedPrefix(hashes, tokens.length);
  const target = Math.min(hashes.length, Math.floor((tokens.length - 1) / bm.blockSize));
  const n = target - hit.blocks.length;
  if (n <= 0) return 'local_hit';
  bm.touch(hit.blocks);
  const fresh: number[] = [];
  if (!bm.allocate(n, fresh)) {
    bm.free(hit.blocks);
    return 'no_space';
  }
  const all = [...hit.blocks, ...fresh];
  let done = false;
  return {
    tokensToPull: tokens.length - hit.tokens,
    blocks: n,
    commit() {
      if (done) return;
      done = true;
      bm.cacheBlocks(all, hashes, tokens, hit.blocks.length, target);
      bm.free(all);
    },
    cancel() {
      if (done) return;
      done = true;
      bm.free(all);
    },
  };
}
