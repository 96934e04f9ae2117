/**
 * Cuts a decoded event batch into slices of at most `sliceBlocks` blocks, so ingestion can hand a
 * huge batch to the index piece by piece and yield to I/O in between, and drops events over the
 * blocks-per-event cap.
 *
 * ```
 *   BlockStored h[0..n) parent p, tokens t   ->  h[a..b) parent (a = 0 ? p : h[a-1]), tokens t[a*bs .. b*bs)
 *   BlockRemoved h[0..n)                     ->  h[a..b)
 *   AllBlocksCleared                         ->  as is (counts as one block)
 * ```
 *
 * Splitting a BlockStored at a block boundary is exact: the second half's parent is the last
 * block of the first half, which is what the engine would have sent for two steps.
 */
import type { KvEvent, KvEventBatch } from './types.js';

/** Result of {@link sliceBatch}. */
export interface SlicedBatch {
  slices: KvEventBatch[];
  /** Events dropped for holding more than the blocks-per-event cap. */
  oversizedEvents: number;
  /** Blocks across the kept events. */
  blocks: number;
}

function blocksOf(ev: KvEvent): number {
  if (ev === null || typeof ev !== 'object') return 1;
  if (ev.type === 'BlockStored' || ev.type === 'BlockRemoved') return Array.isArray(ev.blockHashes) ? ev.blockHashes.length : 1;
  return 1;
}

/** Slices `batch` (see the module comment); malformed events pass through untouched (the sink counts them). */
export function sliceBatch(batch: KvEventBatch, sliceBlocks: number, maxBlocksPerEvent: number): SlicedBatch {
  const slices: KvEventBatch[] = [];
  let cur: KvEvent[] = [];
  let room = sliceBlocks;
  let oversizedEvents = 0;
  let blocks = 0;
  const flush = (): void => {
    if (cur.length > 0) slices.push({ ts: batch.ts, events: cur, dataParallelRank: batch.dataParallelRank });
    cur = [];
    room = sliceBlocks;
  };
  for (const ev of batch.events) {
    const n = blocksOf(ev);
    if (n > maxBlocksPerEvent) {
      oversizedEvents++;
      continue;
    }
    blocks += n;
    if (n <= room) {
      cur.push(ev);
      room -= n;
      continue;
    }
    if (ev.type !== 'BlockStored' && ev.type !== 'BlockRemoved') {
      flush();
      cur.push(ev);
      room -= n;
      continue;
    }
    const stored = ev.type === 'BlockStored' ? ev : undefined;
    const bs = stored?.blockSize ?? 0;
    if (stored && (!Array.isArray(stored.tokenIds) || stored.tokenIds.length !== n * bs)) {
      // Malformed: keep it whole, the sink rejects and counts it.
      flush();
      cur.push(ev);
      continue;
    }
    for (let a = 0; a < n; ) {
      if (room === 0) flush();
      const b = Math.min(n, a + room);
      const hashes = ev.blockHashes.slice(a, b);
      if (stored) {
        cur.push({
          ...stored,
          blockHashes: hashes,
          parentBlockHash: a === 0 ? stored.parentBlockHash : stored.blockHashes[a - 1],
          tokenIds: stored.tokenIds.slice(a * bs, b * bs),
        });
      } else cur.push({ type: 'BlockRemoved', blockHashes: hashes, medium: ev.medium });
      room -= b - a;
      a = b;
    }
  }
  flush();
  if (slices.length === 0) slices.push({ ts: batch.ts, events: [], dataParallelRank: batch.dataParallelRank });
  return { slices, oversizedEvents, blocks };
}
