/**
 * Held-out workloads of `kvroute bench` (docs/benchmarks.md "held out"): none of them was used to
 * choose the default profile's weights.
 *
 * | name       | what |
 * |------------|------|
 * | tool-agent | agents sharing one long tool preamble; each agent runs many short turns (call, result) |
 * | rag        | a few hundred documents of Zipf popularity, several questions each |
 * | azure      | Azure LLM inference 2023 (conv or code) arrivals and lengths, with a stated prefix structure |
 *
 * Prompts are built from the bench's word streams (words.ts), so the simulator's tokenizer gives
 * exactly the stated token counts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KvrError } from '../core/errors.js';
import { seededRng, type Rng } from '../core/rng.js';
import type { BenchRequest, Workload } from './types.js';
import { concat, mix32, streamId, words } from './words.js';

/** Options of the held-out workloads (each has its defaults). */
export interface HeldoutOptions {
  seed?: number;
  model: string;
  requests?: number;
  rate?: number;
  /** tool-agent: agents, turns per agent, preamble tokens, think time (s). */
  users?: number;
  turns?: number;
  systemTokens?: number;
  thinkTimeS?: number;
  /** azure: conv or code, and the folder holding the CSV files. */
  azureKind?: 'conv' | 'code';
  traceDir?: string;
}

const expGap = (rng: Rng, rate: number) => (-Math.log(1 - rng.next()) / rate) * 1000;
const ip = (i: number) => `10.3.${(i >> 8) & 255}.${i & 255}`;

/**
 * tool-agent: `users` agents (default 64) start as a Poisson process at `rate` agents/s (default
 * 4); all share one tool preamble of `systemTokens` (default 3,000) and each sends `turns`
 * (default 10) requests: preamble + its task (200 tokens) + every earlier step (tool call 30 +
 * tool result 150 tokens each), output 30 tokens (the next call), think (tool latency) time
 * exponential with mean `thinkTimeS` (default 1 s). Chat API.
 */
export function toolAgent(o: HeldoutOptions): Workload {
  const seed = o.seed ?? 1;
  const U = o.users ?? 64;
  const T = o.turns ?? 10;
  const S = o.systemTokens ?? 3000;
  const think = o.thinkTimeS ?? 1;
  const rate = o.rate ?? 4;
  const rng = seededRng(seed * 977 + 11);
  const reqs: Omit<BenchRequest, 'index'>[] = [];
  let start = 0;
  for (let u = 0; u < U; u++) {
    start += expGap(rng, rate);
    let t = start;
    for (let k = 0; k < T; k++) {
      if (k > 0) t += expGap(rng, 1 / think);
      const turn = k;
      reqs.push({
        atMs: t, maxTokens: 30, session: `agent-${u}`, clientIp: ip(u), phase: 'measured',
        prompt: () => {
          const pre = words(streamId(`tool-agent/${seed}/preamble`), S);
          const parts = [pre, words(streamId(`tool-agent/${seed}/task/${u}`), 200)];
          for (let j = 0; j < turn; j++) {
            parts.push(words(streamId(`tool-agent/${seed}/call/${u}/${j}`), 30), words(streamId(`tool-agent/${seed}/result/${u}/${j}`), 150));
          }
          const all = concat(...parts);
          return { api: 'completions', text: all.text, tokens: all.tokens };
        },
      });
    }
  }
  return finish('tool-agent', `tool agents: ${U} agents x ${T} steps, shared tool preamble ${S} tokens, task 200, call 30 + result 150 per step, output 30, think ${think} s, agents start at ${rate}/s`, o, reqs, { users: U, turns: T, systemTokens: S, thinkTimeS: think, rate });
}

/**
 * rag: `requests` (default 1,000) questions at `rate` req/s (default 12, Poisson); each picks one
 * of 300 documents by Zipf popularity (exponent 1.1) and one of 8 questions about it; prompt =
 * instructions (100 tokens, shared by all) + the document (1,200-2,400 tokens) + the question
 * (40 tokens), output 120 tokens. Completions API.
 */
export function rag(o: HeldoutOptions): Workload {
  const seed = o.seed ?? 1;
  const n = o.requests ?? 1000;
  const rate = o.rate ?? 12;
  const D = 300;
  const rng = seededRng(seed * 1543 + 7);
  const cdf: number[] = [];
  let z = 0;
  for (let d = 1; d <= D; d++) cdf.push((z += 1 / d ** 1.1));
  const pick = () => {
    const x = rng.next() * z;
    let lo = 0;
    let hi = D - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const reqs: Omit<BenchRequest, 'index'>[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += expGap(rng, rate);
    const doc = pick();
    const q = Math.floor(rng.next() * 8);
    const docLen = 1200 + (mix32(doc + 1) % 1201);
    reqs.push({
      atMs: t, maxTokens: 120, session: `doc-${doc}`, clientIp: ip(i % 512), phase: 'measured',
      prompt: () => {
        const all = concat(words(streamId(`rag/${seed}/instructions`), 100), words(streamId(`rag/${seed}/doc/${doc}`), docLen), words(streamId(`rag/${seed}/q/${doc}/${q}`), 40));
        return { api: 'completions', text: all.text, tokens: all.tokens };
      },
    });
  }
  return finish('rag', `RAG: ${n} questions at ${rate} req/s over 300 documents (Zipf 1.1, 1,200-2,400 tokens), 8 questions each, shared instructions 100, question 40, output 120`, o, reqs, { requests: n, rate, documents: 300, zipf: 1.1 });
}

/**
 * azure: the Azure LLM inference trace (2023; `conv` default, or `code`): arrival times (scaled
 * by `rate` / the trace's mean rate when `rate` is given) and prompt / output lengths, first
 * `requests` rows (default 2,000). The traces carry no prefix information; the structure stated
 * here is: every prompt starts with a 256-token system prompt shared by all requests, then,
 * for 60 % of the requests, one of 200 "conversation histories" picked by Zipf (1.0) popularity,
 * as long as the trace's context allows (up to 60 % of it), then unique tokens to the trace's
 * ContextTokens. Output = GeneratedTokens (at least 1).
 */
export function azure(o: HeldoutOptions): Workload {
  const seed = o.seed ?? 1;
  const kind = o.azureKind ?? 'conv';
  const file = join(o.traceDir ?? defaultTraceDir(), `AzureLLMInferenceTrace_${kind}.csv`);
  if (!existsSync(file)) throw new KvrError('KVR_ERR_USAGE', `Azure trace ${file} not found; pass its folder (the CSVs of Azure/AzurePublicDataset data/)`);
  const lines = readFileSync(file, 'utf8').split('\n').slice(1).filter((l) => l.trim().length > 0);
  const n = Math.min(o.requests ?? 2000, lines.length);
  const rows = lines.slice(0, n).map((l) => {
    const [ts, ctx, gen] = l.split(',');
    return { t: Date.parse(ts.replace(' ', 'T') + 'Z'), ctx: Math.max(1, Number(ctx)), gen: Math.max(1, Number(gen)) };
  });
  if (rows.some((r) => !Number.isFinite(r.t) || !Number.isFinite(r.ctx))) throw new KvrError('KVR_ERR_USAGE', `${file}: rows must be TIMESTAMP,ContextTokens,GeneratedTokens`);
  const t0 = rows[0].t;
  const span = Math.max(1, rows[rows.length - 1].t - t0);
  const scale = o.rate !== undefined ? (n / (span / 1000)) / o.rate : 1;
  const rng = seededRng(seed * 31337 + 5);
  const H = 200;
  let z = 0;
  const cdf: number[] = [];
  for (let h = 1; h <= H; h++) cdf.push((z += 1 / h));
  const reqs: Omit<BenchRequest, 'index'>[] = rows.map((r, i) => {
    const hist = rng.next() < 0.6 ? cdf.findIndex((c) => c >= rng.next() * z) : -1;
    const sys = Math.min(256, r.ctx);
    const histLen = hist >= 0 ? Math.min(Math.floor(0.6 * r.ctx), 400 + (mix32(hist + 7) % 1600)) : 0;
    const histTok = Math.max(0, Math.min(histLen, r.ctx - sys));
    const rest = r.ctx - sys - histTok;
    return {
      atMs: (r.t - t0) * scale, maxTokens: Math.min(r.gen, 2048), session: hist >= 0 ? `history-${hist}` : `single-${i}`, clientIp: ip(i % 1024), phase: 'measured',
      prompt: () => {
        const all = concat(words(streamId(`azure/${seed}/system`), sys), words(streamId(`azure/${seed}/history/${hist}`), histTok), words(streamId(`azure/${seed}/unique/${i}`), rest));
        return { api: 'completions', text: all.text, tokens: all.tokens };
      },
    };
  });
  return finish('azure', `Azure LLM 2023 ${kind} trace: first ${n} requests, arrivals x${(1 / scale).toFixed(2)} rate, stated prefix structure: shared 256-token system prompt + 60 % reuse one of 200 Zipf histories (<= 60 % of the context) + unique rest`, o, reqs, { kind, requests: n, rateScale: 1 / scale });
}

function defaultTraceDir(): string {
  for (const d of ['../shared/traces/azure_llm_2023', 'shared/traces/azure_llm_2023']) if (existsSync(d)) return d;
  return '../shared/traces/azure_llm_2023';
}

function finish(name: string, description: string, o: HeldoutOptions, reqs: Omit<BenchRequest, 'index'>[], params: Record<string, unknown>): Workload {
  const sorted = reqs.slice().sort((a, b) => a.atMs - b.atMs);
  const cap = o.requests !== undefined && name !== 'rag' && name !== 'azure' ? Math.min(o.requests, sorted.length) : sorted.length;
  return {
    name,
    description,
    model: o.model,
    requests: sorted.slice(0, cap).map((r, index) => ({ ...r, index })),
    params: { ...params, requests: cap, seed: o.seed ?? 1 },
  };
}
