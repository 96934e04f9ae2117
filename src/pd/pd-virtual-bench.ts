/**
 * P/D against aggregated serving at the same GPU count, in simulated time (deterministic for a
 * seed): the real scheduler (llm-d's sample P/D profiles, or the same scorers in one profile for
 * aggregated), real {@link SimEngine}s (one per GPU), and the P/D data path of the simulator:
 *
 *   aggregated: schedule -> engine.submit on the pick (prefill and decode share its steps)
 *   P/D:        schedule (decode first; the prefix-based decider) ->
 *               prefill engine: prompt, max_tokens 1, blocks kept and pinned ->
 *               decode engine: reserve the blocks not cached there, wait the transfer time
 *               (KV bytes per token x tokens / link bandwidth), cache them, release the pins,
 *               then submit: the decode engine recomputes only the last partial block
 *
 * Per request it records TTFT, every inter-token gap and TPOT; goodput counts requests per second
 * that met both SLOs (TTFT and TPOT), as DistServe defines it.
 */
import { ManualClock } from '../core/clock.js';
import type { Endpoint, EndpointRole } from '../core/endpoint.js';
import type { InferenceRequest } from '../core/request.js';
import { seededRng } from '../core/rng.js';
import { loadConfig } from '../config/load-config.js';
import { createScheduler } from '../scheduling/scheduler.js';
import { SimEngine } from '../sim/engine.js';
import { getProfile, type ProfileId } from '../sim/profiles.js';
import { reserveKv } from '../sim/pd/kv-receiver.js';
import { PinStore } from '../sim/pd/pin-store.js';
import { transferMs, type KvLink } from '../sim/pd/transfer-model.js';
import { BENCH_TOKENS_MEMO } from '../bench/precise-setup.js';
import { builtinTokenizer, promptTokens, toInferenceRequest } from '../bench/prompt.js';
import type { Workload } from '../bench/types.js';

/** GPUs of one run: prefill = 0 is aggregated serving on `decode` GPUs. */
export interface PdFleetShape {
  prefill: number;
  decode: number;
}

/** Options of {@link runPdVirtual}. */
export interface PdBenchOptions {
  profile: ProfileId;
  link: KvLink;
  seed: number;
  /** Decider threshold (llm-d sample: 16). */
  nonCachedTokens?: number;
  sloTtftMs: number;
  sloTpotMs: number;
  maxNumBatchedTokens?: number;
  /** Engine metrics refresh period (ms), like the gateway's scrape. Default 50. */
  scrapeIntervalMs?: number;
}

/** Percentiles of a sample (ms). */
export interface Pcts {
  p50: number;
  p90: number;
  p99: number;
}

/** What one run measured. */
export interface PdBenchResult {
  label: string;
  gpus: number;
  requests: number;
  ok: number;
  ttft: Pcts;
  itl: Pcts;
  tpot: Pcts;
  /** Requests per second meeting both SLOs. */
  goodputRps: number;
  /** Share of requests meeting both SLOs. */
  sloAttainment: number;
  outputTokS: number;
  disaggregated: number;
  /** Pinned blocks left on prefill engines at the end (must be 0). */
  pinsLeft: number;
  durationS: number;
}

const SCORERS = `- type: prefix-cache-scorer
- type: queue-scorer
- type: max-score-picker
`;
const PROFILE_PLUGINS = `  - pluginRef: max-score-picker
  - pluginRef: prefix-cache-scorer
    weight: 2
  - pluginRef: queue-scorer
    weight: 1
`;

function configText(shape: PdFleetShape, nonCached: number): string {
  const head = 'apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n';
  if (shape.prefill === 0) return `${head}${SCORERS}schedulingProfiles:\n- name: default\n  plugins:\n${PROFILE_PLUGINS}`;
  return `${head}${SCORERS}- type: prefill-filter\n- type: decode-filter\n- type: prefix-based-pd-decider\n  parameters:\n    nonCachedTokens: ${nonCached}\n- type: disagg-profile-handler\n  parameters:\n    deciders:\n      prefill: prefix-based-pd-decider\nschedulingProfiles:\n- name: prefill\n  plugins:\n  - pluginRef: prefill-filter\n${PROFILE_PLUGINS}- name: decode\n  plugins:\n  - pluginRef: decode-filter\n${PROFILE_PLUGINS}`;
}

function pcts(xs: number[]): Pcts {
  if (xs.length === 0) return { p50: NaN, p90: NaN, p99: NaN };
  const s = Float64Array.from(xs).sort();
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

interface Rec {
  at: number;
  ttft?: number;
  last?: number;
  out: number;
  end?: number;
  ok: boolean;
}

/** Runs `workload` on `shape` in simulated time; see the file comment. */
export async function runPdVirtual(workload: Workload, shape: PdFleetShape, o: PdBenchOptions): Promise<PdBenchResult> {
  const clock = new ManualClock(0);
  const profile = getProfile(o.profile);
  const tokenizer = builtinTokenizer();
  const n = shape.prefill + shape.decode;
  const engines = Array.from({ length: n }, () => new SimEngine({
    clock, stepModel: profile.step, numGpuBlocks: profile.numGpuBlocks, maxNumBatchedTokens: o.maxNumBatchedTokens, seed: o.seed,
    sampleToken: (r) => tokenizer.sampleToken(r), eosTokenId: tokenizer.eosTokenId,
  }));
  const pins = engines.map((e) => new PinStore(clock, 480_000, (b) => e.blockManager.free(b)));
  const role = (i: number): EndpointRole => (shape.prefill === 0 ? 'both' : i < shape.prefill ? 'prefill' : 'decode');
  const endpoints: Endpoint[] = engines.map((_, i) => ({
    id: `gpu-${i}`, address: `gpu-${i}:8000`, url: `virtual://gpu-${i}`, role: role(i), engine: 'vllm', index: i, labels: {},
    metrics: { waiting: 0, running: 0, kvUsage: 0, updatedAt: 0 }, models: [workload.model], healthy: true,
  }));
  const scheduler = createScheduler(loadConfig({ text: configText(shape, o.nonCachedTokens ?? 16) }), { clock, rng: seededRng(o.seed * 31 + 7) });
  const scrape = o.scrapeIntervalMs ?? 50;
  let lastScrape = -Infinity;
  const refresh = (): void => {
    const now = clock.now();
    if (now - lastScrape < scrape) return;
    lastScrape = now;
    engines.forEach((e, i) => {
      const s = e.stats();
      endpoints[i].metrics = { waiting: s.waiting, running: s.running, kvUsage: s.kvUsage, blockSize: s.blockSize, numGpuBlocks: s.numGpuBlocks, updatedAt: now };
    });
  };
  const recs: Rec[] = [];
  const itl: number[] = [];
  let disaggregated = 0;

  const decode = (ireq: InferenceRequest, ep: Endpoint, tokens: number[], maxTokens: number, rec: Rec): void => {
    engines[ep.index].submit({ id: ireq.id, promptTokens: tokens, maxTokens, ignoreEos: true }, {
      onFirstToken: () => {
        rec.ttft = clock.now() - rec.at;
        scheduler.onFirstToken(ireq, ep);
      },
      onToken: () => {
        const now = clock.now();
        if (rec.last !== undefined) itl.push(now - rec.last);
        rec.last = now;
        rec.out++;
      },
      onFinish: (r) => {
        rec.ok = true;
        rec.end = clock.now();
        scheduler.onComplete(ireq, ep, { ok: true, status: 200, promptTokens: r.promptTokens, cachedTokens: r.cachedTokens, completionTokens: r.completionTokens });
      },
      onError: () => {
        rec.end = clock.now();
        scheduler.onComplete(ireq, ep, { ok: false, status: 503 });
      },
    });
  };

  for (const req of workload.requests) {
    clock.advanceTo(req.atMs);
    refresh();
    const p = req.prompt();
    const tokens = promptTokens(p, tokenizer);
    const ireq = toInferenceRequest(workload.model, req, p, req.atMs);
    ireq.memo.set(BENCH_TOKENS_MEMO, tokens);
    const rec: Rec = { at: req.atMs, out: 0, ok: false };
    recs.push(rec);
    const res = await scheduler.schedule(ireq, endpoints);
    const d = res.endpoint;
    const pick = res.prefill;
    if (pick === undefined) {
      decode(ireq, d, tokens, req.maxTokens, rec);
      continue;
    }
    disaggregated++;
    const pi = pick.endpoint.index;
    engines[pi].submit({ id: ireq.id, promptTokens: tokens, maxTokens: 1, ignoreEos: true, holdBlocks: true }, {
      onFirstToken: () => scheduler.onFirstToken(ireq, pick.endpoint),
      onFinish: (r) => {
        scheduler.onComplete(ireq, pick.endpoint, { ok: true, status: 200, promptTokens: r.promptTokens, cachedTokens: r.cachedTokens, completionTokens: 1 });
        pins[pi].pin(ireq.id, r.heldBlocks ?? []);
        const rv = reserveKv(engines[d.index].blockManager, tokens);
        if (typeof rv === 'string') {
          pins[pi].release(ireq.id);
          return decode(ireq, d, tokens, req.maxTokens, rec);
        }
        clock.setTimeout(() => {
          rv.commit();
          pins[pi].release(ireq.id);
          decode(ireq, d, tokens, req.maxTokens, rec);
        }, transferMs(o.link, rv.tokensToPull));
      },
      onError: () => {
        scheduler.onComplete(ireq, pick.endpoint, { ok: false, status: 503 });
        decode(ireq, d, tokens, req.maxTokens, rec);
      },
    });
  }
  while (clock.nextAt() !== undefined) clock.runUntilIdle(10_000_000);

  const t0 = recs.length > 0 ? recs[0].at : 0;
  const tEnd = Math.max(t0, ...recs.map((r) => r.end ?? 0));
  const durationS = (tEnd - t0) / 1000;
  const ok = recs.filter((r) => r.ok);
  const tpots = ok.filter((r) => r.out > 1).map((r) => (r.end! - r.at - r.ttft!) / (r.out - 1));
  const good = ok.filter((r) => r.ttft! <= o.sloTtftMs && (r.out <= 1 || (r.end! - r.at - r.ttft!) / (r.out - 1) <= o.sloTpotMs)).length;
  return {
    label: shape.prefill === 0 ? `aggregated ${shape.decode}` : `P/D ${shape.prefill}P:${shape.decode}D`,
    gpus: n,
    requests: recs.length,
    ok: ok.length,
    ttft: pcts(ok.map((r) => r.ttft!)),
    itl: pcts(itl),
    tpot: pcts(tpots),
    goodputRps: durationS > 0 ? good / durationS : 0,
    sloAttainment: recs.length > 0 ? good / recs.length : 0,
    outputTokS: durationS > 0 ? ok.reduce((s, r) => s + r.out, 0) / durationS : 0,
    disaggregated,
    pinsLeft: pins.reduce((s, p) => s + p.pinnedBlocks, 0),
    durationS,
  };
}
