/**
 * Memory-index ingestion in rounds, for bench/kv-index-bench.ts: the same pre-built event batches
 * applied to a fresh index each round, implementations alternating round by round (so a baseline
 * build and this one meet the same machine state), best and median blocks/s per implementation.
 *
 * Stream: 64 endpoints; each batch of an endpoint is one BlockStored of `perBatch` blocks of 16
 * token ids chained on the endpoint's previous batch; one batch in 8 also removes the blocks of
 * the batch 7 before it. 512,000 blocks per round.
 *
 * Modes: `index only` applies EngineBatches whose keys were computed beforehand (the index's
 * write path alone); `indexer` feeds the decoded events to a KvIndexer (parent resolution,
 * token-id checks, block keys, then the same index); both start from a fresh index, so they
 * include the growth of its tables (doublings, rehashes, and the full collections that V8 runs
 * when that much new array memory appears). `indexer, warm` is `indexer` into an index whose
 * tables an earlier, unmeasured round already grew (emptied with `close()` before each round, the
 * capacity kept; sequence numbers continue): a running router's index, which grows once and then
 * ingests at its working size.
 */
import type { BlockStoredEvent, KvEventBatch } from '../src/events/types.js';
import { BlockKeyer } from '../src/kv-index/block-keys.js';
import type { EngineBatch, EngineOp, KvBlockIndex } from '../src/kv-index/kv-block-index.js';
import type { KvIndexer, KvIndexerOptions } from '../src/kv-index/kv-indexer.js';
import { tokens } from './index-bench-data.js';

/** One implementation under test (this build's classes, or a baseline build's). */
export interface IngestImpl {
  name: string;
  Index: new () => KvBlockIndex;
  Indexer: new (o: KvIndexerOptions) => Pick<KvIndexer, 'applyBatch' | 'indexerStats'>;
}

/** Result of one (implementation, mode). */
export interface IngestResult {
  name: string;
  mode: 'index only' | 'indexer' | 'indexer, warm';
  best: number;
  median: number;
  /** Best blocks per CPU second of the process (holds better than wall time on a busy machine). */
  bestCpu: number;
}

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const BS = 16;
const ENDPOINTS = 64;
const BLOCKS_PER_ROUND = 512_000;


/** Runs `rounds` rounds of each mode for each implementation. */
export async function ingestRounds(impls: IngestImpl[], o: { perBatch: number; rounds: number }): Promise<IngestResult[]> {
  const per = o.perBatch;
  const n = BLOCKS_PER_ROUND / ENDPOINTS / per;
  const keyer = new BlockKeyer();
  const events: [string, bigint, KvEventBatch][] = [];
  const engine: EngineBatch[] = [];
  const streams = Array.from({ length: ENDPOINTS }, (_, e) => {
    const out: [KvEventBatch, EngineOp[]][] = [];
    let parent: bigint | null = null;
    let parentKey = keyer.root(MODEL);
    const first = BigInt(e) << 40n;
    for (let i = 0; i < n; i++) {
      const hashes = Array.from({ length: per }, (_, d) => first + BigInt(i * per + d));
      const tok = tokens(per * BS, e * 1_000_003 + i);
      const keys = keyer.extendKeys(parentKey, tok, BS);
      const stored: BlockStoredEvent = { type: 'BlockStored', blockHashes: hashes, parentBlockHash: parent, tokenIds: tok, blockSize: BS, loraId: null, medium: 'GPU', loraName: null };
      const evs: KvEventBatch['events'] = [stored];
      const ops: EngineOp[] = [{ kind: 'store', tier: 'gpu', engineHashes: hashes, keys }];
      if (i % 8 === 7) {
        const gone = Array.from({ length: per }, (_, d) => first + BigInt((i - 7) * per + d));
        evs.push({ type: 'BlockRemoved', blockHashes: gone, medium: 'GPU' });
        ops.push({ kind: 'remove', tier: 'gpu', engineHashes: gone });
      }
      out.push([{ ts: 1_700_000_000 + i / 1000, events: evs, dataParallelRank: null }, ops]);
      parent = hashes[per - 1];
      parentKey = keys[per - 1];
    }
    return out;
  });
  for (let i = 0; i < n; i++) {
    for (let e = 0; e < ENDPOINTS; e++) {
      const [batch, ops] = streams[e][i];
      events.push([`pod-${e}`, BigInt(i), batch]);
      engine.push({ endpointId: `pod-${e}`, seq: i, ts: batch.ts, mode: 'next', ops });
    }
  }
  const samples = new Map<string, number[]>();
  const cpuRates = new Map<string, number>();
  // Per implementation: the index of the warm mode, grown by one unmeasured round.
  const warm = new Map<IngestImpl, KvBlockIndex>();
  const feed = async (impl: IngestImpl, index: KvBlockIndex, round: number): Promise<void> => {
    const indexer = new impl.Indexer({ index });
    const offset = BigInt(round * n);
    for (const [id, seq, b] of events) await indexer.applyBatch(id, MODEL, seq + offset, b);
    const st = indexer.indexerStats();
    if (st.storedBlocks !== BLOCKS_PER_ROUND) throw new Error(`${impl.name}: ${st.storedBlocks} blocks stored of ${BLOCKS_PER_ROUND} (unknown parents ${st.unknownParents})`);
  };
  for (const impl of impls) {
    const index = new impl.Index();
    await feed(impl, index, 0);
    warm.set(impl, index);
  }
  for (let r = 0; r < o.rounds; r++) {
    for (const impl of r % 2 === 0 ? impls : [...impls].reverse()) {
      for (const mode of ['index only', 'indexer', 'indexer, warm'] as const) {
        const index = mode === 'indexer, warm' ? (warm.get(impl) as KvBlockIndex) : new impl.Index();
        if (mode === 'indexer, warm') await index.close(); // empty, capacity kept
        let t0: number;
        let c0: NodeJS.CpuUsage;
        if (mode === 'index only') {
          t0 = performance.now();
          c0 = process.cpuUsage();
          for (const b of engine) await index.applyEngineBatch(b);
        } else {
          t0 = performance.now();
          c0 = process.cpuUsage();
          await feed(impl, index, mode === 'indexer' ? 0 : r + 1);
        }
        const rate = BLOCKS_PER_ROUND / ((performance.now() - t0) / 1000);
        const cpu = process.cpuUsage(c0);
        const k = `${impl.name}\u0000${mode}`;
        samples.set(k, [...(samples.get(k) ?? []), rate]);
        cpuRates.set(k, Math.max(cpuRates.get(k) ?? 0, BLOCKS_PER_ROUND / ((cpu.user + cpu.system) / 1e6)));
        if (mode !== 'indexer, warm') await index.close();
      }
    }
  }
  for (const index of warm.values()) await index.close();
  return [...samples].map(([k, xs]) => {
    const [name, mode] = k.split('\u0000') as [string, IngestResult['mode']];
    const s = [...xs].sort((a, b) => b - a);
    return { name, mode, best: s[0], median: s[Math.floor(s.length / 2)], bestCpu: cpuRates.get(k) ?? 0 };
  });
}
