/**
 * The compact records router replicas exchange over the sync stream (src/sync/router-sync.ts).
 * One stream entry carries one sender's batch: fields `r` (router id) and `b` (a JSON array of
 * records). Records:
 *
 *   { t: 'p', q, e, w, c, s?, k? }  pick: request q on endpoint e, w prefill tokens predicted
 *                                   uncached, c 1 when cold, k the approximate block keys
 *                                   (Float64 little-endian, base64) made with scheme s
 *   { t: 'f', q, e }                first token of q on e (its prefill is done)
 *   { t: 'c', q, e }                q's assignment on e ended (success, error or abort)
 *   { t: 'h', n? }                  heartbeat (the sender is alive); n: the sender's in-flight
 *                                   requests per endpoint id when it was queued, which receivers
 *                                   reconcile their entries of that sender against
 *   { t: 'x' }                      bye (the sender stops: forget its load now)
 *
 * Decoding validates every field; a malformed record is skipped (and counted) and never throws.
 */

/** One sync record; see the file comment. */
export type SyncRecord =
  | { t: 'p'; q: string; e: string; w: number; c: 0 | 1; s?: string; k?: string }
  | { t: 'f' | 'c'; q: string; e: string }
  | { t: 'h'; n?: Record<string, number> }
  | { t: 'x' };

/** Most keys accepted in one pick record (bounds what a hostile stream can make us allocate). */
export const MAX_KEYS_PER_RECORD = 65_536;

const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 512;

/** Most endpoints accepted in one heartbeat's in-flight counts. */
export const MAX_ENDPOINTS_PER_HEARTBEAT = 65_536;

/** Validates a heartbeat's per-endpoint in-flight counts; undefined when malformed. */
function asCounts(v: unknown): Record<string, number> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out = Object.create(null) as Record<string, number>;
  let n = 0;
  for (const [k, c] of Object.entries(v as Record<string, unknown>)) {
    if (++n > MAX_ENDPOINTS_PER_HEARTBEAT || !isId(k) || typeof c !== 'number' || !Number.isInteger(c) || c < 0) return undefined;
    out[k] = c;
  }
  return out;
}

/** Encodes block keys as base64 of their little-endian Float64 bytes. */
export function encodeKeys(keys: Float64Array): string {
  return Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength).toString('base64');
}

/** Decodes {@link encodeKeys}; undefined when malformed. */
export function decodeKeys(s: string): Float64Array | undefined {
  const buf = Buffer.from(s, 'base64');
  if (buf.length % 8 !== 0 || buf.length / 8 > MAX_KEYS_PER_RECORD) return undefined;
  const out = new Float64Array(buf.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = buf.readDoubleLE(i * 8);
  return out;
}

/** Validates one decoded JSON value as a record. */
export function asRecord(v: unknown): SyncRecord | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  switch (o.t) {
    case 'x':
      return { t: 'x' };
    case 'h': {
      if (o.n === undefined) return { t: 'h' };
      const n = asCounts(o.n);
      return n !== undefined ? { t: 'h', n } : undefined;
    }
    case 'f':
    case 'c':
      return isId(o.q) && isId(o.e) ? { t: o.t, q: o.q, e: o.e } : undefined;
    case 'p': {
      if (!isId(o.q) || !isId(o.e) || typeof o.w !== 'number' || !Number.isFinite(o.w) || o.w < 0 || (o.c !== 0 && o.c !== 1)) return undefined;
      if ((o.k !== undefined && typeof o.k !== 'string') || (o.s !== undefined && typeof o.s !== 'string')) return undefined;
      return { t: 'p', q: o.q, e: o.e, w: o.w, c: o.c, ...(typeof o.s === 'string' ? { s: o.s } : {}), ...(typeof o.k === 'string' ? { k: o.k } : {}) };
    }
    default:
      return undefined;
  }
}

/** Parses a batch; `bad` counts records (or the whole batch) that did not validate. */
export function parseBatch(json: string): { records: SyncRecord[]; bad: number } {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return { records: [], bad: 1 };
  }
  if (!Array.isArray(v)) return { records: [], bad: 1 };
  const records: SyncRecord[] = [];
  let bad = 0;
  for (const x of v) {
    const r = asRecord(x);
    if (r === undefined) bad++;
    else records.push(r);
  }
  return { records, bad };
}

/** Milliseconds part of a Redis stream id (`<ms>-<seq>`); NaN when malformed. */
export function streamIdMs(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
}
