/**
 * The routing strategies `kvroute bench` compares. Every strategy is an EndpointPickerConfig
 * loaded through the router's own code (src/app/build-scheduler.ts): a built-in preset, an
 * example file shipped in `examples/`, or a file the user passes (`--config`).
 *
 * | name          | config                     | what |
 * |---------------|----------------------------|------|
 * | random        | examples/random.yaml       | uniformly random |
 * | round-robin   | examples/round-robin.yaml  | in turn |
 * | least-loaded  | examples/least-loaded.yaml | fewest waiting requests in the last scrape (queue-scorer; 50 ms stale) |
 * | least-request | examples/least-request.yaml| Envoy LEAST_REQUEST (2 choices) on the router's own in-flight count |
 * | client-ip     | examples/client-ip.yaml    | ClientIP affinity, 2 h TTL (the seeds' workaround) |
 * | llm-d-approx  | examples/llm-d-default.yaml| approximate prefix 3, queue 2, kv-utilization 2 |
 * | llm-d-precise | examples/llm-d-precise.yaml| llm-d's precise weights run on KVROUTE's precise scorer (speculative entries, arrival tickets) |
 * | sglang-idealised | examples/sglang.yaml    | SGLang's cache-aware thresholds on an idealised cache view (alias: sglang) |
 * | sglang-faithful | examples/sglang-faithful.yaml | SGLang router's cache_aware as written (character radix tree) |
 * | seeds         | examples/seeds.yaml        | the seeds' weights: KV 5, prefix 3, session 2, load 1 |
 * | kvroute       | examples/default.yaml      | kvroute's default |
 *
 * Live peers (`--engine live` only; real processes, not re-implementations; src/bench/live-peers.ts):
 * `sglang-router-live` (the SGLang router, cache_aware), `envoy-least-request-live` (Envoy
 * LEAST_REQUEST), and `external:<label>=<url>` (any router already running, with `--endpoints`).
 */
import { basename, join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { buildSchedulerWithConfig, examplesDir, usesPreciseScorer, type SchedulerPreset } from '../app/build-scheduler.js';
import { loadConfig } from '../config/load-config.js';
import type { KvCacheServices } from '../scheduling/kv-cache-services.js';
import type { KvrouteScheduler } from '../scheduling/scheduler.js';
import { externalPeer, startEnvoyLeastRequest, startSglangRouter, type PeerLauncher } from './live-peers.js';

/** A strategy to run. */
export interface Strategy {
  /** Short name (table column, JSON key). */
  readonly name: string;
  /** What it is, one line. */
  readonly about: string;
  /** Where its configuration comes from (`preset:<name>` or a file path). */
  readonly source: string;
  /** True when the configuration uses the precise prefix scorer (wants KV events). */
  readonly kvEvents: boolean;
  /** Builds a fresh scheduler (fresh plugin state) on `clock` / `rng`. */
  build(clock: Clock, rng: Rng, kvCache?: KvCacheServices): KvrouteScheduler;
  /**
   * A real router that routes by itself (live engine only): started per run in front of the
   * fleet (or already running: `external`), instead of kvroute's gateway and `build`.
   */
  readonly peer?: { launch: PeerLauncher; external: boolean };
}

/** Live peers by name (real processes; `--engine live` only). */
const PEERS: Record<string, { about: string; launch: PeerLauncher }> = {
  'sglang-router-live': { about: 'the real SGLang router (PyPI sglang-router), --policy cache_aware, CLI defaults', launch: (urls) => startSglangRouter(urls) },
  'envoy-least-request-live': { about: 'the real Envoy as a LEAST_REQUEST proxy (choice_count 2, concurrency 1)', launch: (urls) => startEnvoyLeastRequest(urls) },
};

/** Names of the live peers (real routers started by the bench, live engine only). */
export const PEER_STRATEGY_NAMES = Object.keys(PEERS);

function peerStrategy(name: string, about: string, source: string, launch: PeerLauncher, external: boolean): Strategy {
  return {
    name,
    about,
    source,
    kvEvents: false,
    build: () => {
      throw new KvrError('KVR_ERR_USAGE', `${name} is a real router that routes by itself: it runs on the live engine only (--engine live)`);
    },
    peer: { launch, external },
  };
}

/** `external:<label>=<url>` -> a strategy sending the workload to that running router. */
export function externalStrategy(spec: string): Strategy {
  const m = /^external:([A-Za-z0-9][\w.-]*)=(https?:\/\/[^\s,]+)$/.exec(spec);
  if (!m) throw new KvrError('KVR_ERR_USAGE', `"${spec}" is not external:<label>=<url>, e.g. external:my-gw=http://10.0.0.5:8000 (label: letters, digits, . _ -)`);
  return peerStrategy(m[1], `router already running at ${m[2]} (its own routing)`, m[2], externalPeer(m[2]), true);
}

interface BuiltinDef {
  about: string;
  preset?: SchedulerPreset;
  file?: string;
}

const BUILTIN: Record<string, BuiltinDef> = {
  random: { about: 'uniformly random endpoint', preset: 'random' },
  'round-robin': { about: 'endpoints in turn', preset: 'round-robin' },
  'least-loaded': { about: 'fewest waiting requests in the last /metrics scrape (queue-scorer; 50 ms stale)', file: 'least-loaded.yaml' },
  'least-request': { about: "Envoy LEAST_REQUEST: 2 random choices, fewer requests in flight from this router", file: 'least-request.yaml' },
  'client-ip': { about: "ClientIP affinity, 2 h TTL (the seeds' workaround)", file: 'client-ip.yaml' },
  'llm-d-approx': { about: "llm-d default weights: approximate prefix 3, queue 2, kv-utilization 2", preset: 'llm-d-default' },
  'llm-d-precise': { about: "llm-d precise guide weights (precise prefix 2, kv-utilization 1, queue 1) on kvroute's own precise scorer (speculative entries, arrival tickets), not llm-d's code", preset: 'llm-d-precise' },
  'sglang-idealised': { about: "SGLang cache-aware thresholds (abs 64, rel 1.5, threshold 0.3) on an idealised view: 64-char blocks, cache = GPU capacity with immediate eviction, ties by load", file: 'sglang.yaml' },
  'sglang-faithful': { about: "SGLang router's cache_aware as written: character radix tree, 2^26 chars per worker, eviction every 120 s, thresholds 0.3 / 64 / 1.5, smallest-tree ties to the first worker", file: 'sglang-faithful.yaml' },
  seeds: { about: "the seeds' weights: KV-cache 5, prefix 3, session 2, load 1", preset: 'seeds' },
  kvroute: { about: "kvroute's default profile", preset: 'default' },
};

/** Built-in strategy names, in report order. */
export const STRATEGY_NAMES = Object.keys(BUILTIN);

/** Old names still accepted. */
const ALIASES: Record<string, string> = { sglang: 'sglang-idealised' };

function fromFile(name: string, about: string, file: string | undefined, preset: SchedulerPreset | undefined): Strategy {
  const cfg = loadConfig({ file: file ?? (preset === 'default' ? undefined : join(examplesDir(), `${preset}.yaml`)) });
  return {
    name,
    about,
    source: file ?? `preset:${preset}`,
    kvEvents: usesPreciseScorer(cfg),
    build: (clock, rng, kvCache) =>
      buildSchedulerWithConfig({ ...(file !== undefined ? { file } : { preset }), clock, rng, ...(kvCache !== undefined ? { kvCache } : {}) }).scheduler,
  };
}

/** A built-in strategy by name; throws KvrError (KVR_ERR_USAGE) naming the valid ones. */
export function builtinStrategy(alias: string): Strategy {
  const name = ALIASES[alias] ?? alias;
  if (name.startsWith('external:')) return externalStrategy(name);
  const peer = PEERS[name];
  if (peer !== undefined) return peerStrategy(name, peer.about, `peer:${name}`, peer.launch, false);
  const d = BUILTIN[name];
  if (d === undefined) throw new KvrError('KVR_ERR_USAGE', `unknown strategy "${name}"; choose from ${[...STRATEGY_NAMES, ...PEER_STRATEGY_NAMES].join(', ')}, external:<label>=<url>, or pass --config <file.yaml>`);
  return fromFile(name, d.about, d.file !== undefined ? join(examplesDir(), d.file) : undefined, d.preset);
}

/** A strategy from a user's EndpointPickerConfig file (validated now; errors name the field). */
export function fileStrategy(file: string, name?: string): Strategy {
  if (!existsSync(file)) throw new KvrError('KVR_ERR_USAGE', `config file ${file} does not exist`);
  return fromFile(name ?? basename(file).replace(/\.ya?ml$/i, ''), `config file ${basename(file)}`, file, undefined);
}

/** Resolves a comma list of names plus config files; duplicate names get a numeric suffix. */
export function resolveStrategies(names: readonly string[], files: readonly string[] = []): Strategy[] {
  const out: Strategy[] = [];
  const seen = new Set<string>();
  const add = (s: Strategy) => {
    let n = s.name;
    for (let k = 2; seen.has(n); k++) n = `${s.name}-${k}`;
    seen.add(n);
    out.push(n === s.name ? s : { ...s, name: n });
  };
  for (const n of names) add(builtinStrategy(n));
  for (const f of files) add(fileStrategy(f));
  if (out.length === 0) throw new KvrError('KVR_ERR_USAGE', 'no strategy to run; pass --strategies a,b,c and/or --config <file.yaml>');
  return out;
}
