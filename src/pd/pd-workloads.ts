/**
 * Workloads where prefill/decode disaggregation matters, for `bench/pd-bench.ts`:
 *
 * - `long-prompt`: unique prompts of 3,000-8,000 tokens, 32-128 output tokens (summarisation,
 *   RAG): prefill-heavy; in aggregated serving each long prefill stalls the decodes batched
 *   with it.
 * - `mixed`: half long-prompt requests (4,000-8,000 in, 64 out), half chat-like (200-600 in,
 *   256-512 out): the chat requests' inter-token latency suffers from the long prefills.
 * - `mooncake`: the bundled Mooncake-style trace (shared prefixes by hash id), arrival rate
 *   scaled by `rate` / its native rate.
 * Arrivals are Poisson at `rate` requests/s (seeded).
 */
import { KvrError } from '../core/errors.js';
import { seededRng } from '../core/rng.js';
import { loadTrace } from '../bench/trace.js';
import type { BenchRequest, Workload } from '../bench/types.js';
import { words } from '../bench/words.js';

/** Names of the P/D workloads. */
export const PD_WORKLOADS = ['long-prompt', 'mixed', 'mooncake'] as const;

/** Options of {@link pdWorkload}. */
export interface PdWorkloadOptions {
  requests: number;
  /** Mean arrival rate (requests/s); mooncake: multiplier of the trace's rate. */
  rate: number;
  seed: number;
  model: string;
}

function request(index: number, atMs: number, inTokens: number, outTokens: number, stream: number): BenchRequest {
  return {
    index, atMs, maxTokens: outTokens, session: `s${index}`, clientIp: `10.0.${(index >> 8) & 255}.${index & 255}`, phase: 'measured',
    prompt: () => {
      const w = words(stream, inTokens);
      return { api: 'completions', text: w.text, tokens: w.tokens };
    },
  };
}

/** Builds a P/D workload; throws KvrError (KVR_ERR_USAGE) on a bad name or parameter. */
export function pdWorkload(name: string, o: PdWorkloadOptions): Workload {
  if (!(o.requests >= 1) || !(o.rate > 0)) throw new KvrError('KVR_ERR_USAGE', 'requests must be >= 1 and rate > 0');
  if (name === 'mooncake') {
    const w = loadTrace({ rateScale: o.rate }, { model: o.model, requests: o.requests, seed: o.seed });
    return { ...w, name: 'mooncake', description: `bundled Mooncake-style trace, first ${o.requests} requests, rate x${o.rate}` };
  }
  const rng = seededRng(o.seed * 7919 + 13);
  const rnd = (): number => rng.next();
  const span = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const reqs: BenchRequest[] = [];
  let t = 0;
  for (let i = 0; i < o.requests; i++) {
    t += (-Math.log(1 - rnd()) / o.rate) * 1000;
    const stream = (o.seed * 1_000_003 + i * 7919) >>> 0;
    if (name === 'long-prompt') reqs.push(request(i, t, span(3000, 8000), span(32, 128), stream));
    else if (name === 'mixed') reqs.push(i % 2 === 0 ? request(i, t, span(4000, 8000), 64, stream) : request(i, t, span(200, 600), span(256, 512), stream));
    else throw new KvrError('KVR_ERR_USAGE', `unknown P/D workload "${name}"; choose one of ${PD_WORKLOADS.join(', ')}`);
  }
  return { name, description: `${name}: ${o.requests} requests, Poisson ${o.rate} req/s, seed ${o.seed}`, model: o.model, requests: reqs, params: { ...o } };
}
