/**
 * Builds a scheduler from a preset name, a config file, and/or the seeds' environment
 * variables. Presets are the example configs shipped in `examples/`.
 */
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import type { Rng } from '../core/rng.js';
import { KvrError } from '../core/errors.js';
import { loadConfig } from '../config/load-config.js';
import type { LoadedConfig } from '../config/scheduler-config.js';
import type { Env } from '../config/env-overrides.js';
import type { KvCacheServices } from '../scheduling/kv-cache-services.js';
import { createScheduler, type KvrouteScheduler } from '../scheduling/scheduler.js';

export const PRESETS = ['default', 'seeds', 'llm-d-default', 'llm-d-precise', 'round-robin', 'random'] as const;
export type SchedulerPreset = (typeof PRESETS)[number];

export interface BuildSchedulerOptions {
  /** A preset (examples/<preset>.yaml); `default` is kvroute's built-in default. */
  preset?: SchedulerPreset;
  /** A YAML EndpointPickerConfig file (wins over preset). */
  file?: string;
  /** Environment with the seeds' variables (ENABLE_PREFIX_AWARE_SCORER, ...). */
  env?: Env;
  clock?: Clock;
  rng?: Rng;
  /** Tokenizer + block index for the precise prefix scorer (see src/app/kv-cache.ts). */
  kvCache?: KvCacheServices;
}

export interface BuiltScheduler {
  scheduler: KvrouteScheduler;
  config: LoadedConfig;
}

/** Directory of the shipped example configs (the package's `examples/`). */
export function examplesDir(): string {
  // dist/src/app/build-scheduler.js -> package root
  return fileURLToPath(new URL('../../../examples/', import.meta.url));
}

export function presetFile(preset: SchedulerPreset): string | undefined {
  if (!PRESETS.includes(preset)) {
    throw new KvrError('KVR_ERR_USAGE', `unknown preset "${preset}"; choose one of ${PRESETS.join(', ')}`);
  }
  if (preset === 'default') return undefined;
  const f = join(examplesDir(), `${preset}.yaml`);
  if (!existsSync(f)) throw new KvrError('KVR_ERR_CONFIG', `preset file ${f} is missing from the installation`);
  return f;
}

/** Loads the configuration (file, else preset, plus env); throws KvrError on any config problem. */
export function loadSchedulerConfig(opts: Pick<BuildSchedulerOptions, 'preset' | 'file' | 'env'> = {}): LoadedConfig {
  const file = opts.file ?? presetFile(opts.preset ?? 'default');
  return loadConfig({ file, env: opts.env });
}

/** Loads the configuration and creates the scheduler; throws KvrError on any config problem. */
export function buildSchedulerWithConfig(opts: BuildSchedulerOptions = {}): BuiltScheduler {
  const config = loadSchedulerConfig(opts);
  const scheduler = createScheduler(config, { clock: opts.clock, rng: opts.rng, ...(opts.kvCache !== undefined ? { kvCache: opts.kvCache } : {}) });
  return { scheduler, config };
}

/** True when the configuration uses the precise prefix scorer (so KV events and a tokenizer are wanted). */
export function usesPreciseScorer(config: LoadedConfig): boolean {
  return config.plugins.some((p) => p.type === 'precise-prefix-cache-scorer');
}

/** Shorthand for {@link buildSchedulerWithConfig} when only the scheduler is wanted. */
export function buildScheduler(opts: BuildSchedulerOptions = {}): KvrouteScheduler {
  return buildSchedulerWithConfig(opts).scheduler;
}
