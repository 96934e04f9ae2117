/**
 * Conversions between plain JSON values and `google.protobuf.Struct` as proto-loader
 * represents it with `keepCase` (`{fields: {k: {string_value}}}`), for ext_proc dynamic
 * metadata and `metadata_context`.
 */

/** A google.protobuf.Value as decoded by proto-loader (oneof `kind` set with `oneofs: true`). */
export interface ProtoValue {
  kind?: string;
  null_value?: unknown;
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  struct_value?: ProtoStruct;
  list_value?: { values?: ProtoValue[] };
}

/** A google.protobuf.Struct as decoded by proto-loader. */
export interface ProtoStruct {
  fields?: Record<string, ProtoValue>;
}

/** JSON value -> protobuf Value. */
export function toProtoValue(v: unknown): ProtoValue {
  if (v === null || v === undefined) return { null_value: 'NULL_VALUE' };
  if (typeof v === 'string') return { string_value: v };
  if (typeof v === 'number') return { number_value: v };
  if (typeof v === 'boolean') return { bool_value: v };
  if (Array.isArray(v)) return { list_value: { values: v.map(toProtoValue) } };
  return { struct_value: toProtoStruct(v as Record<string, unknown>) };
}

/** JSON object -> protobuf Struct. */
export function toProtoStruct(obj: Record<string, unknown>): ProtoStruct {
  const fields: Record<string, ProtoValue> = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = toProtoValue(v);
  return { fields };
}

/** protobuf Value -> JSON value (unknown shapes become undefined). */
export function fromProtoValue(v: ProtoValue | undefined): unknown {
  if (v === undefined || v === null) return undefined;
  if (v.string_value !== undefined) return v.string_value;
  if (v.number_value !== undefined) return v.number_value;
  if (v.bool_value !== undefined) return v.bool_value;
  if (v.list_value !== undefined) return (v.list_value.values ?? []).map(fromProtoValue);
  if (v.struct_value !== undefined) return fromProtoStruct(v.struct_value);
  return null;
}

/** protobuf Struct -> JSON object. */
export function fromProtoStruct(s: ProtoStruct | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = fromProtoValue(v);
  return out;
}
