/**
 * What `bench --engine live` needs to know about external endpoints of any engine (engine
 * adapters): the endpoint list with `;engine=` options, each endpoint's engine (given or
 * detected), resetting its cache the engine's way (or saying it cannot), and cache counters from
 * the engine's own numbers: its prefix-cache counters when it exports them (vLLM, SGLang), else
 * the cached and prompt tokens of each response it served (llama.cpp's usage / timings).
 */
import { request } from 'undici';
import type { EngineKind } from '../core/endpoint.js';
import { normaliseEndpointUrl, parseEndpointList } from '../datalayer/endpoint-pool.js';
import { parsePromText } from '../datalayer/prom-text.js';
import { mapNames } from '../engines/common.js';
import { detectEngine } from '../engines/detect.js';
import { adapterFor } from '../engines/registry.js';
import type { CacheCounters } from './types.js';

/** One external endpoint of a live run. */
export interface LiveEndpoint {
  url: string;
  engine: EngineKind;
  /** Server info read during detection (llama.cpp /props, SGLang /server_info). */
  info?: Record<string, unknown>;
  /** Whether its prefix-cache counters exist (else counters come from responses). */
  counters: boolean;
  /**
   * The id a kvroute simulator replica names itself by in `x-kvroute-sim-replica` (read from its
   * /metrics answer), so requests through a router that names no endpoint are still attributed.
   */
  simReplicaId?: string;
}

async function get(url: string): Promise<{ status: number; text: string; simReplica?: string }> {
  const res = await request(url, { method: 'GET', headersTimeout: 5000, bodyTimeout: 5000 });
  const sim = res.headers['x-kvroute-sim-replica'];
  return { status: res.statusCode, text: await res.body.text(), ...(typeof sim === 'string' ? { simReplica: sim } : {}) };
}

/** Parses `host:port[;engine=llamacpp]` items and detects the engine of those without one. */
export async function resolveLiveEndpoints(items: readonly string[]): Promise<LiveEndpoint[]> {
  return Promise.all(
    items.map(async (item) => {
      const spec = parseEndpointList(item.replace(/^https?:\/\//, (m) => m))[0];
      const url = normaliseEndpointUrl(spec.url).url;
      let engine = spec.engine;
      let info: Record<string, unknown> | undefined;
      const metrics = await get(`${url}/metrics`).catch(() => undefined);
      if (engine === undefined) {
        const d = await detectEngine((p) => get(url + p), metrics?.status === 200 ? metrics.text : undefined);
        engine = d.engine;
        info = d.info;
      } else {
        for (const p of adapterFor(engine).infoPaths) {
          const r = await get(url + p).catch(() => undefined);
          if (r?.status === 200) {
            try {
              info = JSON.parse(r.text) as Record<string, unknown>;
              break;
            } catch {
              /* not JSON */
            }
          }
        }
      }
      // Counters only when this server really exports them (newer llama.cpp builds do, older ones do not).
      const a = adapterFor(engine);
      const snap = metrics?.status === 200 ? a.snapshot(parsePromText(metrics.text, mapNames(a.metrics)).samples, 0) : undefined;
      return { url, engine, ...(info ? { info } : {}), counters: snap?.prefixQueries !== undefined && snap.prefixHits !== undefined, ...(metrics?.simReplica !== undefined ? { simReplicaId: metrics.simReplica } : {}) };
    }),
  );
}

/** Clears the endpoint's prefix cache the engine's way; a sentence saying what happened. */
export async function resetCache(ep: LiveEndpoint): Promise<{ ok: boolean; note: string }> {
  const a = adapterFor(ep.engine);
  const r = a.cacheReset;
  const post = async (path: string): Promise<number> => {
    try {
      const res = await request(`${ep.url}${path}`, { method: 'POST', headersTimeout: 10_000, bodyTimeout: 10_000 });
      await res.body.text();
      return res.statusCode;
    } catch {
      return 0;
    }
  };
  if (r.kind === 'none') return { ok: false, note: `${ep.url} (${a.label}): cannot reset its cache (${r.why}): caches carry over, results flagged` };
  if (r.kind === 'http') {
    const st = await post(r.path);
    return st === 200 ? { ok: true, note: `${ep.url} (${a.label}): POST ${r.path} cleared the cache` } : { ok: false, note: `${ep.url} (${a.label}): POST ${r.path} answered ${st || 'nothing'}: caches may be warm, results flagged` };
  }
  const total = Number(ep.info?.total_slots);
  const n = Number.isInteger(total) && total >= 1 ? total : 1;
  const codes = await Promise.all(Array.from({ length: n }, (_, i) => post(r.path.replace('{slot}', String(i)))));
  // Newer llama.cpp builds also keep evicted prompts in host RAM (cache model 'blocks'); no API clears that.
  if (codes.every((c) => c === 200) && a.cacheModel(ep.info, undefined).kind === 'blocks') {
    return { ok: false, note: `${ep.url} (${a.label}): erased its ${n} slots, but this build's host-memory prompt cache (--cache-ram) keeps earlier prompts and no API clears it: caches carry over, results flagged (run llama-server with --cache-ram 0 to compare strategies on cold caches)` };
  }
  if (codes.every((c) => c === 200)) return { ok: true, note: `${ep.url} (${a.label}): erased its ${n} slots` };
  return { ok: false, note: `cannot reset on ${a.label} (${ep.url}: POST /slots/{id}?action=erase answered ${[...new Set(codes)].join(', ')}; llama-server allows it only with --slot-save-path): caches carry over, results flagged` };
}

/** Cumulative cache counters of one endpoint from its own /metrics (engines with counters). */
export async function readEngineCounters(ep: LiveEndpoint): Promise<CacheCounters> {
  const a = adapterFor(ep.engine);
  const r = await get(`${ep.url}/metrics`);
  if (r.status !== 200) throw new Error(`${ep.url}/metrics answered ${r.status}`);
  const snap = a.snapshot(parsePromText(r.text, mapNames(a.metrics)).samples, 0);
  return { queries: snap?.prefixQueries ?? 0, hits: snap?.prefixHits ?? 0 };
}
