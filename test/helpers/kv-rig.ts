/**
 * A real KV-event pipeline for fault tests: a simulator publisher (real ZeroMQ PUB + replay
 * ROUTER), an EventIngestor and a KvIndexer over a memory or Redis index, plus helpers that
 * build block chains and read back what the index holds for them.
 */
import { EventIngestor, type EventIngestorOptions } from '../../src/events/event-ingestor.js';
import type { BlockStoredEvent, KvEvent, KvEventBatch, KvEventSink } from '../../src/events/types.js';
import { KvIndexer } from '../../src/kv-index/kv-indexer.js';
import type { KvBlockIndex } from '../../src/kv-index/kv-block-index.js';
import { MemoryBlockIndex } from '../../src/kv-index/memory-index.js';
import { KvEventPublisher } from '../../src/sim/kv-event-publisher.js';

export const MODEL = 'rig-model';
export const BS = 16;
export const ADDRESS = '127.0.0.1:8000';
export const TOPIC = `kv@${ADDRESS}@${MODEL}`;

/** A chain of `n` blocks: tokens and engine hashes (hash base + i). */
export interface Chain {
  tokens: number[];
  hashes: bigint[];
}

export function chain(n: number, seed: number, hashBase = BigInt(seed) * 1_000_000n): Chain {
  const tokens: number[] = [];
  let x = seed * 7919 + 1;
  for (let i = 0; i < n * BS; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    tokens.push(x % 30_000);
  }
  return { tokens, hashes: Array.from({ length: n }, (_, i) => hashBase + BigInt(i)) };
}

/** BlockStored for blocks [from, to) of `c`. */
export function stored(c: Chain, from = 0, to = c.hashes.length): BlockStoredEvent {
  return {
    type: 'BlockStored',
    blockHashes: c.hashes.slice(from, to),
    parentBlockHash: from === 0 ? null : c.hashes[from - 1],
    tokenIds: c.tokens.slice(from * BS, to * BS),
    blockSize: BS,
    loraId: null,
    medium: 'GPU',
    loraName: null,
  };
}

export const removed = (c: Chain, idx: number[]): KvEvent => ({ type: 'BlockRemoved', blockHashes: idx.map((i) => c.hashes[i]), medium: 'GPU' });
export const batch = (events: KvEvent[], ts = 1_700_000_000): KvEventBatch => ({ ts, events, dataParallelRank: null });

export interface Rig {
  pub: KvEventPublisher;
  ing: EventIngestor;
  indexer: KvIndexer;
  index: KvBlockIndex;
  /** Leading blocks of `c` the endpoint holds according to the index. */
  held(c: Chain): Promise<number>;
  /** Waits until `check` holds (polls every 10 ms); throws after `ms`. */
  until(check: () => boolean | Promise<boolean>, what: string, ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a publisher (replay on unless `replay: false`) and an ingestor connected to it. */
export async function startRig(o: { replay?: boolean; index?: KvBlockIndex; ingestor?: Partial<EventIngestorOptions>; wrapSink?: (s: KvEventSink) => KvEventSink } = {}): Promise<Rig> {
  const pub = await KvEventPublisher.start({ endpoint: 'tcp://127.0.0.1:*', replayEndpoint: o.replay === false ? undefined : 'tcp://127.0.0.1:*', topic: TOPIC });
  const index = o.index ?? new MemoryBlockIndex();
  const indexer = new KvIndexer({ index });
  const sink = o.wrapSink ? o.wrapSink(indexer) : indexer;
  const ing = new EventIngestor({ sink, replayTimeoutMs: 2000, resyncIntervalMs: 0, ...o.ingestor });
  ing.add({ id: 'pod', address: ADDRESS, events: pub.endpoint, replay: pub.replayEndpoint, model: MODEL });
  await pub.waitForSubscribers(1);
  const until = async (check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> => {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(ing.stats().endpoints)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return {
    pub,
    ing,
    indexer,
    index,
    held: async (c) => (await index.lookup(indexer.requestKeys(MODEL, c.tokens, BS), ['pod']))[0].blocks,
    until,
    close: async () => {
      await ing.close();
      await pub.close();
    },
  };
}
