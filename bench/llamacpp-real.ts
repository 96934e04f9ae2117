/**
 * kvroute in front of two REAL llama.cpp llama-servers (tiny random-weight Llama model with the
 * real Llama 3 tokenizer, `-np 2`, one thread each; test/helpers/llama-server.ts), router with
 * its default settings and NO --engine:
 *
 *   1. frozen: SIGSTOP one server at a different phase of the probe cycle each round; time until
 *      the router stops routing to it, and until it is routed to again after SIGCONT;
 *   2. busy: a long prefill sent straight to one server; how long its /metrics and /health take
 *      (asked together during the prefill) and whether the router ever ejected it (polled 10 ms);
 *   3. slots: 6 conversations on 2 servers x 2 slots, first turns then one follow-up each; the
 *      router's predicted cache status vs the cached tokens the engine reported;
 *   4. hit rates: `bench --engine live` kvroute vs round robin on shared-prefix and multi-turn
 *      chat, hit rates from the engine's own counters (servers restarted before each strategy:
 *      erasing slots leaves this build's host-memory prompt cache warm).
 *
 * Needs .tools/llama/bin/llama-server (scripts/install-llama-server.sh) and python3 gguf + numpy.
 *
 *   npm run build && node dist/bench/llamacpp-real.js [--rounds 5] [--skip-hit-rates]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startRouter, type RunningRouter } from '../src/server/router.js';
import { buildScheduler } from '../src/app/build-scheduler.js';
import { runBench } from '../src/bench/run-bench.js';
import { TINY_MODEL_NAME, startLlamaServer, tinyLlamaModel, type LlamaServer } from '../test/helpers/llama-server.js';

const args = process.argv.slice(2);
const ROUNDS = Number(args[args.indexOf('--rounds') + 1] ?? 5) || 5;
const SKIP_HIT_RATES = args.includes('--skip-hit-rates');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out = (s: string) => process.stdout.write(s + '\n');

const words = (tag: string, n: number) => `You are assistant ${tag}. ` + Array.from({ length: n }, (_, i) => `${tag}${i % 17} topic${(i * 7) % 31}`).join(' ');

async function chat(url: string, messages: Array<{ role: string; content: string }>, maxTokens = 4): Promise<{ endpoint: string; text: string; cacheN: number; prompt: number; requestId: string }> {
  const requestId = `bench-${Math.random().toString(36).slice(2)}`;
  const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': requestId }, body: JSON.stringify({ model: TINY_MODEL_NAME, messages, max_tokens: maxTokens, temperature: 0 }) });
  const j = (await r.json()) as { choices?: Array<{ message?: { content?: string } }>; usage?: { prompt_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } } };
  if (r.status !== 200) throw new Error(`chat answered ${r.status}: ${JSON.stringify(j)}`);
  return { endpoint: r.headers.get('x-kvroute-endpoint') ?? '?', text: j.choices?.[0]?.message?.content ?? '', cacheN: j.usage?.prompt_tokens_details?.cached_tokens ?? 0, prompt: j.usage?.prompt_tokens ?? 0, requestId };
}

const model = tinyLlamaModel();
const slotDir = mkdtempSync(path.join(tmpdir(), 'kvr-llama-bench-'));
const opts = { model, parallel: 2, ctx: 16384, extraArgs: ['--slot-save-path', slotDir] };
const servers: LlamaServer[] = await Promise.all([startLlamaServer(opts), startLlamaServer(opts)]);
// Interrupted (Ctrl-C, SIGTERM): stop the llama-servers too (the helper kills them on 'exit').
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
const newRouter = () => startRouter({ endpoints: servers.map((s) => ({ url: s.url })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
let router: RunningRouter | undefined;
try {
  out(`llama-server ${servers.map((s) => s.address).join(', ')}: tiny Llama (${path.basename(model)}), -np 2, -t 1`);
  // 1. frozen
  router = await newRouter();
  const ep = router.pool.get(servers[0].address)!;
  const stopMs: number[] = [];
  const backMs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await sleep(300 + 97 * round);
    servers[0].freeze();
    let t0 = performance.now();
    while (ep.healthy && performance.now() - t0 < 15_000) await sleep(5);
    stopMs.push(Math.round(performance.now() - t0));
    servers[0].thaw();
    t0 = performance.now();
    while (!ep.healthy && performance.now() - t0 < 15_000) await sleep(5);
    backMs.push(Math.round(performance.now() - t0));
  }
  out(`1. frozen (SIGSTOP) -> stops routing after ms: ${stopMs.join(', ')} (max ${Math.max(...stopMs)}); SIGCONT -> routed again after ms: ${backMs.join(', ')}`);

  // 2. busy prefill
  const busy = servers[1];
  const bep = router.pool.get(busy.address)!;
  let ejected = false;
  let staleSeen = false;
  let done = false;
  const t0 = performance.now();
  const long = fetch(`${busy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: TINY_MODEL_NAME, messages: [{ role: 'user', content: words('prefill', 1200) }], max_tokens: 1 }) }).then(async (r) => (await r.json()) as { timings?: { prompt_n?: number; prompt_ms?: number } });
  void long.finally(() => (done = true));
  await sleep(200);
  const timed = async (p: string): Promise<number> => {
    const t = performance.now();
    await (await fetch(`${busy.url}${p}`)).text();
    return performance.now() - t;
  };
  const probes = Promise.all([timed('/metrics'), timed('/health')]);
  while (!done) {
    if (!bep.healthy) ejected = true;
    if (bep.health?.loadFresh === false) staleSeen = true;
    await sleep(10);
  }
  const [metricsMs, healthMs] = await probes;
  const lt = (await long).timings;
  out(`2. busy: prefill of ${lt?.prompt_n} tokens took ${Math.round(lt?.prompt_ms ?? performance.now() - t0)} ms; during it /metrics answered in ${Math.round(metricsMs)} ms, /health in ${Math.round(healthMs)} ms; load went stale: ${staleSeen}; ejected: ${ejected}`);
  await router.close();

  // 3. slots: 6 conversations on 2 x 2 slots.
  for (const s of servers) await s.restart();
  router = await newRouter();
  const convs = Array.from({ length: 6 }, (_, c) => [{ role: 'system', content: words(`conv${c}`, 200) }, { role: 'user', content: `first question of conversation ${c}` }]);
  const firsts = [];
  for (const m of convs) firsts.push(await chat(router.url, m));
  let predictedHitRecomputed = 0;
  let predictedMissHit = 0;
  let absErr = 0;
  let engineHits = 0;
  for (let c = 0; c < 6; c++) {
    const r = await chat(router.url, [...convs[c], { role: 'assistant', content: firsts[c].text }, { role: 'user', content: 'and a follow-up' }]);
    const d = router.decisions.toArray().find((x) => x.requestId === r.requestId)!;
    const engineHit = r.cacheN >= 0.5 * firsts[c].prompt;
    if (engineHit) engineHits++;
    if (d.cacheStatus === 'hit' && !engineHit) predictedHitRecomputed++;
    if (d.cacheStatus === 'miss' && engineHit) predictedMissHit++;
    absErr += Math.abs((d.predictedCachedTokens ?? 0) - r.cacheN) / Math.max(1, r.prompt);
  }
  out(`3. slots: follow-ups the engine served from cache: ${engineHits}/6; predicted hit but recomputed: ${predictedHitRecomputed}; predicted miss but served from cache: ${predictedMissHit}; mean |predicted - engine cached| = ${((100 * absErr) / 6).toFixed(1)} % of the prompt`);
  await router.close();
  router = undefined;

  // 4. hit rates, kvroute vs round robin, from the engine's counters.
  if (!SKIP_HIT_RATES) {
    const endpoints = servers.map((s) => s.address);
    for (const [workload, workloadOptions] of [
      ['shared-prefix', { groups: 4, promptsPerGroup: 6, systemTokens: 600, questionTokens: 24, outputTokens: 2, rate: 6 }],
      ['multi-turn-chat', { users: 6, turns: 4, thinkTimeS: 0.5, systemTokens: 300, questionTokens: 24, outputTokens: 8, rate: 3 }],
    ] as const) {
      // A slot erase leaves this build's host-memory prompt cache warm: restart the servers (cold
      // caches) before each strategy instead.
      const parts: string[] = [];
      for (const strategy of ['round-robin', 'kvroute']) {
        for (const sv of servers) await sv.restart();
        const report = await runBench({ workload, workloadOptions: { ...workloadOptions, model: TINY_MODEL_NAME }, strategies: [strategy], engine: 'live', endpoints, replicas: 2, seed: 1 });
        const st = report.strategies[0];
        parts.push(`${st.name} ${(100 * st.hitRate).toFixed(1)} % (${st.requests - st.failed}/${st.requests} ok)`);
      }
      out(`4. ${workload}: engine-reported hit rate (servers restarted before each strategy) ${parts.join(', ')}`);
    }
  }
} finally {
  await router?.close();
  for (const s of servers) await s.stop();
  rmSync(slotDir, { recursive: true, force: true });
}
