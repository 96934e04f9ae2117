/**
 * The fleet-scale workload of bench/fleet-scale.ts: shared-prefix traffic whose size grows with
 * the fleet, generated lazily (request i is built when the runner reaches it, its prompt when it
 * is sent), so a million-request run holds no request list.
 *
 *   groups   = groupsPerReplica x replicas, each with a system prompt of `systemTokens`
 *   request  = Poisson arrival at ratePerReplica x replicas req/s, a uniformly drawn group,
 *              a question of `questionTokens` of its own, `outputTokens` out
 *
 * Defaults are the lengths of SGLang's generated-shared-prefix default (S 2048, Q 128, O 256) and
 * the per-replica rate of the documented 16-replica run (60 req/s / 16 = 3.75 req/s). Every
 * question is new, so the ideal hit rate is the system prompt's share of each prompt.
 */
import { KvrError } from '../core/errors.js';
import { seededRng } from '../core/rng.js';
import type { BenchRequest } from './types.js';
import type { RequestSource, VirtualWorkload } from './virtual-runner.js';
import { DEFAULT_MODEL } from './workloads.js';
import { concat, streamId, words } from './words.js';

/** Parameters of {@link fleetWorkload}. */
export interface FleetWorkloadOptions {
  requests: number;
  replicas: number;
  groupsPerReplica?: number;
  systemTokens?: number;
  questionTokens?: number;
  outputTokens?: number;
  /** Arrival rate per replica (req/s). */
  ratePerReplica?: number;
  seed?: number;
  model?: string;
}

/** A lazily generated workload: {@link VirtualWorkload} plus its description. */
export interface FleetWorkload extends VirtualWorkload {
  readonly description: string;
  readonly params: Readonly<Record<string, number>>;
}

function positive(name: string, v: number, integer = true): number {
  if (!(v > 0) || !Number.isFinite(v) || (integer && !Number.isInteger(v))) throw new KvrError('KVR_ERR_USAGE', `${name} must be a positive ${integer ? 'integer' : 'number'}; got ${v}`);
  return v;
}

/** Builds the fleet-scale workload (see the file comment). */
export function fleetWorkload(o: FleetWorkloadOptions): FleetWorkload {
  const n = positive('requests', o.requests);
  const replicas = positive('replicas', o.replicas);
  const G = positive('groups per replica', o.groupsPerReplica ?? 4) * replicas;
  const S = positive('system tokens', o.systemTokens ?? 2048);
  const Q = positive('question tokens', o.questionTokens ?? 128);
  const O = positive('output tokens', o.outputTokens ?? 256);
  const rate = positive('rate per replica', o.ratePerReplica ?? 3.75, false) * replicas;
  const seed = o.seed ?? 1;
  const requests: RequestSource = {
    length: n,
    *[Symbol.iterator](): Iterator<BenchRequest> {
      const rng = seededRng(seed);
      let t = 0;
      for (let i = 0; i < n; i++) {
        t += (-Math.log(1 - rng.next()) / rate) * 1000;
        const g = Math.floor(rng.next() * G);
        yield {
          index: i,
          atMs: t,
          maxTokens: O,
          session: `group-${g}`,
          clientIp: `10.4.${(i >>> 8) & 255}.${i & 255}`,
          phase: 'measured',
          prompt: () => {
            const all = concat(words(streamId(`fleet/${seed}/system/${g}`), S), words(streamId(`fleet/${seed}/q/${i}`), Q));
            return { api: 'completions', text: all.text, tokens: all.tokens };
          },
        };
      }
    },
  };
  return {
    model: o.model ?? DEFAULT_MODEL,
    requests,
    description: `fleet shared-prefix: ${n} requests, ${G} groups (${G / replicas} per replica), S ${S}, Q ${Q}, O ${O}, ${rate} req/s (${rate / replicas} per replica)`,
    params: { requests: n, replicas, groups: G, systemTokens: S, questionTokens: Q, outputTokens: O, rate, seed },
  };
}
