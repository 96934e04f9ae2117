/**
 * Precise-routing agreement: how often the router's predicted cached tokens for a request equal
 * what the engine then reports (`usage.prompt_tokens_details.cached_tokens`), end to end with
 * real parts: a simulated vLLM fleet publishing KV events over ZeroMQ, `kvroute serve` in this
 * process (preset `llm-d-precise`, built-in tokenizer, memory index or a given Redis) subscribing
 * to them, and HTTP requests through the gateway.
 *
 *   npm run build && node dist/bench/precise-agreement.js [--replicas 4] [--clients 4]
 *       [--seconds 30] [--seed 1] [--time-scale 0.05] [--burst-words 600]
 *       [--redis redis://127.0.0.1:6379] [--json]
 *
 * Workload (deterministic for the seed), two phases on one fleet:
 *   - sequential: one request at a time, no waiting for events in between: shared-prefix groups
 *     (~1,200-token documents, several questions each, /v1/completions) interleaved, then
 *     multi-turn chat conversations (/v1/chat/completions, each turn carrying the previous
 *     assistant replies);
 *   - concurrent: `--clients` clients in parallel on NEW shared-prefix groups (all clients walk
 *     the same groups, so siblings of a group race each other) and on their own conversations;
 *     then bursts: a never-seen document asked by every client at the same instant, 6 times.
 * Requests stop being issued after `--seconds` (default 30) in all; the rest is skipped.
 *
 * Each request carries an `x-request-id`; its prediction is read from the router's decision
 * record (`predictedCachedTokens` of the chosen endpoint; requests retried elsewhere are left
 * out, `scored` counts the others). Reported per phase: exact agreement, agreement within one
 * block (16 tokens), mean absolute error (tokens), over- and under-predictions, the engine's
 * cached share of prompt tokens; and the fleet hit rate (delta of the replicas' own
 * vllm:prefix_cache_hits / queries counters).
 *
 * Why concurrent requests can disagree. The index learns a block only from the engine's
 * BlockStored event, published at the end of the engine step that scheduled it and received a
 * moment later. When siblings of a group arrive together, the second is scored while the first
 * is still queued or prefilling: no event has confirmed its blocks yet, so the index alone
 * predicts a miss, while the engine (vLLM v1 registers a block in its prefix cache when the
 * scheduler allocates it, so a sibling scheduled in the same or a later step shares it) reports
 * a hit. The precise scorer's speculative entries (the picked endpoint holds the request's keys
 * locally for a while after each pick) cover this common case: the sibling is predicted to hit
 * where its predecessor went. What is left are timing cases the router cannot see: a predecessor
 * still in chunked prefill (its later chunks not allocated yet, so the engine reports less than
 * speculated), blocks evicted between the pick and the engine's scheduling under memory
 * pressure, and blocks of generated tokens (the previous chat reply) whose events are still in
 * flight when the next turn is scored (speculative entries hold prompt blocks only). Sequential
 * requests should agree exactly: the previous request's events have normally arrived by the
 * time the next one is scored. `--burst-words`, `--clients` and `--time-scale` make the races
 * harder (longer bursts, more siblings, slower simulated GPU).
 *
 * With `--redis`, the index lives in that Redis (nothing is started here); use a scratch
 * database, the keys (prefix `kvroute:`) are left behind.
 */
import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { runServe } from '../src/app/serve.js';
import { silentLogger } from '../src/core/logger.js';
import { counterDeltas, readFleetCounters, type CacheCounters } from '../src/demo/fleet-metrics.js';
import type { RunningRouter } from '../src/server/router.js';
import { fleetEndpointList, startFleet } from '../src/sim/fleet.js';

const args = process.argv.slice(2);
function opt(name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}
function num(name: string, dflt: number, min: number, max: number): number {
  const v = Number(opt(name) ?? dflt);
  return Number.isFinite(v) ? Math.max(min, Math.min(max, Math.floor(v))) : dflt;
}
const REPLICAS = num('replicas', 4, 1, 16);
const CLIENTS = num('clients', 4, 2, 16);
const SECONDS = num('seconds', 30, 5, 600);
const SEED = num('seed', 1, 0, 1_000_000);
const TIME_SCALE = Math.max(0.001, Math.min(10, Number(opt('time-scale') ?? 0.05) || 0.05));
const REDIS = opt('redis');
const BURST_WORDS = num('burst-words', 600, 50, 3_500);
const JSON_OUT = args.includes('--json');
const MODEL = 'sim-model';
const BLOCK = 16;

/** Deterministic text of `words` words (~2 built-in tokens each), distinct per seed. */
function text(words: number, seed: number): string {
  let x = (seed * 2654435761 + 1) % 2147483648;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(`w${(x % 50000).toString(36)}`);
  }
  return out.join(' ');
}

type Phase = 'sequential' | 'concurrent';
type Kind = 'shared-prefix' | 'chat' | 'burst';

interface Sample {
  phase: Phase;
  kind: Kind;
  endpoint: string;
  prompt: number;
  cached: number;
  predicted: number | undefined;
}

const deadline = Date.now() + SECONDS * 1000;
let skipped = 0;
const samples: Sample[] = [];

async function findDecision(r: RunningRouter, id: string) {
  // The gateway records the decision right after the upstream response ends; allow a few turns.
  for (let i = 0; i < 50; i++) {
    const rec = r.decisions.toArray().find((d) => d.requestId === id);
    if (rec !== undefined) return rec;
    await new Promise((res) => setTimeout(res, 2));
  }
  return undefined;
}

/** Sends one request; returns the assistant text (chat) and records the sample. */
async function send(r: RunningRouter, phase: Phase, kind: Kind, path: string, body: Record<string, unknown>): Promise<string | undefined> {
  if (Date.now() > deadline) {
    skipped++;
    return undefined;
  }
  const id = randomUUID();
  const res = await request(`${r.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': id },
    body: JSON.stringify({ model: MODEL, temperature: 0, ...body }),
  });
  const out = (await res.body.json()) as {
    usage?: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens?: number } };
    choices?: { message?: { content?: string } }[];
  };
  if (res.statusCode !== 200) throw new Error(`${path} answered ${res.statusCode}: ${JSON.stringify(out)}`);
  const endpoint = String(res.headers['x-kvroute-endpoint']);
  const rec = await findDecision(r, id);
  samples.push({
    phase,
    kind,
    endpoint,
    prompt: out.usage?.prompt_tokens ?? 0,
    cached: out.usage?.prompt_tokens_details?.cached_tokens ?? 0,
    predicted: rec !== undefined && rec.servedBy === rec.result.endpoint.id ? rec.predictedCachedTokens : undefined,
  });
  return out.choices?.[0]?.message?.content ?? '';
}

function complete(r: RunningRouter, phase: Phase, prompt: string, kind: Kind = 'shared-prefix'): Promise<unknown> {
  return send(r, phase, kind, '/v1/completions', { prompt, max_tokens: 4 });
}

/** One multi-turn conversation: a system prompt, then `turns` user turns, each with the history. */
async function conversation(r: RunningRouter, phase: Phase, seed: number, turns: number): Promise<void> {
  const messages: { role: string; content: string }[] = [{ role: 'system', content: `You are assistant ${seed}. ${text(150, seed)}` }];
  for (let t = 0; t < turns; t++) {
    messages.push({ role: 'user', content: `${text(60 + 17 * t, seed * 31 + t)}?` });
    const reply = await send(r, phase, 'chat', '/v1/chat/completions', { messages, max_tokens: 24 });
    if (reply === undefined) return;
    messages.push({ role: 'assistant', content: reply });
  }
}

interface PhaseFigures {
  requests: number;
  predicted: number;
  exact: number;
  withinBlock: number;
  exactRate: number;
  withinBlockRate: number;
  meanAbsErrorTokens: number;
  over: number;
  under: number;
  meanPromptTokens: number;
  engineCachedShare: number;
}

function figures(xs: readonly Sample[]): PhaseFigures {
  const p = xs.filter((s) => s.predicted !== undefined) as (Sample & { predicted: number })[];
  const err = p.map((s) => s.predicted - s.cached);
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  const prompt = sum(xs.map((s) => s.prompt));
  return {
    requests: xs.length,
    predicted: p.length,
    exact: err.filter((e) => e === 0).length,
    withinBlock: err.filter((e) => Math.abs(e) <= BLOCK).length,
    exactRate: p.length === 0 ? 0 : err.filter((e) => e === 0).length / p.length,
    withinBlockRate: p.length === 0 ? 0 : err.filter((e) => Math.abs(e) <= BLOCK).length / p.length,
    meanAbsErrorTokens: p.length === 0 ? 0 : sum(err.map(Math.abs)) / p.length,
    over: err.filter((e) => e > 0).length,
    under: err.filter((e) => e < 0).length,
    meanPromptTokens: xs.length === 0 ? 0 : prompt / xs.length,
    engineCachedShare: prompt === 0 ? 0 : sum(xs.map((s) => s.cached)) / prompt,
  };
}

const hitRate = (d: readonly CacheCounters[]) => {
  const q = d.reduce((a, c) => a + c.queries, 0);
  return q === 0 ? 0 : d.reduce((a, c) => a + c.hits, 0) / q;
};

async function main(): Promise<void> {
  const started = Date.now();
  const fleet = await startFleet({ replicas: REPLICAS, basePort: 0, model: MODEL, profile: 'llama-3.2-1b', timeScale: TIME_SCALE, seed: SEED, maxModelLen: 8192, kvEvents: {} });
  let router: RunningRouter | undefined;
  try {
    router = await runServe({
      endpoints: fleetEndpointList(fleet),
      preset: 'llm-d-precise',
      host: '127.0.0.1',
      port: 0,
      adminPort: 0,
      engine: 'vllm',
      maxBodyBytes: 1 << 22,
      trustForwardedFor: false,
      scrapeIntervalMs: 50,
      tokenizer: 'builtin',
      blockSize: BLOCK,
      ...(REDIS !== undefined ? { redis: REDIS } : {}),
      env: {},
      logger: silentLogger,
    });
    const r = router;
    const urls = fleet.replicas.map((x) => `http://${x.host}:${x.port}`);
    // Let every subscription connect before the first request.
    await new Promise((res) => setTimeout(res, 300));
    const before = await readFleetCounters(urls);

    // Sequential: 8 groups x 5 questions (interleaved), then 6 conversations x 6 turns.
    const seqStart = Date.now();
    const seqDocs = Array.from({ length: 8 }, (_, g) => text(600, SEED * 1000 + g));
    for (let q = 0; q < 5; q++) {
      for (let g = 0; g < seqDocs.length; g++) await complete(r, 'sequential', `${seqDocs[g]}\nQuestion ${q}: ${text(20, SEED * 1000 + 100 + g * 10 + q)}?`);
    }
    for (let c = 0; c < 6; c++) await conversation(r, 'sequential', SEED * 1000 + 200 + c, 6);
    const seqMs = Date.now() - seqStart;

    // Concurrent: every client walks the same 10 new groups (offset, so siblings collide), with
    // one question each per visit, and runs 3 conversations of 5 turns of its own.
    const conStart = Date.now();
    const conDocs = Array.from({ length: 10 }, (_, g) => text(600, SEED * 1000 + 500 + g));
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        for (let i = 0; i < 30; i++) {
          const g = (i + (client % 2)) % conDocs.length;
          await complete(r, 'concurrent', `${conDocs[g]}\nQuestion ${client}.${i}: ${text(20, SEED * 1000 + 700 + client * 100 + i)}?`);
          if (i % 10 === 9) await conversation(r, 'concurrent', SEED * 1000 + 900 + client * 10 + i, 5);
        }
      }),
    );
    // Bursts: a never-seen document asked by every client at the same instant, 6 times.
    for (let b = 0; b < 6; b++) {
      const doc = text(BURST_WORDS, SEED * 1000 + 1500 + b);
      await Promise.all(Array.from({ length: CLIENTS }, (_, client) => complete(r, 'concurrent', `${doc}\nQuestion ${client}: ${text(20, SEED * 1000 + 1600 + b * 16 + client)}?`, 'burst')));
    }
    const conMs = Date.now() - conStart;
    const after = await readFleetCounters(urls);

    const seq = figures(samples.filter((s) => s.phase === 'sequential'));
    const con = figures(samples.filter((s) => s.phase === 'concurrent'));
    const all = figures(samples);
    const seqChat = figures(samples.filter((s) => s.phase === 'sequential' && s.kind === 'chat'));
    const conChat = figures(samples.filter((s) => s.phase === 'concurrent' && s.kind === 'chat'));
    const conBurst = figures(samples.filter((s) => s.phase === 'concurrent' && s.kind === 'burst'));
    const precise = r.metrics.preciseScorerStats() as { precise: number; speculativeHits: number; fallbacks: Record<string, number> } | undefined;
    const report = {
      node: process.version,
      replicas: REPLICAS,
      clients: CLIENTS,
      index: REDIS !== undefined ? 'redis' : 'memory',
      seed: SEED,
      skippedAfterDeadline: skipped,
      phases: { sequential: { ...seq, wallMs: seqMs, chat: seqChat }, concurrent: { ...con, wallMs: conMs, chat: conChat, bursts: conBurst }, all },
      fleetHitRate: hitRate(counterDeltas(before, after)),
      preciseScorer: precise,
      totalMs: Date.now() - started,
    };
    if (JSON_OUT) {
      console.log(JSON.stringify(report, null, 2));
      return;
    }
    const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
    console.log(
      `precise-agreement: ${REPLICAS} simulated replicas (llama-3.2-1b, time scale ${TIME_SCALE}), llm-d-precise, builtin tokenizer, ${report.index} index, ${CLIENTS} concurrent clients, node ${process.version}`,
    );
    const rows: [string, PhaseFigures, string][] = [
      ['sequential', seq, `${(seqMs / 1000).toFixed(1)} s`],
      ['  of which chat', seqChat, ''],
      ['concurrent', con, `${(conMs / 1000).toFixed(1)} s`],
      ['  of which chat', conChat, ''],
      ['  of which bursts', conBurst, ''],
      ['all', all, ''],
    ];
    const header = ['phase', 'requests', 'scored', 'exact', 'within 16 tok', 'MAE tok', 'over/under', 'engine cached', 'wall'];
    const table = [header, ...rows.map(([n, f, w]) => [n, String(f.requests), String(f.predicted), pct(f.exactRate), pct(f.withinBlockRate), f.meanAbsErrorTokens.toFixed(1), `${f.over}/${f.under}`, pct(f.engineCachedShare), w])];
    const widths = header.map((_, i) => Math.max(...table.map((row) => row[i].length)));
    for (const [i, row] of table.entries()) {
      console.log(row.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  '));
      if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    }
    console.log(
      `fleet hit rate ${pct(report.fleetHitRate)}; precise-scored ${precise?.precise ?? 0}, speculative hits ${precise?.speculativeHits ?? 0}, fallbacks ${JSON.stringify(precise?.fallbacks ?? {})}; ` +
        `skipped after the ${SECONDS} s bound ${skipped}; took ${(report.totalMs / 1000).toFixed(1)} s`,
    );
  } finally {
    await router?.close();
    await fleet.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
