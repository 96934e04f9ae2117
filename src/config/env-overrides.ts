/**
 * The seeds' (llm-d v0.2) environment variables, applied on top of a config document:
 *
 *   ENABLE_<X>_SCORER=true|false   adds (weight from <X>_SCORER_WEIGHT, default 1) or removes a scorer
 *   <X>_SCORER_WEIGHT=<number>     sets the weight of that scorer when it is in the profile
 *
 * with X: PREFIX_AWARE -> prefix-cache-scorer, KVCACHE_AWARE -> precise-prefix-cache-scorer
 * (instance `kvcache-aware-scorer`; KV events and a tokenizer must be configured, else it routes
 * approximately and says so), LOAD_AWARE -> load-aware-scorer, SESSION_AWARE -> session-affinity-scorer. Like llm-d v0.2, a
 * scorer is on only when its ENABLE variable says so: with no file, if any ENABLE_* variable is
 * set the profile is built from the variables alone (plus max-score-picker); otherwise they
 * adjust kvroute's default. KVCACHE_INDEXER_REDIS_ADDR (host:port or redis:// URL) selects the
 * shared Redis block index. PD_ENABLED=true switches to prefill/decode disaggregation (pd-env.ts:
 * decode and prefill profiles, PD_PROMPT_LEN_THRESHOLD, PREFILL_* / DECODE_* scorer variables);
 * those variables without PD_ENABLED=true are errors. Bad values are errors.
 */
import type { EndpointPickerConfigDoc } from './config-schema.js';
import { applyPdEnv } from './pd-env.js';

/** Environment as a plain record (process.env fits). */
export type Env = Readonly<Record<string, string | undefined>>;

interface EnvScorer {
  readonly env: string;
  readonly type: string;
  readonly name: string;
  readonly note?: string;
}

/** The seed scorer variables and what they map to. */
export const ENV_SCORERS: readonly EnvScorer[] = [
  { env: 'PREFIX_AWARE', type: 'prefix-cache-scorer', name: 'prefix-cache-scorer' },
  { env: 'KVCACHE_AWARE', type: 'precise-prefix-cache-scorer', name: 'kvcache-aware-scorer' },
  { env: 'LOAD_AWARE', type: 'load-aware-scorer', name: 'load-aware-scorer' },
  { env: 'SESSION_AWARE', type: 'session-affinity-scorer', name: 'session-affinity-scorer' },
];

/** Result of applying the environment. */
export interface EnvResult {
  readonly doc: EndpointPickerConfigDoc;
  readonly applied: boolean;
  readonly warnings: string[];
  readonly kvCacheIndexerRedisAddr?: string;
  readonly pdEnabled: boolean;
}

/** True when any ENABLE_<X>_SCORER variable of {@link ENV_SCORERS} is set. */
export function envEnablesScorers(env: Env): boolean {
  return ENV_SCORERS.some((s) => env[`ENABLE_${s.env}_SCORER`] !== undefined);
}

/** Type of {@link applyScorerVars} (pd-env.ts applies it per profile with a prefix). */
export type ScorerVarsFn = (doc: EndpointPickerConfigDoc, profile: EndpointPickerConfigDoc['schedulingProfiles'][number] | undefined, env: Env, prefix: string, errors: string[], warnings: string[]) => boolean;

/**
 * Applies `<prefix>ENABLE_<X>_SCORER` / `<prefix><X>_SCORER_WEIGHT` to `profile` of `doc`
 * (prefix '' for the main variables, PREFILL_ / DECODE_ for P/D profiles). Returns whether any
 * variable was set.
 */
export const applyScorerVars: ScorerVarsFn = (doc, profile, env, prefix, errors, warnings) => {
  let applied = false;
  const added: { pluginRef: string; weight: number }[] = [];
  for (const s of ENV_SCORERS) {
    const enableKey = `${prefix}ENABLE_${s.env}_SCORER`;
    const weightKey = `${prefix}${s.env}_SCORER_WEIGHT`;
    const enabled = envBool(env, enableKey, errors);
    const weight = envWeight(env, weightKey, errors);
    if (enabled === undefined && weight === undefined) continue;
    applied = true;
    // The instance this variable controls: by name, else (prefix, load, session) the first of its type.
    const decl = doc.plugins.find((p) => (p.name ?? p.type) === s.name)
      ?? doc.plugins.find((p) => p.type === s.type);
    const name = decl !== undefined ? (decl.name ?? decl.type) : s.name;
    const ref = profile?.plugins.find((r) => r.pluginRef === name);
    if (enabled === false) {
      if (profile !== undefined) profile.plugins = profile.plugins.filter((r) => r.pluginRef !== name);
      continue;
    }
    if (enabled === true) {
      if (decl === undefined) doc.plugins.push({ type: s.type, name: s.name });
      const w = weight ?? ref?.weight ?? 1;
      if (ref !== undefined) ref.weight = w;
      else added.push({ pluginRef: name, weight: w });
      if (s.note !== undefined) warnings.push(`${enableKey}: ${s.note} ${w}`);
      continue;
    }
    // Only a weight: adjust the scorer if the profile uses it.
    if (ref !== undefined && weight !== undefined) ref.weight = weight;
    else warnings.push(`${weightKey} is set but the scorer is not enabled; set ${enableKey}=true to use it`);
  }
  if (profile !== undefined) profile.plugins = [...added, ...profile.plugins];
  return applied;
};

/** Parses a boolean variable (true/false/1/0, any case); undefined when unset. */
export function envBool(env: Env, key: string, errors: string[]): boolean | undefined {
  const raw = env[key];
  if (raw === undefined) return undefined;
  const v = raw.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0' || v === '') return false;
  errors.push(`${key}: "${raw}" is not a boolean; use true or false`);
  return undefined;
}

/** Parses a weight variable (a number >= 0); undefined when unset. */
function envWeight(env: Env, key: string, errors: string[]): number | undefined {
  const raw = env[key];
  if (raw === undefined) return undefined;
  const v = raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(v) || v < 0) {
    errors.push(`${key}: "${raw}" is not a valid weight; use a number >= 0 (e.g. 3)`);
    return undefined;
  }
  return v;
}

/**
 * Applies the seed variables to `base` (a fresh copy is returned). Collects every bad value into
 * `errors` instead of stopping at the first.
 */
export function applyEnv(base: EndpointPickerConfigDoc, env: Env, errors: string[]): EnvResult {
  const doc: EndpointPickerConfigDoc = structuredClone(base);
  const warnings: string[] = [];
  let applied = applyScorerVars(doc, doc.schedulingProfiles[0], env, '', errors, warnings);
  const redis = env.KVCACHE_INDEXER_REDIS_ADDR?.trim();
  const pdEnabled = envBool(env, 'PD_ENABLED', errors) ?? false;
  if (applyPdEnv(doc, env, pdEnabled, errors, warnings, applyScorerVars)) applied = true;
  return { doc, applied, warnings, kvCacheIndexerRedisAddr: redis || undefined, pdEnabled };
}
