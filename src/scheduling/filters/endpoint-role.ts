/**
 * An endpoint's prefill/decode role as llm-d names it: the `llm-d.ai/role` label when the
 * endpoint carries one, else kvroute's endpoint `role=` option (`both` -> `prefill-decode`).
 * Values: prefill | decode | prefill-decode (`both` is llm-d's deprecated alias of
 * prefill-decode; encode roles are recognised so they can be excluded).
 */
import type { Endpoint } from '../../core/endpoint.js';

/** The label llm-d puts on model-server pods. */
export const ROLE_LABEL = 'llm-d.ai/role';

/** Roles that may serve the decode leg (llm-d's decode-filter set). */
export const DECODE_ROLES: ReadonlySet<string> = new Set(['decode', 'prefill-decode', 'both', 'encode-prefill-decode']);
/** Roles that may serve the prefill leg (llm-d's prefill-filter set). */
export const PREFILL_ROLES: ReadonlySet<string> = new Set(['prefill', 'encode-prefill', 'prefill-decode', 'both', 'encode-prefill-decode']);

/** The endpoint's role label value (see the file comment); '' when the label is present but empty. */
export function endpointRole(e: Endpoint): string {
  const label = e.labels[ROLE_LABEL];
  if (label !== undefined) return label.trim().toLowerCase();
  return e.role === 'both' ? 'prefill-decode' : e.role;
}

/** The endpoint's labels with the role label filled in from `role=` when absent. */
export function labelsWithRole(e: Endpoint): Readonly<Record<string, string>> {
  if (e.labels[ROLE_LABEL] !== undefined) return e.labels;
  return { ...e.labels, [ROLE_LABEL]: endpointRole(e) };
}
