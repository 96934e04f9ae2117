/**
 * Config checks across plugins and profiles (after per-plugin validation):
 *
 * 1. The profile handler: at most one; none means single-profile (then exactly one profile).
 *    `disagg-profile-handler` needs its decode profile, and its prefill profile when a prefill
 *    decider is set; the decider must be a declared decider. No profile, decider or producer
 *    may be declared and never used.
 * 2. Data flow inside each profile, in execution order (filters as listed, then scorers as
 *    listed, then the picker): a plugin that `consumes` a data key needs a producer of it
 *    earlier in the same profile; one that `reads` it must come after its producer when the
 *    profile has one. A decider consumes from the decode profile. Messages name the plugins.
 */
import type { DataKey, PluginDefinition, PluginRegistry } from '../scheduling/plugin-registry.js';
import type { PluginConfig, ProfileConfig } from './scheduler-config.js';

/** Adds one line per problem to `errors`. */
export function validateProfiles(plugins: readonly PluginConfig[], profiles: readonly ProfileConfig[], registry: PluginRegistry, errors: string[]): void {
  const byName = new Map(plugins.map((p) => [p.name, p] as const));
  const defOf = (name: string): PluginDefinition<unknown> | undefined => {
    const p = byName.get(name);
    return p === undefined ? undefined : registry.get(p.type);
  };
  const handlers = plugins.filter((p) => registry.get(p.type)?.kind === 'profile-handler');
  const profileNames = profiles.map((p) => p.name);
  const usedDeciders = new Set<string>();
  const runs = new Set<string>();
  let decodeProfile: string | undefined;
  let decider: string | undefined;
  if (handlers.length > 1) {
    errors.push(`plugins: ${handlers.length} profile handlers declared (${handlers.map((h) => h.name).join(', ')}); declare one`);
  } else if (handlers.length === 0 || handlers[0].type === 'single-profile-handler') {
    if (profiles.length !== 1) {
      errors.push(`schedulingProfiles: ${profiles.length} profiles (${profileNames.join(', ')}) need a profile handler that runs them; add "- type: disagg-profile-handler" (profiles decode and prefill) or keep one profile`);
    } else runs.add(profiles[0].name);
  } else if (handlers[0].type === 'disagg-profile-handler') {
    const h = handlers[0];
    const prm = h.parameters as { profiles: { decode: string; prefill: string }; deciders: { prefill?: string } };
    decodeProfile = prm.profiles.decode;
    decider = prm.deciders.prefill;
    if (!profileNames.includes(decodeProfile)) {
      errors.push(`${h.name}: decode profile "${decodeProfile}" is not among schedulingProfiles (${profileNames.join(', ')}); name one "decode" or set parameters.profiles.decode`);
    } else runs.add(decodeProfile);
    if (decider !== undefined) {
      usedDeciders.add(decider);
      const kind = defOf(decider)?.kind;
      if (kind === undefined) errors.push(`${h.name}: deciders.prefill "${decider}" is not a declared plugin; declare "- type: prefix-based-pd-decider" (or always-disagg-pd-decider)`);
      else if (kind !== 'decider') errors.push(`${h.name}: deciders.prefill "${decider}" is a ${kind}, not a decider`);
      if (!profileNames.includes(prm.profiles.prefill)) {
        errors.push(`${h.name}: prefill profile "${prm.profiles.prefill}" is not among schedulingProfiles (${profileNames.join(', ')}); add it or set parameters.profiles.prefill`);
      } else runs.add(prm.profiles.prefill);
    }
  }
  for (const p of profileNames) {
    if (!runs.has(p) && handlers.length <= 1 && !(handlers.length === 0 && profiles.length !== 1)) {
      errors.push(`schedulingProfiles: profile "${p}" is never run by ${handlers[0]?.name ?? 'the implicit single-profile handler'}${handlers[0]?.type === 'disagg-profile-handler' ? ' (a prefill profile runs only when deciders.prefill is set)' : ''}`);
    }
  }
  for (const p of plugins) {
    const kind = registry.get(p.type)?.kind;
    if (kind === 'decider' && !usedDeciders.has(p.name)) errors.push(`plugins: decider "${p.name}" is declared but no profile handler uses it; set disagg-profile-handler parameters.deciders.prefill: ${p.name}`);
    if (kind === 'producer' && !plugins.some((q) => q.type === 'prefix-cache-scorer')) errors.push(`plugins: "${p.name}" configures prefix-cache-scorer, which the config does not declare`);
  }
  const produced = new Map<string, Map<DataKey, string>>();
  for (const prof of profiles) produced.set(prof.name, checkDataFlow(prof, defOf, errors));
  if (decider !== undefined && decodeProfile !== undefined && produced.has(decodeProfile)) {
    for (const key of defOf(decider)?.consumes ?? []) {
      if (!produced.get(decodeProfile)!.has(key)) {
        errors.push(`${decider}: consumes ${key} from decode profile "${decodeProfile}", which has no plugin producing it; add prefix-cache-scorer (or precise-prefix-cache-scorer) to that profile`);
      }
    }
  }
}

/** Checks one profile; returns what it produces (key -> producer name). */
function checkDataFlow(prof: ProfileConfig, defOf: (n: string) => PluginDefinition<unknown> | undefined, errors: string[]): Map<DataKey, string> {
  const rank = (kind: string | undefined): number => (kind === 'filter' ? 0 : kind === 'scorer' ? 1 : 2);
  const order = prof.plugins
    .map((r, i) => ({ name: r.pluginRef, def: defOf(r.pluginRef), i }))
    .filter((x) => x.def !== undefined)
    .sort((a, b) => rank(a.def!.kind) - rank(b.def!.kind) || a.i - b.i);
  const all = new Map<DataKey, string>();
  for (const x of order) for (const k of x.def!.produces ?? []) if (!all.has(k)) all.set(k, x.name);
  const seen = new Map<DataKey, string>();
  for (const x of order) {
    for (const k of x.def!.consumes ?? []) {
      if (seen.has(k)) continue;
      const later = all.get(k);
      errors.push(later !== undefined
        ? `schedulingProfiles "${prof.name}": ${x.name} consumes ${k}, produced by ${later} which runs after it; list ${later} before ${x.name}`
        : `schedulingProfiles "${prof.name}": ${x.name} consumes ${k} but no plugin of the profile produces it; add prefix-cache-scorer or precise-prefix-cache-scorer before it`);
    }
    for (const k of x.def!.reads ?? []) {
      const p = all.get(k);
      if (p !== undefined && !seen.has(k)) errors.push(`schedulingProfiles "${prof.name}": ${x.name} reads ${k}, produced by ${p} which runs after it; list ${p} before ${x.name}`);
    }
    for (const k of x.def!.produces ?? []) if (!seen.has(k)) seen.set(k, x.name);
  }
  return all;
}
