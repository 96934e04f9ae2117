/**
 * Precise prefix routing end to end, all real parts: simulated vLLM replicas publishing KV
 * events over ZeroMQ, the gateway subscribing, tokenizing like the engine and keeping the block
 * index in memory or in a real Redis; the engine's own `cached_tokens` is the judge.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runServe, type ServeOptions } from '../../src/app/serve.js';
import { silentLogger } from '../../src/core/logger.js';
import type { RunningRouter } from '../../src/server/router.js';
import { fleetEndpointList, startFleet, type SimFleet } from '../../src/sim/fleet.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const MODEL = 'sim-model';
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function fleet(replicas = 3, o: { clearOnRestart?: boolean; numGpuBlocks?: number } = {}): Promise<SimFleet> {
  const f = await startFleet({
    replicas,
    basePort: 0,
    model: MODEL,
    profile: 'llama-3.2-1b',
    timeScale: 0.02,
    seed: 5,
    maxModelLen: 8192,
    ...(o.numGpuBlocks !== undefined ? { numGpuBlocks: o.numGpuBlocks } : {}),
    kvEvents: { clearOnRestart: o.clearOnRestart },
    enablePromptTokensDetails: true,
  });
  cleanups.push(() => f.close());
  return f;
}

async function serve(f: SimFleet, o: Partial<ServeOptions> = {}): Promise<RunningRouter> {
  const r = await runServe({
    endpoints: fleetEndpointList(f),
    preset: 'llm-d-precise',
    host: '127.0.0.1',
    port: 0,
    adminPort: 0,
    engine: 'vllm',
    maxBodyBytes: 1 << 20,
    trustForwardedFor: false,
    scrapeIntervalMs: 20,
    tokenizer: 'builtin',
    env: {},
    logger: silentLogger,
    ...o,
  });
  cleanups.push(() => r.close());
  return r;
}

/** Deterministic text of about `words` words, distinct per seed. */
function text(words: number, seed: number): string {
  let x = seed * 2654435761 + 1;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(`w${(x % 50000).toString(36)}`);
  }
  return out.join(' ');
}

interface Sent {
  endpoint: string;
  cached: number;
  prompt: number;
  predicted: number | undefined;
}

async function complete(r: RunningRouter, prompt: string | number[], maxTokens = 4): Promise<Sent> {
  const res = await request(`${r.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: maxTokens, temperature: 0 }),
  });
  const body = (await res.body.json()) as { usage?: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens?: number } } };
  assert.equal(res.statusCode, 200, JSON.stringify(body));
  const endpoint = String(res.headers['x-kvroute-endpoint']);
  const rec = r.decisions.toArray().at(-1)!;
  return {
    endpoint,
    cached: body.usage?.prompt_tokens_details?.cached_tokens ?? 0,
    prompt: body.usage?.prompt_tokens ?? 0,
    predicted: rec.servedBy === endpoint ? rec.predictedCachedTokens : undefined,
  };
}

/** Waits until no new KV-event batch reached the router for a few polls. */
async function settled(r: RunningRouter): Promise<void> {
  let last = -1;
  let still = 0;
  for (let i = 0; i < 200 && still < 3; i++) {
    await new Promise((res) => setTimeout(res, 25));
    const st = r.metrics.eventStats();
    const n = st === undefined ? 0 : Object.values(st.endpoints).reduce((a, e) => a + e.batches, 0);
    still = n === last ? still + 1 : 0;
    last = n;
  }
}

/** Three long shared prefixes, each followed by different questions. */
const PREFIXES = [text(700, 1), text(700, 2), text(700, 3)];

test('precise routing: predicted cached tokens equal the engine-reported cached_tokens', async () => {
  const f = await fleet();
  const r = await serve(f);
  const results: Sent[] = [];
  for (let round = 0; round < 3; round++) {
    for (let g = 0; g < PREFIXES.length; g++) {
      results.push(await complete(r, `${PREFIXES[g]} question ${round} ${text(20, 100 + round * 7 + g)}`));
      await settled(r);
    }
  }
  const agree = results.filter((s) => s.predicted === s.cached).length;
  assert.equal(agree, results.length, JSON.stringify(results));
  // Every group stayed on one replica once cached, and later rounds hit.
  for (let g = 0; g < PREFIXES.length; g++) {
    const mine = results.filter((_, i) => i % PREFIXES.length === g);
    assert.equal(new Set(mine.map((s) => s.endpoint)).size, 1);
    for (const s of mine.slice(1)) assert.ok(s.cached > s.prompt * 0.8, `hit expected: ${JSON.stringify(s)}`);
  }
  const st = r.metrics.preciseScorerStats() as { precise: number } | undefined;
  assert.ok(st !== undefined && st.precise >= results.length - 1);
});

test('precise routing: a router started after the pods learns their caches through replay', async () => {
  const f = await fleet();
  const first = await serve(f);
  const warm: Sent[] = [];
  for (const p of PREFIXES) warm.push(await complete(first, `${p} warm`));
  await settled(first);
  await first.close();
  // A new router, memory index, never routed anything: it must know where each prefix lives.
  const late = await serve(f);
  await settled(late);
  for (let g = 0; g < PREFIXES.length; g++) {
    const s = await complete(late, `${PREFIXES[g]} late question`);
    assert.equal(s.endpoint, warm[g].endpoint);
    assert.ok(s.cached > 0);
    assert.equal(s.predicted, s.cached);
  }
});

test('precise routing: a replica restart that sends AllBlocksCleared (--kv-events-clear-on-restart) clears its entries; routing stays exact', async () => {
  const f = await fleet(2, { clearOnRestart: true });
  const r = await serve(f);
  const a = await complete(r, `${PREFIXES[0]} one`);
  await settled(r);
  const replica = f.replicas.find((x) => `${x.host}:${x.port}` === a.endpoint)!;
  assert.ok((r.metrics.indexStats()?.endpoints[a.endpoint] ?? 0) > 0);
  const res = await request(`http://${replica.host}:${replica.port}/sim/restart`, { method: 'POST' });
  await res.body.dump();
  await settled(r);
  // AllBlocksCleared reached the index: nothing is left of the restarted replica.
  assert.equal(r.metrics.indexStats()?.endpoints[a.endpoint] ?? 0, 0);
  const b = await complete(r, `${PREFIXES[0]} two`);
  assert.equal(b.cached, 0, 'no replica holds the prefix any more');
  assert.equal(b.predicted, 0, 'and the router knows it');
  await settled(r);
  const c = await complete(r, `${PREFIXES[0]} three`);
  assert.equal(c.endpoint, b.endpoint);
  assert.equal(c.predicted, c.cached);
  assert.ok(c.cached > 0);
});

let redis: RedisServer | undefined;

test('two routers share one Redis index: the second, with no events of its own, routes like the first', async () => {
  redis = await startRedisServer();
  cleanups.push(() => redis!.stop());
  const f = await fleet();
  const a = await serve(f, { redis: redis.url });
  const b = await serve(f, { redis: redis.url, kvEvents: 'off' });
  const viaA: Sent[] = [];
  for (const p of PREFIXES) viaA.push(await complete(a, `${p} from a`));
  await settled(a);
  for (let g = 0; g < PREFIXES.length; g++) {
    const s = await complete(b, `${PREFIXES[g]} from b`);
    assert.equal(s.endpoint, viaA[g].endpoint, `group ${g}`);
    assert.ok(s.cached > 0);
    assert.equal(s.predicted, s.cached);
  }
});

test('Redis killed and restarted: no request is lost, routing falls back, then the index is rebuilt', async () => {
  const rs = redis ?? (await startRedisServer());
  const f = await fleet(2);
  const r = await serve(f, { redis: rs.url });
  const first = await complete(r, `${PREFIXES[1]} before`);
  await settled(r);
  await rs.kill();
  // Redis is gone: requests still succeed, precise lookups fail over to approximate routing.
  const during = await complete(r, `${PREFIXES[1]} during`);
  assert.equal(during.endpoint, first.endpoint, 'approximate fallback keeps the locality');
  const st = r.metrics.preciseScorerStats() as { fallbacks: Record<string, number> };
  assert.ok(st.fallbacks['lookup-failed'] >= 1);
  await rs.restart();
  // The index notices it lost its content and replays every stream from 0.
  let after: Sent | undefined;
  for (let i = 0; i < 40; i++) {
    await new Promise((res) => setTimeout(res, 100));
    after = await complete(r, `${PREFIXES[1]} after ${i}`);
    await settled(r);
    if (after.predicted !== undefined && after.predicted > 0 && after.predicted === after.cached) break;
  }
  assert.ok(after !== undefined && after.predicted === after.cached && after.cached > 0, JSON.stringify(after));
});

test('precise routing: a silent restart (like vLLM: sequence back to 0, no AllBlocksCleared) is detected; routing stays exact', async () => {
  const f = await fleet(2);
  const r = await serve(f, { kvEventsResyncMs: 200 });
  const a = await complete(r, `${PREFIXES[2]} one`);
  await settled(r);
  const replica = f.replicas.find((x) => `${x.host}:${x.port}` === a.endpoint)!;
  assert.ok((r.metrics.indexStats()?.endpoints[a.endpoint] ?? 0) > 0);
  const res = await request(`http://${replica.host}:${replica.port}/sim/restart`, { method: 'POST' });
  await res.body.dump();
  // No event says so: the periodic check finds the replay socket no longer holding the last batch.
  for (let i = 0; i < 100 && (r.metrics.eventStats()?.endpoints[a.endpoint]?.restarts ?? 0) === 0; i++) await new Promise((res) => setTimeout(res, 50));
  assert.equal(r.metrics.eventStats()?.endpoints[a.endpoint]?.restarts, 1, 'restart detected');
  assert.equal(r.metrics.indexStats()?.endpoints[a.endpoint] ?? 0, 0, 'its entries are gone');
  const b = await complete(r, `${PREFIXES[2]} two`);
  assert.equal(b.cached, 0, 'no replica holds the prefix any more');
  assert.equal(b.predicted, 0, 'and the router knows it');
  await settled(r);
  const c = await complete(r, `${PREFIXES[2]} three`);
  assert.equal(c.endpoint, b.endpoint);
  assert.equal(c.predicted, c.cached);
  assert.ok(c.cached > 0);
});

test('precise routing: duplicate blocks (a fully cached prompt recomputes its last block) keep the index exact', async () => {
  // Replicas of 64 blocks: the free queue order is known, so one copy of a block can be evicted.
  const f = await fleet(2, { numGpuBlocks: 64 });
  // No speculative entries: predictions come from the index alone (they would hide its errors for 30 s).
  const dir = await mkdtemp(join(tmpdir(), 'kvr-dup-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'precise.yaml');
  await writeFile(config, (await readFile(new URL('../../../examples/llm-d-precise.yaml', import.meta.url), 'utf8')).replace('      blockSize: 16', '      blockSize: 16\n    speculativeTtlMs: 0'));
  const r = await serve(f, { preset: undefined, config });
  const ids = (n: number, seed: number): number[] => Array.from({ length: n }, (_, i) => 1000 + ((i * 7919 + seed * 104729) % 20000));
  const P = ids(8 * 16, 1); // 8 full blocks exactly
  const sent: Sent[] = [];
  sent.push(await complete(r, P, 1)); // 8 blocks cached
  await settled(r);
  sent.push(await complete(r, P, 1)); // hit 7 (prompt_len - 1 cap), block 8 recomputed: a second BlockStored of its hash
  await settled(r);
  assert.equal(sent[1].cached, 7 * 16);
  assert.equal(sent[1].endpoint, sent[0].endpoint);
  // Straight to that replica, 56 fresh blocks: the 55 never used, then the first copy of block 8
  // (BlockRemoved), not the second.
  const res = await request(`http://${sent[0].endpoint}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt: ids(56 * 16, 2), max_tokens: 1 }),
  });
  assert.equal(res.statusCode, 200);
  await res.body.dump();
  await settled(r);
  // Block 8 is still cached (second copy): a longer prompt hits all 8 blocks, and its next block chains on it.
  const P1 = [...P, ...ids(16, 3)];
  sent.push(await complete(r, P1, 1));
  await settled(r);
  assert.equal(sent[2].cached, 8 * 16, 'the engine still holds block 8');
  sent.push(await complete(r, [...P1, ...ids(16, 4)], 1));
  assert.equal(sent[3].cached, 9 * 16, 'and block 9, chained on it');
  for (const s of sent) {
    assert.equal(s.endpoint, sent[0].endpoint);
    assert.equal(s.predicted, s.cached, JSON.stringify(sent));
  }
});
