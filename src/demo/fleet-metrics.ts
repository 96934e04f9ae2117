/**
 * Reads the prefix-cache counters of each replica from its own `/metrics` (the same numbers the
 * seeds' tests read), so phase results are deltas of what the engines report, not of what the
 * router believes.
 */
import { request } from 'undici';
import { parsePromText } from '../datalayer/prom-text.js';
import { namesFor, toEndpointMetrics } from '../datalayer/metric-maps.js';

export interface CacheCounters {
  queries: number;
  hits: number;
}

/** Scrapes `url/metrics` and returns vLLM's prefix-cache counters (tokens). */
export async function readCacheCounters(url: string): Promise<CacheCounters> {
  const res = await request(`${url}/metrics`);
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url}/metrics answered ${res.statusCode}`);
  const snap = toEndpointMetrics('vllm', parsePromText(text, namesFor('vllm')).samples, 0);
  return { queries: snap?.prefixQueries ?? 0, hits: snap?.prefixHits ?? 0 };
}

export async function readFleetCounters(urls: readonly string[]): Promise<CacheCounters[]> {
  return Promise.all(urls.map(readCacheCounters));
}

/** Per-replica delta `after - before`. */
export function counterDeltas(before: readonly CacheCounters[], after: readonly CacheCounters[]): CacheCounters[] {
  return after.map((a, i) => ({ queries: a.queries - before[i].queries, hits: a.hits - before[i].hits }));
}
