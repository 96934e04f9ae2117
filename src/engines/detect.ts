/**
 * Engine detection per endpoint, from what it serves (first conclusive step wins):
 *
 *   1. the metric-name prefixes of its /metrics text (`vllm:`, `sglang:`, `llamacpp:`): the
 *      prefix with the most sample lines names the engine;
 *   2. `owned_by` of its `/v1/models` entries (`vllm`, `sglang`, `llamacpp`);
 *   3. llama.cpp's `GET /props` (`total_slots`, `build_info`), SGLang's `GET /server_info` or
 *      `GET /get_server_info` (`server_args`);
 *   4. else a generic OpenAI-compatible server.
 *
 * Pure functions plus one driver ({@link detectEngine}) taking the HTTP getter, so the scraper,
 * doctor and bench share it.
 */
import type { EngineKind } from '../core/endpoint.js';
import { obj } from './common.js';
import { ENGINE_ADAPTERS, adapterFor } from './registry.js';

/** The engine whose metric prefix has the most lines in `text`, undefined when none has any. */
export function engineFromMetricsText(text: string): EngineKind | undefined {
  let best: EngineKind | undefined;
  let bestN = 0;
  for (const a of ENGINE_ADAPTERS) {
    if (a.metricPrefix === undefined) continue;
    let n = 0;
    let at = 0;
    const needle = `\n${a.metricPrefix}`;
    const t = `\n${text}`;
    while ((at = t.indexOf(needle, at)) >= 0) {
      n++;
      at += needle.length;
    }
    if (n > bestN) {
      bestN = n;
      best = a.kind;
    }
  }
  return best;
}

/** The engine named by `owned_by` in a `/v1/models` body. */
export function engineFromModels(body: unknown): EngineKind | undefined {
  const data = obj(body)?.data;
  if (!Array.isArray(data)) return undefined;
  for (const m of data) {
    const owner = obj(m)?.owned_by;
    if (typeof owner !== 'string') continue;
    const a = ENGINE_ADAPTERS.find((x) => x.modelsOwner !== undefined && x.modelsOwner === owner.toLowerCase());
    if (a) return a.kind;
  }
  return undefined;
}

/** The engine a server-info body identifies (`/props` of llama.cpp, `/server_info` of SGLang). */
export function engineFromInfo(path: string, body: unknown): EngineKind | undefined {
  const o = obj(body);
  if (!o) return undefined;
  if (path === '/props' && ('total_slots' in o || 'build_info' in o || 'default_generation_settings' in o)) return 'llamacpp';
  if ((path === '/server_info' || path === '/get_server_info') && ('server_args' in o || 'max_total_num_tokens' in o || 'tokenizer_path' in o)) return 'sglang';
  return undefined;
}

/** What detection found and how. */
export interface Detection {
  engine: EngineKind;
  /** `metrics`, `models`, `/props`, `/server_info`, `/get_server_info` or `none` (generic). */
  via: string;
  /** The server-info body read on the way (for the cache model), if any. */
  info?: Record<string, unknown>;
}

/** HTTP GET as the caller does it: status and body text; rejects on a network error. */
export type Getter = (path: string) => Promise<{ status: number; text: string }>;

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Detects the engine of one endpoint; `metricsText` is its /metrics body when already read.
 * Never throws for a probe that fails (a 404 or a refused probe just is not conclusive).
 */
export async function detectEngine(get: Getter, metricsText: string | undefined): Promise<Detection> {
  const tryGet = async (path: string): Promise<unknown> => {
    try {
      const r = await get(path);
      return r.status === 200 ? parse(r.text) : undefined;
    } catch {
      return undefined;
    }
  };
  let engine = metricsText !== undefined ? engineFromMetricsText(metricsText) : undefined;
  let via = 'metrics';
  if (engine === undefined) {
    engine = engineFromModels(await tryGet('/v1/models'));
    via = 'models';
  }
  if (engine === undefined) {
    for (const path of ['/props', '/server_info', '/get_server_info']) {
      const body = await tryGet(path);
      engine = engineFromInfo(path, body);
      if (engine !== undefined) return { engine, via: path, info: obj(body) };
    }
  }
  if (engine === undefined) return { engine: 'openai', via: 'none' };
  // Read the server info the cache model needs (llama.cpp slots, SGLang capacity).
  for (const path of adapterFor(engine).infoPaths) {
    const info = obj(await tryGet(path));
    if (info) return { engine, via, info };
  }
  return { engine, via };
}
