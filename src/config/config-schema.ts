/**
 * The zod schema of an `EndpointPickerConfig` document (llm-d's shape), compiled once at module
 * load. It checks structure only; plugin types, references and per-type parameters are checked
 * by `loadConfig` against the plugin registry.
 */
import { z } from 'zod';

/** apiVersions accepted (llm-d's and the Gateway API Inference Extension's). */
export const API_VERSIONS = ['llm-d.ai/v1alpha1', 'inference.networking.x-k8s.io/v1alpha1'] as const;

const pluginSchema = z.strictObject({
  type: z.string({ error: 'must be a plugin type id (a string such as "queue-scorer")' }).min(1, 'must not be empty'),
  name: z.string({ error: 'must be a string' }).min(1, 'must not be empty').optional(),
  parameters: z.record(z.string(), z.unknown(), { error: 'must be a mapping of parameter names to values' }).optional(),
});

const refSchema = z.strictObject({
  pluginRef: z.string({ error: 'must be the name of a declared plugin (a string)' }).min(1, 'must not be empty'),
  weight: z.number({ error: 'must be a number >= 0' }).min(0, 'must be a number >= 0').optional(),
});

const profileSchema = z.strictObject({
  name: z.string({ error: 'must be a string' }).min(1, 'must not be empty'),
  plugins: z.array(refSchema, { error: 'must be a list of {pluginRef, weight?}' }).min(1, 'must list at least a picker'),
});

/** Schema of the whole document. */
export const endpointPickerConfigSchema = z.strictObject({
  apiVersion: z.enum(API_VERSIONS, { error: `must be one of: ${API_VERSIONS.join(', ')}` }),
  kind: z.literal('EndpointPickerConfig', { error: 'must be EndpointPickerConfig' }),
  plugins: z.array(pluginSchema, { error: 'must be a list of {type, name?, parameters?}' }).min(1, 'must declare at least one plugin'),
  schedulingProfiles: z.array(profileSchema, { error: 'must be a list of {name, plugins}' }).min(1, 'must declare at least one profile'),
});

/** A structurally valid document. */
export type EndpointPickerConfigDoc = z.infer<typeof endpointPickerConfigSchema>;

/** Formats a zod issue path as `schedulingProfiles[0].plugins[1].weight`. */
export function formatPath(path: readonly PropertyKey[], prefix = ''): string {
  let s = prefix;
  for (const k of path) {
    if (typeof k === 'number') s += `[${k}]`;
    else s += s === '' ? String(k) : `.${String(k)}`;
  }
  return s === '' ? '(document)' : s;
}

/** Turns zod issues into one line each, naming the field path and what is allowed. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], prefix = '', allowedKeys?: (path: readonly PropertyKey[]) => readonly string[] | undefined): string[] {
  return issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      const allowed = allowedKeys?.(i.path);
      const keys = i.keys.map((k) => `"${k}"`).join(', ');
      return `${formatPath(i.path, prefix)}: unknown field ${keys}${allowed ? `; allowed: ${allowed.length > 0 ? allowed.join(', ') : '(none)'}` : ''}`;
    }
    return `${formatPath(i.path, prefix)}: ${i.message}`;
  });
}

/** Allowed keys at a path of the document (for unknown-field messages). */
export function documentKeysAt(path: readonly PropertyKey[]): readonly string[] | undefined {
  if (path.length === 0) return Object.keys(endpointPickerConfigSchema.shape);
  if (path[0] === 'plugins' && path.length === 2) return Object.keys(pluginSchema.shape);
  if (path[0] === 'schedulingProfiles' && path.length === 2) return Object.keys(profileSchema.shape);
  if (path[0] === 'schedulingProfiles' && path.length === 4) return Object.keys(refSchema.shape);
  return undefined;
}
