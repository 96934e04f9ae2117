/**
 * Micro-benchmark of the scheduling hot path: kvroute's default profile over 16 and 64
 * endpoints with 32,000-character (~8,000-token) prompts sharing a few popular prefixes.
 * Prints ns/op for: hashing a prompt (approximate block keys), schedule() with the keys already
 * memoized on the request ("after hashing"), and schedule() including hashing.
 *
 *   npm run build && node dist/bench/scheduler-bench.js
 */
import { ManualClock } from '../src/core/clock.js';
import type { Endpoint } from '../src/core/endpoint.js';
import type { InferenceRequest } from '../src/core/request.js';
import { seededRng } from '../src/core/rng.js';
import { loadConfig } from '../src/config/load-config.js';
import { createScheduler } from '../src/scheduling/scheduler.js';
import type { PrefixCacheScorer } from '../src/scheduling/scorers/prefix-cache-scorer.js';

const PROMPT_CHARS = 32_000;
const OK = { ok: true, status: 200 };

function text(chars: number, seed: number): string {
  let s = '';
  let x = seed * 2654435761 >>> 0 || 1;
  while (s.length < chars) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    s += `t${(x % 100000).toString(36)} `;
  }
  return s.slice(0, chars);
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
  return { id: `r${++rid}`, api: 'chat', model: 'meta-llama/Llama-3.1-8B-Instruct', body: {}, promptText: prompt, maxTokens: 128, stream: true, clientIp: '10.1.1.1', headers: {}, arrivedAt: 0, memo: new Map() };
}

async function bench(n: number): Promise<void> {
  const sched = createScheduler(loadConfig(), { clock: new ManualClock(0), rng: seededRng(1) });
  const prefix = sched.plugins.get('prefix-cache-scorer') as PrefixCacheScorer;
  const eps = Array.from({ length: n }, (_, i) => endpoint(i));
  const shared = Array.from({ length: 32 }, (_, i) => text(24_000, 1000 + i));
  const prompts = Array.from({ length: 256 }, (_, i) => shared[i % 32] + text(PROMPT_CHARS - 24_000, i));
  // Warm the index: every prompt routed once.
  for (const p of prompts) {
    const r = request(p);
    const res = await sched.schedule(r, eps);
    sched.onComplete(r, res.endpoint, OK);
  }
  const iters = 20_000;
  // 1. hashing alone
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < 2_000; i++) prefix.keysOf(request(prompts[i % prompts.length]));
  const hashNs = Number(process.hrtime.bigint() - t0) / 2_000;
  // 2. schedule with keys memoized (after hashing)
  const reqs = Array.from({ length: 512 }, (_, i) => request(prompts[i % prompts.length]));
  let scheduleNs = 0;
  for (let round = 0; round < iters / reqs.length; round++) {
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
  scheduleNs /= Math.floor(iters / reqs.length) * reqs.length;
  // 3. schedule including hashing
  t0 = process.hrtime.bigint();
  for (let i = 0; i < 5_000; i++) {
    const r = request(prompts[i % prompts.length]);
    const res = await sched.schedule(r, eps);
    sched.onComplete(r, res.endpoint, OK);
  }
  const fullNs = Number(process.hrtime.bigint() - t0) / 5_000;
  const f = (ns: number) => `${Math.round(ns).toLocaleString('en-US').padStart(9)} ns/op`;
  console.log(`endpoints=${String(n).padStart(3)}  hash 32k chars: ${f(hashNs)}  schedule (after hashing): ${f(scheduleNs)}  schedule incl. hashing: ${f(fullNs)}`);
}

for (const n of [16, 64]) await bench(n);
