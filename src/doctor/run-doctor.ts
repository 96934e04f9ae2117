/**
 * `kvroute doctor`: checks a live fleet (and optionally the router in front of it) for the
 * misconfigurations that make KV-cache-aware routing silently useless: prefix caching off,
 * counters not moving, 0 % hits, block-size disagreement, KV events missing or published
 * under another pod id, routing that ignores the prefix, hot-spotting, and traffic that
 * never reaches the router.
 *
 *   sample endpoints (+ router /debug/stats)
 *   [--probe: the same prompt twice, straight to each endpoint and through the router]
 *   [wait windowMs] sample again          -> counters compared over the window when traffic flowed
 *   runChecks -> findings (ok / warn / fail / skip), each with its fix
 */
import { Agent } from 'undici';
import { KvrError } from '../core/errors.js';
import { normaliseEndpointUrl } from '../datalayer/endpoint-pool.js';
import { firstModel, probe, sampleEndpoint, sampleRouter } from './collect.js';
import { runChecks } from './checks.js';
import { runPdChecks } from './pd-checks.js';
import type { DoctorReport, EndpointSample, FindingLevel, ProbeResult, RouterStatsSample } from './doctor-types.js';

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  /** Endpoint base URLs or host:port; default: the router's endpoints (needs `routerAdmin`). */
  endpoints?: readonly string[];
  /** The router's admin URL (`http://host:9090`). */
  routerAdmin?: string;
  /** The router's block size, when the router admin is not available to say it. */
  blockSize?: number;
  /** Send probe requests (the same prompt twice) to each endpoint and through the router. */
  probe?: boolean;
  /** Model for probes (default: the first one the endpoint lists). */
  model?: string;
  /** Sampling window: sample, wait this long, sample again (default 0: one sample). */
  windowMs?: number;
  /** Per-request timeout (default 5,000 ms). */
  timeoutMs?: number;
  /** P/D (pd-checks.ts): the deployment says P/D is on (PD_ENABLED=true). */
  pdExpected?: boolean;
  /** P/D: the prefill endpoints (host:port or URLs). */
  prefillEndpoints?: readonly string[];
  /** Waits (injectable for tests; default setTimeout). */
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs every check and returns the report; throws KvrError only on bad options. */
export async function runDoctor(opts: DoctorOptions): Promise<DoctorReport> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const windowMs = Math.max(0, opts.windowMs ?? 0);
  const sleep = opts.sleep ?? defaultSleep;
  const adminUrl = opts.routerAdmin ? normaliseEndpointUrl(opts.routerAdmin).url : undefined;
  const dispatcher = new Agent({ keepAliveTimeout: 1000, connections: 8 });
  try {
    let routerBefore: RouterStatsSample | undefined;
    let routerError: string | undefined;
    if (adminUrl) {
      const r = await sampleRouter(adminUrl, timeoutMs, dispatcher);
      if (typeof r === 'string') routerError = r;
      else routerBefore = r;
    }
    const urls = (opts.endpoints && opts.endpoints.length > 0 ? opts.endpoints.map((e) => normaliseEndpointUrl(e.split(';')[0]).url) : routerBefore?.endpoints.map((e) => e.url)) ?? [];
    if (urls.length === 0) {
      throw new KvrError('KVR_ERR_USAGE', routerError ? `no endpoints: pass --endpoints host:port,... (the router admin could not be read: ${routerError})` : 'no endpoints: pass --endpoints host:port,... or --router-admin http://router:9090');
    }
    const sampleAll = () => Promise.all(urls.map((u) => sampleEndpoint(u, timeoutMs, dispatcher)));
    const first: EndpointSample[] = windowMs > 0 ? await sampleAll() : [];

    const probes: ProbeResult[] = [];
    const directProbes = new Map<string, number>();
    if (opts.probe) {
      for (const u of urls) {
        const address = new URL(u).host;
        const model = opts.model ?? (await firstModel(u, timeoutMs, dispatcher));
        if (model === undefined) {
          probes.push({ target: address, ok: false, error: 'it lists no model on /v1/models' });
          continue;
        }
        probes.push(await probe(address, u, model, { timeoutMs, dispatcher, metricsUrl: u }));
        directProbes.set(address, 2);
      }
      const gateway = routerBefore?.router?.gatewayUrl;
      if (gateway) {
        const model = opts.model ?? (await firstModel(gateway, timeoutMs, dispatcher)) ?? (await firstModel(urls[0], timeoutMs, dispatcher));
        if (model !== undefined) probes.push(await probe('router', gateway, model, { timeoutMs, dispatcher }));
      }
    }
    if (windowMs > 0) await sleep(windowMs);
    const after = await sampleAll();
    let router: RouterStatsSample | null = null;
    if (adminUrl && !routerError) {
      const r = await sampleRouter(adminUrl, timeoutMs, dispatcher);
      if (typeof r === 'string') routerError = r;
      else router = r;
    }
    const findings = runChecks({
      before: windowMs > 0 ? first : undefined,
      after,
      router,
      routerBefore: windowMs > 0 ? routerBefore : undefined,
      routerError,
      blockSize: opts.blockSize,
      probes,
      directProbes,
    });
    findings.push(...(await runPdChecks({ pdExpected: opts.pdExpected ?? false, prefillEndpoints: opts.prefillEndpoints ?? [], decodeEndpoints: urls, model: opts.model, timeoutMs, dispatcher })));
    const counts: Record<FindingLevel, number> = { ok: 0, warn: 0, fail: 0, skip: 0 };
    for (const f of findings) counts[f.level]++;
    return { ok: counts.fail === 0, counts, findings, endpoints: after, router, probes, windowMs };
  } finally {
    await dispatcher.close();
  }
}
