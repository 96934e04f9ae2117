/**
 * Conversions between plain JSON values and `google.protobuf.Struct` as proto-loader represents
 * it (`{fields: {k: {stringValue}}}`), for ext_proc dynamic metadata and `metadata_context`. The
 * Value fields are camelCase even with `keepCase`: protobufjs ships struct.proto pre-parsed (its
 * `common` definitions), so their names are not re-cased. (snake_case is silently dropped.)
 */

/** A google.protobuf.Value as decoded by proto-loader (oneof `kind` set with `oneofs: true`). */
export interface ProtoValue {
  kind?: string;
  nullValue?: unknown;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: ProtoStruct;
  listValue?: { values?: ProtoValue[] };
}

/** A google.protobuf.Struct as decoded by proto-loader. */
export interface ProtoStruct {
  fields?: Record<string, ProtoValue>;
}

/** JSON value -> protobuf Value. */
export function toProtoValue(v: unknown): ProtoValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toProtoValue) } };
  return { structValue: toProtoStruct(v as Record<string, unknown>) };
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
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.listValue !== undefined) return (v.listValue.values ?? []).map(fromProtoValue);
  if (v.structValue !== undefined) return fromProtoStruct(v.structValue);
  return null;
}

/** protobuf Struct -> JSON object. */
export function fromProtoStruct(s: ProtoStruct | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = fromProtoValue(v);
  return out;
}
