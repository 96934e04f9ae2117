/**
 * Micro-benchmark of the scheduling hot path with kvroute's default profile.
 *
 * Approximate routing (no KV events; the precise scorer's embedded approximate scorer), 16 and
 * 64 endpoints, 32,000-character (~8,000-token) prompts sharing 32 popular prefixes:
 *   - hash: the approximate block keys of one prompt,
 *   - schedule (after hashing): schedule() with the keys already memoized on the request,
 *   - schedule incl. hashing.
 *
 * Precise routing (the router's own tokenizer with the real Llama 3 tokenizer.json, the memory
 * block index fed BlockStored events), 16 and 64 endpoints, a ~7,000-token document held by one
 * endpoint:
 *   - warm: the same chat request again (tokenization served by the prefix token cache),
 *   - new question: the known document plus a new ~700-token question,
 *   - cold: a document never seen.
 * Each precise case runs two setups side by side, interleaved: the router's tokenizer with its
 * fast BPE path (the default) and with @huggingface/tokenizers alone (`fastBpe: false`, the
 * previous code path), and reports p50 / p90 / p99 wall time of schedule() (tokenization, key
 * computation and the index lookup included), process CPU per schedule() and the p50 ratio.
 *
 * The approximate case also reports CPU time per request incl. hashing (process.cpuUsage, which
 * holds on a busy machine better than wall time). `--baseline DIR` (another build's root, e.g. of
 * the previous commit) runs the approximate case with that build too, alternating, for a
 * before/after in one run.
 *
 *   npm run bench:scheduler            (builds first)
 *   node dist/bench/scheduler-bench.js [--json] [--iters 60] [--baseline DIR] [--precise-only | --approximate-only]
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ManualClock } from '../src/core/clock.js';
import type { Endpoint } from '../src/core/endpoint.js';
import type { InferenceRequest } from '../src/core/request.js';
import { randInt, seededRng, type Rng } from '../src/core/rng.js';
import { loadConfig } from '../src/config/load-config.js';
import { createKvCache } from '../src/app/kv-cache.js';
import { createScheduler } from '../src/scheduling/scheduler.js';
import type { PrecisePrefixScorer } from '../src/scheduling/scorers/precise-prefix-scorer.js';
import { createRequestTokenizer, type RequestTokenizer } from '../src/tokenize/request-tokenizer.js';
import { llama3TokenizerDir } from '../src/tokenize/testing.js';

const JSON_OUT = process.argv.includes('--json');
const argIters = process.argv.indexOf('--iters');
/** Precise iterations per case and setup (cold: a third of it); --iters N, default 60. */
const ITERS = Math.max(3, Math.min(1000, argIters >= 0 ? Number(process.argv[argIters + 1]) || 60 : 60));
const ONLY = process.argv.includes('--precise-only') ? 'precise' : process.argv.includes('--approximate-only') ? 'approximate' : 'both';
const PROMPT_CHARS = 32_000;
const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const OK = { ok: true, status: 200 };
const results: Record<string, unknown>[] = [];

function text(chars: number, seed: number): string {
  let s = '';
  let x = seed * 2654435761 >>> 0 || 1;
  while (s.length < chars) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    s += `t${(x % 100000).toString(36)} `;
  }
  return s.slice(0, chars);
}

const SYL = ['ka', 'ro', 'ut', 'en', 'pre', 'fix', 'ca', 'che', 'lo', 'ad', 'ba', 'lan', 'ce', 'to', 'ken', 'mo', 'del', 'ser', 'ver', 'qu', 'ery', 'in', 'dex'];
/** Pseudo-English that tokenizes like prose (~4 characters per token). */
function prose(rng: Rng, chars: number): string {
  let s = '';
  while (s.length < chars) {
    let w = '';
    for (let n = 1 + randInt(rng, 3); n > 0; n--) w += SYL[randInt(rng, SYL.length)];
    s += ' ' + w + (rng.next() < 0.1 ? '.' : '');
  }
  return s;
}

function endpoint(i: number): Endpoint {
  return {
    id: `ns/pod-${i}`, address: `10.0.${i >> 8}.${i & 255}:8000`, url: `http://10.0.0.${i}:8000`, role: 'both',
    engine: 'vllm', index: i, labels: {}, models: [], healthy: true,
    metrics: { waiting: i % 5, running: 8, kvUsage: (i % 10) / 10, numGpuBlocks: 30_000, updatedAt: 1 },
  };
}

let rid = 0;
function request(prompt: string): InferenceRequest {
  return { id: `r${++rid}`, api: 'chat', model: MODEL, body: {}, promptText: prompt, maxTokens: 128, stream: true, clientIp: '10.1.1.1', headers: {}, arrivedAt: 0, memo: new Map() };
}

function chatRequest(system: string, question: string): InferenceRequest {
  const messages = [{ role: 'system', content: system }, { role: 'user', content: question }];
  return {
    id: `r${++rid}`, api: 'chat', model: MODEL, body: { model: MODEL, messages }, promptText: `${system}\n${question}`,
    maxTokens: 128, stream: true, clientIp: '10.1.1.1', headers: {}, arrivedAt: 0, memo: new Map(),
  };
}

const fmtNs = (ns: number) => `${Math.round(ns).toLocaleString('en-US').padStart(9)} ns/op`;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

/** The scheduler factory of a build (this one, or a baseline's for a before/after). */
interface Build {
  name: string;
  createScheduler: typeof createScheduler;
  loadConfig: typeof loadConfig;
}

async function approximate(n: number, build: Build = { name: 'this build', createScheduler, loadConfig }): Promise<void> {
  const sched = build.createScheduler(build.loadConfig(), { clock: new ManualClock(0), rng: seededRng(1) });
  const precise = sched.plugins.get('precise-prefix-cache-scorer') as PrecisePrefixScorer | undefined;
  if (precise === undefined) throw new Error('the default profile has no precise-prefix-cache-scorer; update this benchmark');
  const prefix = precise.approximate;
  const eps = Array.from({ length: n }, (_, i) => endpoint(i));
  const shared = Array.from({ length: 32 }, (_, i) => text(24_000, 1000 + i));
  const prompts = Array.from({ length: 256 }, (_, i) => shared[i % 32] + text(PROMPT_CHARS - 24_000, i));
  for (const p of prompts) {
    const r = request(p);
    const res = await sched.schedule(r, eps);
    sched.onComplete(r, res.endpoint, OK);
  }
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < 2_000; i++) prefix.keysOf(request(prompts[i % prompts.length]));
  const hashNs = Number(process.hrtime.bigint() - t0) / 2_000;
  const reqs = Array.from({ length: 512 }, (_, i) => request(prompts[i % prompts.length]));
  const rounds = 20;
  let scheduleNs = 0;
  for (let round = 0; round < rounds; round++) {
    for (const r of reqs) {
      r.memo.clear();
      prefix.keysOf(r);
    }
    t0 = process.hrtime.bigint();
    for (const r of reqs) {
      const res = await sched.schedule(r, eps);
      sched.onComplete(r, res.endpoint, OK);
    }
    scheduleNs += Number(process.hrtime.bigint() - t0);
  }
  scheduleNs /= rounds * reqs.length;
  t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < 5_000; i++) {
    const r = request(prompts[i % prompts.length]);
    const res = await sched.schedule(r, eps);
    sched.onComplete(r, res.endpoint, OK);
  }
  const fullNs = Number(process.hrtime.bigint() - t0) / 5_000;
  const cpu = process.cpuUsage(cpu0);
  const fullCpuNs = ((cpu.user + cpu.system) * 1000) / 5_000;
  results.push({ mode: 'approximate', build: build.name, endpoints: n, hashNs, scheduleNs, fullNs, fullCpuNs });
  if (!JSON_OUT) console.log(`approximate endpoints=${String(n).padStart(3)}  hash 32k chars: ${fmtNs(hashNs)}  schedule (after hashing): ${fmtNs(scheduleNs)}  schedule incl. hashing: ${fmtNs(fullNs)} (CPU ${fmtNs(fullCpuNs)})  [${build.name}]`);
}

/** This build, preceded by the `--baseline DIR` build when given. */
async function approximateBuilds(): Promise<Build[]> {
  const builds: Build[] = [{ name: 'this build', createScheduler, loadConfig }];
  const at = process.argv.indexOf('--baseline');
  if (at < 0) return builds;
  const dir = path.resolve(process.argv[at + 1] ?? '');
  const load = async (f: string) => import(pathToFileURL(path.join(dir, 'dist/src', f)).href);
  builds.unshift({ name: 'baseline', createScheduler: (await load('scheduling/scheduler.js')).createScheduler, loadConfig: (await load('config/load-config.js')).loadConfig });
  return builds;
}

/** One precise-routing setup: a scheduler whose tokenizer uses the fast BPE path or the library alone. */
interface PreciseSetup {
  name: 'library' | 'fast-bpe';
  sched: ReturnType<typeof createScheduler>;
  tokenizer: RequestTokenizer;
}

async function precise(n: number): Promise<void> {
  const clock = new ManualClock(0);
  // The router's defaults (prefix token cache on, long uncached texts in a worker thread); the
  // only difference between the two setups is the fast BPE path, measured side by side.
  const kv = await createKvCache({ tokenizer: { type: 'dir', dir: llama3TokenizerDir() }, events: 'off', clock });
  const setups: PreciseSetup[] = (['library', 'fast-bpe'] as const).map((name) => {
    const tokenizer = createRequestTokenizer({ source: { type: 'dir', dir: llama3TokenizerDir() }, fastBpe: name === 'fast-bpe' });
    const services = { ...kv.services, tokenize: (r: InferenceRequest) => tokenizer.tokenize(r) };
    return { name, tokenizer, sched: createScheduler(loadConfig(), { clock, rng: seededRng(1), kvCache: services }) };
  });
  try {
    const eps = Array.from({ length: n }, (_, i) => endpoint(i));
    const rng = seededRng(7);
    const doc = prose(rng, 28_000);
    // The document (and its first question) is cached on endpoint 3: store its full blocks there.
    const firstQuestion = prose(rng, 2_800);
    const tokens = await setups[0].tokenizer.tokenize(chatRequest(doc, firstQuestion));
    const bs = kv.services.blockSize;
    const full = tokens.length - (tokens.length % bs);
    const hashes = Array.from({ length: full / bs }, (_, i) => BigInt(1_000_000 + i));
    await kv.indexer.applyBatch(eps[3].id, MODEL, 0n, {
      ts: 0,
      dataParallelRank: null,
      events: [{ type: 'BlockStored', blockHashes: hashes, parentBlockHash: null, tokenIds: tokens.slice(0, full), blockSize: bs, loraId: null, medium: null, loraName: null }],
    });
    // Both setups have seen the document once (their prefix token caches hold it).
    for (const s of setups) await s.tokenizer.tokenize(chatRequest(doc, firstQuestion));
    const cases: [string, number, () => [string, string]][] = [
      ['warm (same request)', ITERS, () => [doc, firstQuestion]],
      ['new ~700-token question', ITERS, () => [doc, prose(rng, 2_800)]],
      ['cold (new ~7k-token doc)', Math.ceil(ITERS / 3), () => [prose(rng, 28_000), prose(rng, 2_800)]],
    ];
    for (const [name, iters, make] of cases) {
      const times = new Map(setups.map((s) => [s.name, [] as number[]]));
      const cpu = new Map(setups.map((s) => [s.name, 0]));
      const hits = new Map(setups.map((s) => [s.name, 0]));
      for (let i = -2; i < iters; i++) {
        const [system, question] = make();
        // Interleaved, alternating which setup goes first, so load on the machine hits both alike.
        const order = i % 2 === 0 ? setups : [...setups].reverse();
        for (const s of order) {
          const r = chatRequest(system, question);
          const c0 = process.cpuUsage();
          const t0 = process.hrtime.bigint();
          const res = await s.sched.schedule(r, eps);
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          const c = process.cpuUsage(c0);
          s.sched.onComplete(r, res.endpoint, OK);
          if (i < 0) continue; // warm-up
          times.get(s.name)!.push(ms);
          cpu.set(s.name, cpu.get(s.name)! + (c.user + c.system) / 1000);
          if (res.endpoint.id === eps[3].id) hits.set(s.name, hits.get(s.name)! + 1);
        }
      }
      const base = times.get('library')!;
      for (const s of setups) {
        const t = times.get(s.name)!;
        const row = { mode: 'precise', endpoints: n, case: name, tokenizer: s.name, iters, p50Ms: pct(t, 0.5), p90Ms: pct(t, 0.9), p99Ms: pct(t, 0.99), cpuMsPerOp: cpu.get(s.name)! / iters, routedToHolder: hits.get(s.name)! / iters, p50VsLibrary: pct(t, 0.5) / pct(base, 0.5) };
        results.push(row);
        if (!JSON_OUT) {
          console.log(
            `precise     endpoints=${String(n).padStart(3)}  ${name.padEnd(26)} ${s.name.padEnd(8)} p50 ${row.p50Ms.toFixed(2).padStart(6)} ms  p90 ${row.p90Ms.toFixed(2).padStart(6)} ms  p99 ${row.p99Ms.toFixed(2).padStart(6)} ms  cpu ${row.cpuMsPerOp.toFixed(2).padStart(6)} ms/op  ` +
              `p50 x${row.p50VsLibrary.toFixed(2)}  (to the holder: ${hits.get(s.name)}/${iters})`,
          );
        }
      }
    }
  } finally {
    for (const s of setups) await s.tokenizer.close();
    await kv.close();
  }
}

if (ONLY !== 'precise') {
  const builds = await approximateBuilds();
  for (const n of [16, 64]) for (const round of builds.length > 1 ? [0, 1] : [0]) for (const b of round === 0 ? builds : [...builds].reverse()) await approximate(n, b);
}
if (ONLY !== 'approximate') for (const n of [16, 64]) await precise(n);
if (JSON_OUT) console.log(JSON.stringify(results, null, 2));
