/**
 * What `kvroute doctor` reads over HTTP: each endpoint's Prometheus `/metrics` (its engine's names), the
 * router's `GET /debug/stats`, and, with `--probe`, the same prompt sent twice. Never throws:
 * an unreachable target becomes a sample that says so.
 */
import { randomUUID } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import { parsePromText, type PromSample } from '../datalayer/prom-text.js';
import type { EndpointSample, ProbeResult, RouterStatsSample } from './doctor-types.js';
import { engineFromMetricsText } from '../engines/detect.js';
import { adapterFor, readAnyUsage } from '../engines/registry.js';
import { prefixCounters } from '../engines/common.js';

const sum = (s: PromSample[]) => s.reduce((a, x) => a + (Number.isFinite(x.value) ? x.value : 0), 0);

async function getText(url: string, timeoutMs: number, dispatcher?: Dispatcher): Promise<string> {
  const res = await request(url, { method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs, dispatcher });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url} answered HTTP ${res.statusCode}`);
  return text;
}

/**
 * Extracts an {@link EndpointSample} from exposition text: the engine is detected from the
 * metric prefixes and its adapter's names are read (vLLM current and older names; SGLang
 * `prompt_tokens_total` / `cached_tokens_total`; llama.cpp has no prefix or request counters).
 */
export function sampleFromMetrics(address: string, url: string, text: string): EndpointSample {
  const engine = engineFromMetricsText(text);
  const out: EndpointSample = { address, url, reachable: true, ...(engine ? { engine } : {}) };
  const map = adapterFor(engine ?? 'vllm').metrics;
  const byName = new Map<string, PromSample[]>();
  for (const s of parsePromText(text).samples) {
    const a = byName.get(s.name);
    if (a) a.push(s);
    else byName.set(s.name, [s]);
  }
  const first = (names: readonly string[]) => {
    for (const n of names) {
      const v = byName.get(n);
      if (v && v.length > 0) return v;
    }
    return undefined;
  };
  const cfg = first(map.cacheConfig)?.[0];
  if (cfg) {
    out.cacheConfig = cfg.labels;
    const bs = Number(cfg.labels.block_size);
    if (Number.isFinite(bs) && bs > 0) out.blockSize = bs;
  }
  const counters = prefixCounters(map, byName);
  if (counters.queries !== undefined) out.queries = counters.queries;
  if (counters.hits !== undefined) out.hits = counters.hits;
  const req = first(map.requests);
  if (req) out.requests = sum(req);
  const w = first(map.waiting);
  const r = first(map.running);
  const kv = adapterFor(engine ?? 'vllm').kvUsageIsPressure ? first(map.kvUsage) : undefined;
  if (w) out.waiting = sum(w);
  if (r) out.running = sum(r);
  if (kv) out.kvUsage = sum(kv) / kv.length;
  return out;
}

/** Scrapes one endpoint's `/metrics`. */
export async function sampleEndpoint(url: string, timeoutMs: number, dispatcher?: Dispatcher): Promise<EndpointSample> {
  const address = new URL(url).host;
  try {
    return sampleFromMetrics(address, url, await getText(`${url}/metrics`, timeoutMs, dispatcher));
  } catch (err) {
    // /metrics failing while /health answers is a busy server (llama.cpp queues /metrics behind a prefill), not a dead one.
    const live = await getText(`${url}/health`, Math.min(timeoutMs, 2000), dispatcher).then(() => true, () => false);
    return { address, url, reachable: false, live, error: (err as Error).message };
  }
}

/** Reads the router's `/debug/stats`; returns an error message instead when it cannot. */
export async function sampleRouter(adminUrl: string, timeoutMs: number, dispatcher?: Dispatcher): Promise<RouterStatsSample | string> {
  try {
    const body = JSON.parse(await getText(`${adminUrl}/debug/stats`, timeoutMs, dispatcher)) as Partial<RouterStatsSample>;
    if (!body || typeof body !== 'object' || !Array.isArray(body.endpoints)) return `${adminUrl}/debug/stats is not kvroute's stats (is this the admin port?)`;
    return {
      router: body.router ?? null,
      endpoints: body.endpoints,
      events: body.events ?? null,
      index: body.index ?? null,
      preciseScorer: body.preciseScorer ?? null,
    };
  } catch (err) {
    return `${adminUrl}/debug/stats: ${(err as Error).message}`;
  }
}

/** First model id an OpenAI-compatible server lists, if any. */
export async function firstModel(baseUrl: string, timeoutMs: number, dispatcher?: Dispatcher): Promise<string | undefined> {
  try {
    const body = JSON.parse(await getText(`${baseUrl}/v1/models`, timeoutMs, dispatcher)) as { data?: Array<{ id?: unknown }> };
    const id = body.data?.find((m) => typeof m.id === 'string')?.id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** A probe prompt: a fresh nonce first (so the first request is a miss), then ~2,000 characters. */
export function probePrompt(nonce: string = randomUUID()): string {
  const filler = 'kvroute doctor checks that a repeated prompt is served from the prefix cache of the replica that computed it. ';
  return `[probe ${nonce}] ` + filler.repeat(18);
}

interface Completion {
  servedBy: string | undefined;
  cached: number | undefined;
  cachedFrom: string | undefined;
  promptTokens: number | undefined;
}

async function complete(baseUrl: string, model: string, prompt: string, timeoutMs: number, dispatcher?: Dispatcher): Promise<Completion> {
  const res = await request(`${baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-kvroute-explain': '1' },
    body: JSON.stringify({ model, prompt, max_tokens: 1, temperature: 0 }),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    dispatcher,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  // Cached tokens from whatever the engine reports: OpenAI usage, llama.cpp timings, SGLang meta_info.
  const usage = readAnyUsage(JSON.parse(text));
  const ep = res.headers['x-kvroute-endpoint'];
  return {
    servedBy: typeof ep === 'string' ? ep : undefined,
    cached: usage?.cachedTokens,
    cachedFrom: usage?.cachedFrom,
    promptTokens: usage?.promptTokens,
  };
}

/**
 * Sends the same prompt twice to `baseUrl` (an endpoint, or the router's gateway). The second
 * request's cached tokens come from its usage, or, for a direct endpoint probe whose server
 * does not report them, from the endpoint's hits counter delta.
 */
export async function probe(
  target: string,
  baseUrl: string,
  model: string,
  opts: { timeoutMs: number; dispatcher?: Dispatcher; metricsUrl?: string },
): Promise<ProbeResult> {
  const prompt = probePrompt();
  try {
    const a = await complete(baseUrl, model, prompt, opts.timeoutMs, opts.dispatcher);
    const before = opts.metricsUrl ? await sampleEndpoint(opts.metricsUrl, opts.timeoutMs, opts.dispatcher) : undefined;
    const b = await complete(baseUrl, model, prompt, opts.timeoutMs, opts.dispatcher);
    let cached = b.cached;
    let cachedFrom = b.cachedFrom;
    if (cached === undefined && before?.hits !== undefined && opts.metricsUrl) {
      const after = await sampleEndpoint(opts.metricsUrl, opts.timeoutMs, opts.dispatcher);
      if (after.hits !== undefined) {
        cached = after.hits - before.hits;
        cachedFrom = 'hits counter';
      }
    }
    return { target, ok: true, servedBy: [a.servedBy, b.servedBy], secondCached: cached, ...(cachedFrom ? { cachedFrom } : {}), promptTokens: b.promptTokens };
  } catch (err) {
    return { target, ok: false, error: (err as Error).message };
  }
}
