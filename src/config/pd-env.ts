/**
 * The seeds' prefill/decode variables (llm-d v0.2), made real:
 *
 *   PD_ENABLED=true             the config's one profile becomes two: `decode` (decode-filter +
 *                               its plugins) and `prefill` (prefill-filter + its plugins), run by
 *                               disagg-profile-handler with prefix-based-pd-decider
 *                               {nonCachedTokens 16, promptTokens PD_PROMPT_LEN_THRESHOLD}
 *   PD_PROMPT_LEN_THRESHOLD=n   minimum prompt tokens to disaggregate (decider promptTokens)
 *   PREFILL_ENABLE_<X>_SCORER, PREFILL_<X>_SCORER_WEIGHT, DECODE_...  like ENABLE_<X>_SCORER
 *                               but on the prefill / decode profile only
 *
 * A config that already runs disagg-profile-handler keeps its profiles (the PREFILL_/DECODE_
 * variables apply to them). Any of these variables without PD_ENABLED=true is an error, so a
 * P/D setting is never silently ignored.
 */
import type { EndpointPickerConfigDoc } from './config-schema.js';
import type { Env, ScorerVarsFn } from './env-overrides.js';

const PD_VARS = /^(PD_PROMPT_LEN_THRESHOLD|(PREFILL|DECODE)_(ENABLE_)?(KVCACHE|LOAD|PREFIX|SESSION)_AWARE_SCORER(_WEIGHT)?)$/;

/** llm-d's sample nonCachedTokens. */
export const PD_ENV_NON_CACHED_TOKENS = 16;

type Profile = EndpointPickerConfigDoc['schedulingProfiles'][number];

/** Applies the P/D variables to `doc` in place; returns whether any was applied. */
export function applyPdEnv(doc: EndpointPickerConfigDoc, env: Env, pdEnabled: boolean, errors: string[], warnings: string[], scorerVars: ScorerVarsFn): boolean {
  const pdKeys = Object.keys(env).filter((k) => PD_VARS.test(k) && env[k] !== undefined);
  if (!pdEnabled) {
    for (const k of pdKeys) errors.push(`${k}: configures prefill/decode disaggregation, which is off; set PD_ENABLED=true or unset ${k}`);
    return false;
  }
  let threshold = 0;
  const raw = env.PD_PROMPT_LEN_THRESHOLD;
  if (raw !== undefined) {
    if (!/^\s*\d+\s*$/.test(raw)) errors.push(`PD_PROMPT_LEN_THRESHOLD: "${raw}" is not a token count; use an integer >= 0 (e.g. 100)`);
    else threshold = Number(raw);
  }
  let handler = doc.plugins.find((p) => p.type === 'disagg-profile-handler');
  let decode: Profile | undefined;
  let prefill: Profile | undefined;
  if (handler !== undefined) {
    const prm = (handler.parameters ?? {}) as { profiles?: { decode?: string; prefill?: string } };
    decode = doc.schedulingProfiles.find((p) => p.name === (prm.profiles?.decode ?? 'decode'));
    prefill = doc.schedulingProfiles.find((p) => p.name === (prm.profiles?.prefill ?? 'prefill'));
    if (raw !== undefined) errors.push('PD_PROMPT_LEN_THRESHOLD: the config file already configures disaggregation; set promptTokens on its prefix-based-pd-decider and unset the variable');
  } else if (doc.schedulingProfiles.length !== 1) {
    errors.push(`PD_ENABLED=true: the config has ${doc.schedulingProfiles.length} profiles and no disagg-profile-handler; PD_ENABLED turns one profile into decode + prefill`);
    return true;
  } else {
    const base = doc.schedulingProfiles[0];
    const add = (type: string, parameters?: Record<string, unknown>): string => {
      let name = type;
      for (let i = 2; doc.plugins.some((p) => (p.name ?? p.type) === name); i++) name = `${type}-${i}`;
      doc.plugins.push({ type, name, ...(parameters !== undefined ? { parameters } : {}) });
      return name;
    };
    const df = add('decode-filter');
    const pf = add('prefill-filter');
    const decider = add('prefix-based-pd-decider', { nonCachedTokens: PD_ENV_NON_CACHED_TOKENS, promptTokens: threshold });
    add('disagg-profile-handler', { deciders: { prefill: decider } });
    handler = doc.plugins[doc.plugins.length - 1];
    decode = { name: 'decode', plugins: [{ pluginRef: df }, ...structuredClone(base.plugins)] };
    prefill = { name: 'prefill', plugins: [{ pluginRef: pf }, ...structuredClone(base.plugins)] };
    doc.schedulingProfiles = [decode, prefill];
    warnings.push(`PD_ENABLED=true: profile "${base.name}" split into decode + prefill (disagg-profile-handler, prefix-based-pd-decider nonCachedTokens ${PD_ENV_NON_CACHED_TOKENS}${threshold > 0 ? `, promptTokens ${threshold}` : ''}); endpoints need roles (role=prefill|decode or label llm-d.ai/role)`);
  }
  const seen = new Set(warnings);
  const w2: string[] = [];
  scorerVars(doc, prefill, env, 'PREFILL_', errors, w2);
  scorerVars(doc, decode, env, 'DECODE_', errors, w2);
  for (const w of w2) if (!seen.has(w)) warnings.push(w);
  return true;
}
