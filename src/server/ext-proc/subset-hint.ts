/**
 * The gateway's subset hint (GIE endpoint-picker protocol, a MUST):
 * `metadata_context.filter_metadata["envoy.lb.subset_hint"]["x-gateway-destination-endpoint-subset"]`
 * is a list of `ip:port` strings or one comma-separated string. When present, the picker may
 * choose only inside it.
 */
import { fromProtoValue, type ProtoStruct } from './struct-value.js';
import { SUBSET_KEY, SUBSET_NAMESPACE } from './ext-proc-messages.js';

/** The hinted addresses, or undefined when the gateway sent no hint. An empty set means "none qualifies". */
export function readSubsetHint(filterMetadata: Record<string, ProtoStruct> | undefined): Set<string> | undefined {
  const ns = filterMetadata?.[SUBSET_NAMESPACE];
  const raw = ns?.fields?.[SUBSET_KEY];
  if (raw === undefined) return undefined;
  const v = fromProtoValue(raw);
  const items = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : [];
  const out = new Set<string>();
  for (const item of items) {
    if (typeof item !== 'string') continue;
    const s = item.trim();
    if (s.length > 0) out.add(s);
  }
  return out;
}

/** Reads a string key of a namespace of `filter_metadata` (e.g. `envoy.lb` / the served endpoint). */
export function readMetadataString(filterMetadata: Record<string, ProtoStruct> | undefined, namespace: string, key: string): string | undefined {
  const v = fromProtoValue(filterMetadata?.[namespace]?.fields?.[key]);
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}
