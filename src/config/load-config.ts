/**
 * Loads the scheduling configuration: a YAML `EndpointPickerConfig` (file or text) or kvroute's
 * default, then the seeds' environment variables on top (env-overrides.ts), then validation
 * against the plugin registry. Every problem found is reported at once in one KvrError
 * (KVR_ERR_CONFIG), one line each, naming the field path and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { KvrError } from '../core/errors.js';
import { createDefaultRegistry } from '../scheduling/builtin-plugins.js';
import type { PluginRegistry } from '../scheduling/plugin-registry.js';
import { documentKeysAt, endpointPickerConfigSchema, formatIssues, type EndpointPickerConfigDoc } from './config-schema.js';
import { defaultConfigDoc } from './default-config.js';
import { applyEnv, envEnablesScorers, type Env } from './env-overrides.js';
import { applyLlmdCompat } from './llmd-compat.js';
import { validateProfiles } from './validate-profiles.js';
import type { ConfigSource, LoadedConfig, PluginConfig, ProfileConfig } from './scheduler-config.js';

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Path of a YAML file. */
  readonly file?: string;
  /** YAML text (when there is no file). */
  readonly text?: string;
  /** Environment (pass `process.env`); default none. */
  readonly env?: Env;
  /** Registry to validate plugin types and parameters against; default the built-ins. */
  readonly registry?: PluginRegistry;
}

/** Loads and validates the configuration; throws KvrError('KVR_ERR_CONFIG') listing every problem. */
export function loadConfig(opts: LoadConfigOptions = {}): LoadedConfig {
  const registry = opts.registry ?? createDefaultRegistry();
  const env = opts.env ?? {};
  const sources: ConfigSource[] = [];
  const where = opts.file !== undefined ? `config file ${opts.file}` : opts.text !== undefined ? 'config text' : 'configuration';

  let doc: EndpointPickerConfigDoc;
  if (opts.file !== undefined || opts.text !== undefined) {
    doc = parseDocument(readText(opts), where);
    sources.push(opts.file !== undefined ? 'file' : 'text');
  } else if (envEnablesScorers(env)) {
    doc = {
      apiVersion: 'llm-d.ai/v1alpha1',
      kind: 'EndpointPickerConfig',
      plugins: [{ type: 'max-score-picker' }],
      schedulingProfiles: [{ name: 'default', plugins: [{ pluginRef: 'max-score-picker' }] }],
    };
  } else {
    doc = defaultConfigDoc();
    sources.push('default');
  }

  const errors: string[] = [];
  const overlay = applyEnv(doc, env, errors);
  if (overlay.applied) sources.push('env');
  if (errors.length > 0) fail('environment', errors);
  const warnings = [...overlay.warnings];
  applyLlmdCompat(overlay.doc, errors);
  const { plugins, profiles } = validate(overlay.doc, registry, errors, warnings);
  if (errors.length === 0) validateProfiles(plugins, profiles, registry, errors);
  if (errors.length > 0) fail(overlay.applied ? `${where} (with environment overrides)` : where, errors);
  return {
    plugins,
    schedulingProfiles: profiles,
    sources,
    warnings,
    extras: { kvCacheIndexerRedisAddr: overlay.kvCacheIndexerRedisAddr, pdEnabled: overlay.pdEnabled },
  };
}

function readText(opts: LoadConfigOptions): string {
  if (opts.file === undefined) return opts.text as string;
  try {
    return readFileSync(opts.file, 'utf8');
  } catch (err) {
    throw new KvrError('KVR_ERR_CONFIG', `cannot read config file ${opts.file}: ${(err as Error).message}`, { cause: err });
  }
}

function parseDocument(text: string, where: string): EndpointPickerConfigDoc {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    const msg = err instanceof YAMLParseError ? err.message : String(err);
    throw new KvrError('KVR_ERR_CONFIG', `${where}: not valid YAML: ${msg}`, { cause: err });
  }
  const r = endpointPickerConfigSchema.safeParse(raw);
  if (!r.success) fail(where, formatIssues(r.error.issues, '', documentKeysAt));
  return r.data as EndpointPickerConfigDoc;
}

function fail(where: string, errors: readonly string[]): never {
  throw new KvrError('KVR_ERR_CONFIG', `invalid ${where}:\n  - ${errors.join('\n  - ')}`);
}

function allowedParams(schema: z.ZodType): readonly string[] | undefined {
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : undefined;
}

/** Checks types, names, parameters, references, weights and pickers; fills defaults. */
function validate(doc: EndpointPickerConfigDoc, registry: PluginRegistry, errors: string[], warnings: string[]): { plugins: PluginConfig[]; profiles: ProfileConfig[] } {
  const plugins: PluginConfig[] = [];
  const kinds = new Map<string, string>();
  doc.plugins.forEach((p, i) => {
    const at = `plugins[${i}]`;
    const name = p.name ?? p.type;
    const def = registry.get(p.type);
    if (def === undefined) {
      errors.push(`${at}.type: unknown plugin type "${p.type}"; known types: ${registry.types().join(', ')}`);
      return;
    }
    if (kinds.has(name)) {
      errors.push(`${at}.name: "${name}" is already declared; give each instance of ${p.type} its own name`);
      return;
    }
    const parsed = def.params.safeParse(p.parameters ?? {});
    if (!parsed.success) {
      errors.push(...formatIssues(parsed.error.issues, `${at}.parameters`, (path) => (path.length === 0 ? allowedParams(def.params) : undefined)));
      return;
    }
    kinds.set(name, def.kind);
    plugins.push({ type: p.type, name, parameters: parsed.data as Record<string, unknown> });
  });
  const declared = doc.plugins.map((p) => p.name ?? p.type);
  const profiles: ProfileConfig[] = doc.schedulingProfiles.map((prof, pi) => {
    let pickers = 0;
    const refs = prof.plugins.flatMap((ref, ri) => {
      const at = `schedulingProfiles[${pi}].plugins[${ri}]`;
      if (!declared.includes(ref.pluginRef)) {
        errors.push(`${at}.pluginRef: "${ref.pluginRef}" is not a declared plugin; declared: ${declared.join(', ')}`);
        return [];
      }
      const kind = kinds.get(ref.pluginRef);
      if (kind === 'picker') pickers++;
      if (kind !== undefined && kind !== 'filter' && kind !== 'scorer' && kind !== 'picker') {
        errors.push(`${at}.pluginRef: "${ref.pluginRef}" is a ${kind}; profiles hold filters, scorers and a picker (${kind === 'decider' ? 'reference deciders from disagg-profile-handler parameters.deciders' : kind === 'profile-handler' ? 'a profile handler is declared under plugins only' : 'producers are declared under plugins only'})`);
        return [];
      }
      if (kind !== undefined && kind !== 'scorer' && ref.weight !== undefined) {
        warnings.push(`${at}.weight: ignored, "${ref.pluginRef}" is a ${kind} (weights apply to scorers only)`);
      }
      return [{ pluginRef: ref.pluginRef, weight: ref.weight ?? 1 }];
    });
    if (pickers !== 1) {
      const pickerTypes = registry.types().filter((t) => registry.get(t)?.kind === 'picker');
      errors.push(`schedulingProfiles[${pi}].plugins: a profile needs exactly one picker, "${prof.name}" has ${pickers}; pickers: ${pickerTypes.join(', ')}`);
    }
    return { name: prof.name, plugins: refs };
  });
  return { plugins, profiles };
}
