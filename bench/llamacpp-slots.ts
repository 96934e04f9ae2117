/**
 * The approximate index against llama.cpp's slot cache: 6 conversations on 2 llama.cpp servers
 * with 2 slots each (the simulator's llama.cpp dialect: each slot keeps only its last prompt),
 * first turns then one follow-up each, through the router's default profile. For each
 * follow-up: the router's predicted cache status and predicted cached tokens vs the cached
 * tokens the engine reported. Two modes in one run:
 *   - slots: kvroute's cache model for llama.cpp (slots x one prompt, slot LRU);
 *   - blocks: the previous model (a pool of ~31k blocks per server), forced for comparison.
 *
 *   npm run build && node dist/bench/llamacpp-slots.js
 */
import { startFleet } from '../src/sim/fleet.js';
import { startRouter } from '../src/server/router.js';
import { buildScheduler } from '../src/app/build-scheduler.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

async function complete(url: string, prompt: string): Promise<{ text: string; endpoint: string }> {
  const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt, max_tokens: 8 }) });
  const j = (await r.json()) as { choices: Array<{ text: string }> };
  return { text: j.choices[0].text, endpoint: r.headers.get('x-kvroute-endpoint') ?? '?' };
}

async function run(mode: 'slots' | 'blocks'): Promise<void> {
  const fleet = await startFleet({ replicas: 2, basePort: 0, model: MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, maxModelLen: 8192, slowMetrics: false, dialect: { engine: 'llamacpp', parallel: 2 } });
  const router = await startRouter({ endpoints: fleet.replicas.map((r) => ({ url: r.url })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
  try {
    if (mode === 'blocks') {
      for (const ep of router.pool.all()) Object.defineProperty(ep, 'cacheModel', { get: () => ({ kind: 'blocks' }), set: () => undefined });
    }
    const convs = Array.from({ length: 6 }, (_, c) => `Conversation ${c}: ` + `topic ${c} detail `.repeat(120));
    const first = [];
    for (const p of convs) first.push(await complete(router.url, p));
    const n0 = router.decisions.toArray().length;
    for (let c = 0; c < 6; c++) await complete(router.url, `${convs[c]}${first[c].text} and a follow-up question`);
    const rows = router.decisions.toArray().slice(n0);
    let predictedHitsRecomputed = 0;
    let absErr = 0;
    let hits = 0;
    for (const d of rows) {
      const prompt = d.promptTokens ?? 1;
      const actual = d.cachedTokens ?? 0;
      const predicted = d.predictedCachedTokens ?? 0;
      if (d.cacheStatus === 'hit' && actual < 0.1 * prompt) predictedHitsRecomputed++;
      if (actual > 0.5 * prompt) hits++;
      absErr += Math.abs(predicted - actual) / prompt;
    }
    process.stdout.write(
      `${mode.padEnd(6)} follow-ups ${rows.length}: engine hits ${hits}/6, predicted "hit" but fully recomputed ${predictedHitsRecomputed}, ` +
        `mean |predicted - engine cached| ${(100 * absErr / rows.length).toFixed(1)} % of the prompt; statuses ${rows.map((d) => d.cacheStatus).join(',')}\n`,
    );
  } finally {
    await router.close();
    await fleet.close();
  }
}

await run('blocks');
await run('slots');
