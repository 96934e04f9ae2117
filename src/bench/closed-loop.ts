/**
 * Closed-loop run of the virtual engine: saturation throughput. `users` clients each send their
 * next request the moment their previous one completes (no think time), so the fleet always
 * holds `users` requests; the figure is completed output tokens (and requests) per second of
 * simulated time. Open-loop runs measure latency at an offered rate; this measures capacity.
 *
 *   requests are taken in the workload's order (arrival times ignored) by whichever client is free
 *   client c starts at time 0; on completion (or failure) it takes the next request
 *   each send: refresh endpoint metrics (50 ms scrape), deliver KV events, schedule, submit
 *
 * Same scheduler, and the same fleet (engines, scrape, KV-event delivery: {@link createVirtualFleet})
 * as {@link runVirtual} (virtual-runner.ts), driven by the same ManualClock; kept apart so the
 * open-loop runner stays as it is. A conversation's turns may overlap here (the clients are
 * slots, not users).
 */
import { ManualClock } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { KvrError } from '../core/errors.js';
import { seededRng } from '../core/rng.js';
import type { InferenceRequest } from '../core/request.js';
import { BENCH_TOKENS_MEMO, type PreciseSetupFactory } from './precise-setup.js';
import { builtinTokenizer, promptTokens, toInferenceRequest } from './prompt.js';
import type { Strategy } from './strategies.js';
import type { Workload } from './types.js';
import { createVirtualFleet, type FleetSpec } from './virtual-fleet.js';

/** Saturation figures of one strategy. */
export interface SaturationFigures {
  users: number;
  requests: number;
  failed: number;
  /** Completed requests per second (simulated). */
  requestsPerSecond: number;
  /** Output tokens per second (simulated). */
  outputTokensPerSecond: number;
  /** Fleet hit rate (tokens) over the run. */
  hitRate: number;
  /** Mean TTFT under saturation (ms). */
  ttftMeanMs: number;
  durationS: number;
}

/** Runs `workload` closed-loop with `users` clients; `undefined` when the strategy needs KV events that are not available. */
export async function runClosedLoop(
  workload: Workload,
  strategy: Strategy,
  fleet: FleetSpec,
  users: number,
  o: { precise?: PreciseSetupFactory; scrapeIntervalMs?: number } = {},
): Promise<SaturationFigures | undefined> {
  if (!Number.isInteger(users) || users < 1) throw new KvrError('KVR_ERR_USAGE', `--closed-loop needs a positive number of users; got ${users}`);
  const clock = new ManualClock(0);
  const tokenizer = builtinTokenizer();
  const n = fleet.replicas;
  const ids = Array.from({ length: n }, (_, i) => `sim-${i}`);
  const precise = strategy.kvEvents && o.precise ? await o.precise({ mode: 'virtual', clock, model: workload.model, blockSize: fleet.blockSize, endpoints: ids.map((id) => ({ id })) }) : undefined;
  if (strategy.kvEvents && precise === undefined && strategy.name === 'llm-d-precise') return undefined;
  const { engines, endpoints, refresh, flush } = createVirtualFleet(fleet, {
    clock, tokenizer, model: workload.model, ...(o.scrapeIntervalMs !== undefined ? { scrapeIntervalMs: o.scrapeIntervalMs } : {}), ...(precise?.sink !== undefined ? { sink: precise.sink } : {}),
  });
  const scheduler = strategy.build(clock, seededRng(fleet.seed * 31 + 7), precise?.services);

  const reqs = workload.requests;
  let next = 0;
  let free = Math.min(users, reqs.length); // clients ready to send now
  let completed = 0;
  let failed = 0;
  let outTok = 0;
  let ttftSum = 0;
  let ttftN = 0;
  let lastDone = 0;
  while (next < reqs.length || clock.nextAt() !== undefined) {
    if (free === 0 || next >= reqs.length) {
      const t = clock.nextAt();
      if (t === undefined) break;
      clock.advanceTo(t);
      continue;
    }
    free--;
    const req = reqs[next++];
    await flush();
    refresh();
    const p = req.prompt();
    const tokens = promptTokens(p, tokenizer);
    const at = clock.now();
    const ireq: InferenceRequest = toInferenceRequest(workload.model, req, p, at);
    ireq.memo.set(BENCH_TOKENS_MEMO, tokens);
    let ep: Endpoint;
    try {
      ep = (await scheduler.schedule(ireq, endpoints)).endpoint;
    } catch {
      failed++;
      free++;
      continue;
    }
    const done = () => {
      free++;
      lastDone = clock.now();
    };
    engines[ep.index].submit(
      { id: ireq.id, promptTokens: tokens, maxTokens: req.maxTokens, ignoreEos: true },
      {
        onFirstToken: () => {
          ttftSum += clock.now() - at;
          ttftN++;
          scheduler.onFirstToken(ireq, ep);
        },
        onFinish: (r) => {
          completed++;
          outTok += r.completionTokens;
          scheduler.onComplete(ireq, ep, { ok: true, status: 200, promptTokens: r.promptTokens, cachedTokens: r.cachedTokens, completionTokens: r.completionTokens });
          done();
        },
        onError: () => {
          failed++;
          scheduler.onComplete(ireq, ep, { ok: false, status: 503 });
          done();
        },
      },
    );
  }
  await flush();
  await precise?.close();
  let q = 0;
  let h = 0;
  for (const e of engines) {
    const s = e.stats();
    q += s.prefixCacheQueries;
    h += s.prefixCacheHits;
  }
  const durS = lastDone / 1000;
  return {
    users,
    requests: reqs.length,
    failed,
    requestsPerSecond: durS > 0 ? completed / durS : 0,
    outputTokensPerSecond: durS > 0 ? outTok / durS : 0,
    hitRate: q > 0 ? h / q : 0,
    ttftMeanMs: ttftN > 0 ? ttftSum / ttftN : 0,
    durationS: durS,
  };
}
