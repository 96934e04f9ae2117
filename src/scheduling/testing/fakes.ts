/**
 * Fake endpoints and requests for unit tests of the scheduling framework (no I/O).
 */
import type { Endpoint, EndpointMetrics } from '../../core/endpoint.js';
import type { InferenceRequest } from '../../core/request.js';

/** An endpoint with dense `index` and the given metrics (defaults: idle). */
export function fakeEndpoint(index: number, metrics: Partial<EndpointMetrics> = {}, id = `ep-${index}`): Endpoint {
  return {
    id,
    address: `10.0.0.${index + 1}:8000`,
    url: `http://10.0.0.${index + 1}:8000`,
    role: 'both',
    engine: 'vllm',
    index,
    labels: {},
    metrics: { waiting: 0, running: 0, kvUsage: 0, updatedAt: 1, ...metrics },
    models: [],
    healthy: true,
  };
}

/** `n` idle endpoints with indices 0..n-1. */
export function fakeEndpoints(n: number): Endpoint[] {
  return Array.from({ length: n }, (_, i) => fakeEndpoint(i));
}

let seq = 0;

/** A completions request with `promptText`. */
export function fakeRequest(promptText: string, opts: { headers?: Record<string, string>; clientIp?: string; model?: string } = {}): InferenceRequest {
  return {
    id: `req-${++seq}`,
    api: 'completions',
    model: opts.model ?? 'test-model',
    body: {},
    promptText,
    maxTokens: 16,
    stream: false,
    clientIp: opts.clientIp ?? '192.0.2.1',
    headers: opts.headers ?? {},
    arrivedAt: 0,
    memo: new Map(),
  };
}

/** Deterministic pseudo-random text of `chars` characters (distinct per `seed`). */
export function fakeText(chars: number, seed: number): string {
  let s = '';
  let x = (seed * 2654435761) >>> 0 || 1;
  while (s.length < chars) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    s += `w${(x % 100000).toString(36)} `;
  }
  return s.slice(0, chars);
}
