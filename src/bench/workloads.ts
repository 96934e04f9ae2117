/**
 * The workloads of `kvroute bench`: deterministic generators (same seed, same requests) of
 * requests with arrival times, prompts, output lengths, sessions and client IPs. Arrivals are
 * open loop: a request arrives at its time whatever happened to earlier ones (the seeds'
 * scripted phases use `barrier` between phases only).
 *
 * | name            | what |
 * |-----------------|------|
 * | seeds-cache-hit | the seeds' Tekton test: one client, one prompt repeated; restart, warm-up, measured loop |
 * | seeds-demo      | the seeds' demo: populate AI / ML / Cloud, similar questions (hits), new topics (misses) |
 * | shared-prefix   | G groups x P prompts, system S + question Q tokens, output O, Poisson at a rate ladder |
 * | multi-turn-chat | U users x T turns, prompt = whole history, think time, several users per client IP |
 * | trace           | replay of a Mooncake or Alibaba Bailian trace (trace.ts) |
 * | tool-agent, rag, azure | held-out workloads (workloads-heldout.ts) |
 *
 * Every workload sends a seeded share of its requests without streaming (`stream: false`,
 * default 20 %, `nonStreamingShare`), so non-streaming request accounting is exercised.
 */
import { KvrError } from '../core/errors.js';
import { seededRng, type Rng } from '../core/rng.js';
import { QUESTIONS, SEED_TOPICS, NEW_TOPICS, topicDocument } from '../demo/demo-workload.js';
import type { ChatMessage } from '../sim/tokenizer.js';
import { loadTrace, type TraceOptions } from './trace.js';
import { azure, rag, toolAgent, type HeldoutOptions } from './workloads-heldout.js';
import type { BenchPrompt, BenchRequest, Workload } from './types.js';
import { concat, mix32, streamId, words } from './words.js';

/** Default served model name. */
export const DEFAULT_MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

/** Options every workload accepts (all optional; each workload has its defaults). */
export interface WorkloadOptions {
  seed?: number;
  model?: string;
  /** Published-configuration preset of the workload (shared-prefix). */
  preset?: string;
  /** Cap on the number of requests (measured ones for seeds-cache-hit). */
  requests?: number;
  /** Arrival rate (req/s), or a ladder of rates run one after the other. */
  rate?: number | number[];
  /** shared-prefix: groups, prompts per group, system / question / output tokens. */
  groups?: number;
  promptsPerGroup?: number;
  systemTokens?: number;
  questionTokens?: number;
  outputTokens?: number;
  /** multi-turn-chat: users, turns, mean think time (s), users per client IP. */
  users?: number;
  turns?: number;
  thinkTimeS?: number;
  usersPerIp?: number;
  /** trace: file, format, rate scale. */
  trace?: TraceOptions;
  /** Share of requests sent without streaming (default {@link DEFAULT_NON_STREAMING_SHARE}). */
  nonStreamingShare?: number;
  /** azure: which Azure 2023 trace (conv, code). */
  azureKind?: 'conv' | 'code';
}

/** Names of the workloads (the last three are held out: workloads-heldout.ts). */
export const WORKLOADS = ['seeds-cache-hit', 'seeds-demo', 'shared-prefix', 'multi-turn-chat', 'trace', 'tool-agent', 'rag', 'azure'] as const;

function heldout(o: WorkloadOptions): HeldoutOptions {
  const rate = Array.isArray(o.rate) ? o.rate[0] : o.rate;
  return {
    model: o.model ?? DEFAULT_MODEL,
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o.requests !== undefined ? { requests: o.requests } : {}),
    ...(rate !== undefined ? { rate } : {}),
    ...(o.users !== undefined ? { users: o.users } : {}),
    ...(o.turns !== undefined ? { turns: o.turns } : {}),
    ...(o.systemTokens !== undefined ? { systemTokens: o.systemTokens } : {}),
    ...(o.thinkTimeS !== undefined ? { thinkTimeS: o.thinkTimeS } : {}),
    ...(o.azureKind !== undefined ? { azureKind: o.azureKind } : {}),
  };
}
export type WorkloadName = (typeof WORKLOADS)[number];

/** Published shared-prefix configurations (benchmarks.md). */
export const SHARED_PREFIX_PRESETS: Record<string, { groups: number; promptsPerGroup: number; systemTokens: number; questionTokens: number; outputTokens: number; rate: number[]; about: string }> = {
  'sglang-default': { groups: 64, promptsPerGroup: 16, systemTokens: 2048, questionTokens: 128, outputTokens: 256, rate: [16], about: "SGLang's generated-shared-prefix default" },
  'llm-d-precise': { groups: 150, promptsPerGroup: 5, systemTokens: 6000, questionTokens: 1200, outputTokens: 1000, rate: [3, 10, 20, 30, 40, 50, 60], about: "llm-d-benchmark precise-prefix guide (8 pods, 3 -> 60 req/s)" },
  'llm-d-shared-prefix-synthetic': { groups: 32, promptsPerGroup: 32, systemTokens: 2048, questionTokens: 256, outputTokens: 256, rate: [10], about: 'llm-d-benchmark shared_prefix_synthetic' },
};

/** Exponential inter-arrival gap (ms) for `rate` req/s. */
function expGapMs(rng: Rng, rate: number): number {
  return (-Math.log(1 - rng.next()) / rate) * 1000;
}

function rates(r: number | number[] | undefined, dflt: number[]): number[] {
  const list = r === undefined ? dflt : Array.isArray(r) ? r : [r];
  if (list.length === 0 || list.some((x) => !(x > 0) || !Number.isFinite(x))) {
    throw new KvrError('KVR_ERR_USAGE', `request rates must be positive numbers; got ${JSON.stringify(r)}`);
  }
  return list;
}

function positiveInt(name: string, v: number | undefined, dflt: number, min = 1): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < min) throw new KvrError('KVR_ERR_USAGE', `${name} must be an integer >= ${min}; got ${v}`);
  return x;
}

/** Builds the named workload; throws KvrError (KVR_ERR_USAGE) on bad parameters. */
export function createWorkload(name: string, o: WorkloadOptions = {}): Workload {
  return withStreamShare(baseWorkload(name, o), o.nonStreamingShare ?? DEFAULT_NON_STREAMING_SHARE, o.seed ?? 1);
}

/** Share of requests sent without streaming in every workload (default 0.2). */
export const DEFAULT_NON_STREAMING_SHARE = 0.2;

/** Marks a seeded `share` of the requests non-streaming (`stream: false`). */
function withStreamShare(w: Workload, share: number, seed: number): Workload {
  if (!(share >= 0 && share <= 1)) throw new KvrError('KVR_ERR_USAGE', `the non-streaming share must be in [0, 1]; got ${share}`);
  if (share === 0) return w;
  const cut = share * 2 ** 32;
  return { ...w, params: { ...w.params, nonStreamingShare: share }, requests: w.requests.map((r) => (mix32((r.index * 0x9e3779b1) ^ seed) < cut ? { ...r, stream: false } : r)) };
}

function baseWorkload(name: string, o: WorkloadOptions): Workload {
  switch (name) {
    case 'tool-agent':
      return toolAgent({ ...heldout(o) });
    case 'rag':
      return rag({ ...heldout(o) });
    case 'azure':
      return azure({ ...heldout(o) });
    case 'seeds-cache-hit':
      return seedsCacheHit(o);
    case 'seeds-demo':
      return seedsDemo(o);
    case 'shared-prefix':
      return sharedPrefix(o);
    case 'multi-turn-chat':
      return multiTurnChat(o);
    case 'trace':
      return loadTrace(o.trace ?? {}, { model: o.model ?? DEFAULT_MODEL, requests: o.requests, seed: o.seed ?? 1 });
    default:
      throw new KvrError('KVR_ERR_USAGE', `unknown workload "${name}"; choose one of ${WORKLOADS.join(', ')}`);
  }
}

/**
 * seeds-cache-hit: the seeds' Tekton pipeline (restart decode pods, tiny warm-up, measured loop).
 * One client, one session, one prompt (their "What is the capital of France?" behind a fixed
 * 240-word context, since vLLM caches only full 16-token blocks and an 8-token prompt holds
 * none), `temperature: 0`, fixed `seed`, `max_tokens` 10, one request per second. The fleet
 * starts fresh (restart), the first 2 requests are the warm-up.
 */
function seedsCacheHit(o: WorkloadOptions): Workload {
  const measured = positiveInt('requests', o.requests, 30);
  const warmup = 2;
  const rate = rates(o.rate, [1])[0];
  const prompt = concat(words(streamId('seeds-cache-hit/context'), 240), { text: ' What is the capital of France?', tokens: [] });
  const text = prompt.text;
  const reqs: BenchRequest[] = [];
  for (let i = 0; i < warmup + measured; i++) {
    reqs.push({
      index: i,
      atMs: (i * 1000) / rate,
      maxTokens: 10,
      session: 'seeds-client',
      clientIp: '10.0.0.1',
      phase: i < warmup ? 'warmup' : 'measured',
      barrier: i === warmup,
      prompt: () => ({ api: 'completions', text }),
    });
  }
  return {
    name: 'seeds-cache-hit',
    description: `seeds' cache-hit test: restart, ${warmup} warm-up + ${measured} measured requests of one prompt at ${rate} req/s from one client`,
    model: o.model ?? DEFAULT_MODEL,
    requests: reqs,
    params: { warmup, measured, rate, maxTokens: 10 },
  };
}

/**
 * seeds-demo: the seeds' demo script. populate: one request per topic (AI, ML, Cloud); hit: three
 * new questions per topic; miss: three new topics. Chat requests whose system prompt is a
 * ~1,200-word topic document (as `kvroute demo`), `max_tokens` 24. Phases are separated by
 * barriers; within a phase requests arrive every 200 ms.
 */
function seedsDemo(o: WorkloadOptions): Workload {
  const model = o.model ?? DEFAULT_MODEL;
  const docWords = 1200;
  const items: { phase: string; topic: string; q: string }[] = [];
  for (const t of SEED_TOPICS) items.push({ phase: 'populate', topic: t, q: QUESTIONS[0] });
  for (let q = 1; q <= 3; q++) for (const t of SEED_TOPICS) items.push({ phase: 'hit', topic: t, q: QUESTIONS[q] });
  for (const t of NEW_TOPICS) items.push({ phase: 'miss', topic: t, q: QUESTIONS[0] });
  const cap = o.requests === undefined ? items.length : Math.min(items.length, positiveInt('requests', o.requests, items.length));
  const reqs: BenchRequest[] = [];
  let t = 0;
  for (let i = 0; i < cap; i++) {
    const it = items[i];
    const barrier = i > 0 && items[i - 1].phase !== it.phase;
    reqs.push({
      index: i,
      atMs: t,
      maxTokens: 24,
      session: `demo-${it.topic}`,
      clientIp: '10.0.0.1',
      phase: it.phase,
      barrier,
      prompt: () => ({
        api: 'chat',
        messages: [
          { role: 'system', content: `You are an expert on ${it.topic}. Answer using this document.\n${topicDocument(it.topic, docWords)}` },
          { role: 'user', content: it.q },
        ],
      }),
    });
    t += 200;
  }
  return {
    name: 'seeds-demo',
    description: `seeds' demo: populate 3 topics, 9 similar questions, 3 new topics (${docWords}-word topic documents, max_tokens 24)`,
    model,
    requests: reqs,
    params: { docWords, maxTokens: 24, phases: ['populate', 'hit', 'miss'] },
  };
}

/**
 * shared-prefix: `groups` x `promptsPerGroup` prompts; prompt = group system prompt
 * (`systemTokens`) + its own question (`questionTokens`); output `outputTokens`. Requests draw the
 * (group, prompt) pairs in a seeded shuffle (cycling when more requests than pairs), arriving as
 * Poisson processes at each rate of the ladder in turn, the requests split evenly over the rates.
 * Completions API; text of exactly the stated token counts for the simulator's tokenizer.
 */
function sharedPrefix(o: WorkloadOptions): Workload {
  const presetName = o.preset ?? 'sglang-default';
  const p = SHARED_PREFIX_PRESETS[presetName];
  if (p === undefined) {
    throw new KvrError('KVR_ERR_USAGE', `unknown shared-prefix preset "${presetName}"; choose one of ${Object.keys(SHARED_PREFIX_PRESETS).join(', ')}`);
  }
  const seed = o.seed ?? 1;
  const G = positiveInt('groups', o.groups, p.groups);
  const P = positiveInt('promptsPerGroup', o.promptsPerGroup, p.promptsPerGroup);
  const S = positiveInt('systemTokens', o.systemTokens, p.systemTokens, 0);
  const Q = positiveInt('questionTokens', o.questionTokens, p.questionTokens);
  const O = positiveInt('outputTokens', o.outputTokens, p.outputTokens);
  const ladder = rates(o.rate, p.rate);
  const n = positiveInt('requests', o.requests, G * P);
  const rng = seededRng(seed);
  const pairs: number[] = Array.from({ length: G * P }, (_, i) => i);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j], pairs[i]];
  }
  const reqs: BenchRequest[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    const stage = Math.min(ladder.length - 1, Math.floor((i * ladder.length) / n));
    t += expGapMs(rng, ladder[stage]);
    const pair = pairs[i % pairs.length];
    const g = Math.floor(pair / P);
    const q = pair % P;
    const round = Math.floor(i / pairs.length);
    reqs.push({
      index: i,
      atMs: t,
      maxTokens: O,
      session: `group-${g}`,
      clientIp: `10.1.0.${mix32(i + 1) % 32}`,
      phase: ladder.length > 1 ? `${ladder[stage]} req/s` : 'measured',
      prompt: () => {
        const sys = words(streamId(`shared-prefix/${seed}/system/${g}`), S);
        const question = words(streamId(`shared-prefix/${seed}/q/${g}/${q}/${round}`), Q);
        const all = concat(sys, question);
        return { api: 'completions', text: all.text, tokens: all.tokens };
      },
    });
  }
  return {
    name: 'shared-prefix',
    description: `shared-prefix ${presetName} (${p.about}): ${G} x ${P}, S ${S}, Q ${Q}, O ${O}, ${n} requests at ${ladder.join(' -> ')} req/s`,
    model: o.model ?? DEFAULT_MODEL,
    requests: reqs,
    params: { preset: presetName, groups: G, promptsPerGroup: P, systemTokens: S, questionTokens: Q, outputTokens: O, rate: ladder, requests: n, seed },
  };
}

/**
 * multi-turn-chat: `users` conversations of `turns` turns. A shared system prompt (500 tokens),
 * then per turn a user message (100 tokens) and, in the history of later turns, the assistant's
 * reply (`outputTokens` words, synthetic: the workload is open loop, so it cannot wait for the real
 * reply; the reply's blocks are therefore never a cache hit, the history before it is). Users
 * start as a Poisson process at `rate` users/s; turn k+1 arrives an exponential think time (mean
 * `thinkTimeS`) after turn k. `usersPerIp` users share one client IP (NAT). Each user sends
 * `x-session-id: user-<u>`.
 */
function multiTurnChat(o: WorkloadOptions): Workload {
  const seed = o.seed ?? 1;
  const U = positiveInt('users', o.users, 32);
  const T = positiveInt('turns', o.turns, 6);
  const think = o.thinkTimeS ?? 8;
  if (!(think >= 0)) throw new KvrError('KVR_ERR_USAGE', `think time must be >= 0 seconds; got ${think}`);
  const perIp = positiveInt('usersPerIp', o.usersPerIp, 8);
  const O = positiveInt('outputTokens', o.outputTokens, 200);
  const Q = positiveInt('questionTokens', o.questionTokens, 100);
  const S = positiveInt('systemTokens', o.systemTokens, 500, 0);
  const rate = rates(o.rate, [2])[0];
  const rng = seededRng(seed);
  const system = words(streamId(`chat/${seed}/system`), S).text.trim();
  const all: { at: number; u: number; turn: number }[] = [];
  let start = 0;
  for (let u = 0; u < U; u++) {
    start += expGapMs(rng, rate);
    let t = start;
    for (let k = 0; k < T; k++) {
      all.push({ at: t, u, turn: k });
      t += think > 0 ? expGapMs(rng, 1 / think) : 0;
    }
  }
  all.sort((a, b) => a.at - b.at || a.u - b.u || a.turn - b.turn);
  const cap = o.requests === undefined ? all.length : Math.min(all.length, positiveInt('requests', o.requests, all.length));
  const reqs: BenchRequest[] = all.slice(0, cap).map((it, i) => ({
    index: i,
    atMs: it.at,
    maxTokens: O,
    session: `user-${it.u}`,
    clientIp: `10.2.0.${Math.floor(it.u / perIp) % 250}`,
    phase: 'measured',
    headers: { 'x-session-id': `user-${it.u}` },
    prompt: (): BenchPrompt => {
      const messages: ChatMessage[] = [{ role: 'system', content: system }];
      for (let k = 0; k <= it.turn; k++) {
        messages.push({ role: 'user', content: words(streamId(`chat/${seed}/u/${it.u}/${k}`), Q).text.trim() });
        if (k < it.turn) messages.push({ role: 'assistant', content: words(streamId(`chat/${seed}/a/${it.u}/${k}`), O).text.trim() });
      }
      return { api: 'chat', messages };
    },
  }));
  return {
    name: 'multi-turn-chat',
    description: `multi-turn chat: ${U} users x ${T} turns, system ${S}, message ${Q}, reply ${O} tokens, think ${think} s, ${perIp} users per IP, users arrive at ${rate}/s`,
    model: o.model ?? DEFAULT_MODEL,
    requests: reqs,
    params: { users: U, turns: T, thinkTimeS: think, usersPerIp: perIp, systemTokens: S, questionTokens: Q, outputTokens: O, rate, requests: cap, seed },
  };
}
