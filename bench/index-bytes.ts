/**
 * Bytes per indexed block of the router's memory block index (issue 15, "Virtual bench at fleet
 * scale"): `--blocks` blocks stored through the KvIndexer as vLLM BlockStored events (128-block
 * chains, `--endpoints` endpoints in turn), then the live heap (JS heap + array buffers, after
 * full GCs) divided by the entries held. The engine-hash map (engine hash -> router key) is
 * included: the index needs it for BlockRemoved.
 *
 *   npm run build && node --expose-gc dist/bench/index-bytes.js [--blocks 800000] [--endpoints 16] [--json]
 */
import { parseArgs } from 'node:util';
import { KvIndexer } from '../src/kv-index/kv-indexer.js';
import { MemoryBlockIndex } from '../src/kv-index/memory-index.js';

const { values: v } = parseArgs({ options: { blocks: { type: 'string', default: '800000' }, endpoints: { type: 'string', default: '16' }, json: { type: 'boolean', default: false } } });
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc (the heap is measured after full collections)');
const N = Number(v.blocks);
const E = Number(v.endpoints);
if (!(N >= 128) || !(E >= 1)) throw new Error('--blocks must be >= 128 and --endpoints >= 1');
const index = new MemoryBlockIndex({ maxEntries: 1e9, maxBytes: 1e13 });
const indexer = new KvIndexer({ index });
const live = (): number => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const before = live();
const seq = new Array<bigint>(E).fill(0n);
for (let b = 0, chain = 0; b < N; b += 128, chain++) {
  const ep = chain % E;
  const tokenIds = Array.from({ length: 128 * 16 }, (_, i) => Math.imul(b * 16 + i + 1, 0x9e3779b1) >>> 0);
  const blockHashes = Array.from({ length: 128 }, (_, i) => (BigInt(b + i + 1) * 2654435761n) % (1n << 63n));
  await indexer.applyBatch(`ep-${ep}`, 'm', seq[ep]++, {
    ts: 0,
    dataParallelRank: null,
    events: [{ type: 'BlockStored', blockHashes, parentBlockHash: null, tokenIds, blockSize: 16, loraId: null, medium: 'GPU', loraName: null }],
  });
}
const bytes = live() - before;
const st = index.stats();
const out = { blocks: st.entries, endpoints: E, liveMiB: Math.round(bytes / 2 ** 20), bytesPerBlock: Math.round(bytes / st.entries), estimatedBytesPerBlock: Math.round(st.bytes / st.entries) };
process.stdout.write(v.json ? `${JSON.stringify(out)}\n` : `${out.blocks} blocks on ${E} endpoints: ${out.liveMiB} MiB live, ${out.bytesPerBlock} bytes per block (the index's own estimate: ${out.estimatedBytesPerBlock})\n`);
