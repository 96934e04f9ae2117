/**
 * The msgpack payload of a vLLM KV-cache event message (an `EventBatch`), both ways.
 *
 * Two encodings exist in the wild and both are accepted at both levels (batch and event):
 *
 * ```
 *   array (msgspec array_like):  [ts, [event, ...], data_parallel_rank?]
 *       ["BlockStored", block_hashes, parent_block_hash, token_ids, block_size,
 *        lora_id, medium, lora_name, extra_keys, group_idx, ...]   (older senders stop early)
 *       ["BlockRemoved", block_hashes, medium?, group_idx?]
 *       ["AllBlocksCleared"]
 *   map (newest vLLM):  {"ts", "events", "data_parallel_rank"?}
 *       {"type": "BlockStored", "block_hashes": [...], ...}   (defaults omitted, unknown keys ignored)
 * ```
 *
 * Hashes are unsigned 64-bit: `uint64` above 2^63 decodes to bigint; signed `int64` and plain
 * numbers are normalised to the same unsigned value; raw bytes count by their last 8 bytes,
 * big-endian. One bad event is skipped (and counted) without losing the rest of its batch; a
 * payload that is not a batch at all throws a {@link KvrError} (`KVR_ERR_UPSTREAM`).
 *
 * Encoding ({@link encodeEventBatch}, used by the simulator) writes exactly what vLLM writes:
 * `float64` ts, smallest unsigned integer forms for hashes, `uint64` above 2^63.
 */
import { decode } from '@msgpack/msgpack';
import { KvrError } from '../core/errors.js';
import type { BlockStoredEvent, KvEvent, KvEventBatch } from './types.js';
import { MsgpackWriter } from './msgpack-writer.js';

/** Wire encoding of a batch: msgspec `array_like` (older vLLM) or map (newest vLLM). */
export type EventEncoding = 'array' | 'map';

/** Options of {@link encodeEventBatch}. */
export interface EncodeOptions {
  /** Default 'array'. */
  encoding?: EventEncoding;
}

/** A decoded payload and the number of events skipped inside it. */
export interface DecodedBatch {
  batch: KvEventBatch;
  /** Events that could not be decoded and were left out of `batch.events`. */
  malformedEvents: number;
}


/** Encodes a batch like vLLM's `ZmqEventPublisher` does. */
export function encodeEventBatch(batch: KvEventBatch, opts: EncodeOptions = {}): Uint8Array {
  const w = new MsgpackWriter(64 + batch.events.length * 64);
  const asMap = opts.encoding === 'map';
  const withRank = batch.dataParallelRank !== null && batch.dataParallelRank !== undefined;
  if (asMap) {
    w.mapHeader(withRank ? 3 : 2).str('ts').float64(batch.ts).str('events');
  } else {
    w.arrayHeader(withRank ? 3 : 2).float64(batch.ts);
  }
  w.arrayHeader(batch.events.length);
  for (const ev of batch.events) writeEvent(w, ev, asMap);
  if (withRank) {
    if (asMap) w.str('data_parallel_rank');
    w.int(batch.dataParallelRank!);
  }
  return w.finish();
}

function writeHashes(w: MsgpackWriter, hashes: readonly bigint[]): void {
  w.arrayHeader(hashes.length);
  for (const h of hashes) w.int(h);
}

function optStr(w: MsgpackWriter, s: string | null): void {
  if (s === null || s === undefined) w.nil();
  else w.str(s);
}

function writeEvent(w: MsgpackWriter, ev: KvEvent, asMap: boolean): void {
  const key = (k: string): void => void (asMap && w.str(k));
  switch (ev.type) {
    case 'BlockStored': {
      if (asMap) w.mapHeader(8).str('type');
      else w.arrayHeader(8);
      w.str('BlockStored');
      key('block_hashes');
      writeHashes(w, ev.blockHashes);
      key('parent_block_hash');
      if (ev.parentBlockHash === null) w.nil();
      else w.int(ev.parentBlockHash);
      key('token_ids');
      w.arrayHeader(ev.tokenIds.length);
      for (const t of ev.tokenIds) w.int(t);
      key('block_size');
      w.int(ev.blockSize);
      key('lora_id');
      if (ev.loraId === null || ev.loraId === undefined) w.nil();
      else w.int(ev.loraId);
      key('medium');
      optStr(w, ev.medium);
      key('lora_name');
      optStr(w, ev.loraName);
      return;
    }
    case 'BlockRemoved':
      if (asMap) w.mapHeader(3).str('type');
      else w.arrayHeader(3);
      w.str('BlockRemoved');
      key('block_hashes');
      writeHashes(w, ev.blockHashes);
      key('medium');
      optStr(w, ev.medium);
      return;
    case 'AllBlocksCleared':
      if (asMap) w.mapHeader(1).str('type');
      else w.arrayHeader(1);
      w.str('AllBlocksCleared');
      return;
    default:
      throw new KvrError('KVR_ERR_INTERNAL', `cannot encode KV event of type ${String((ev as { type?: unknown }).type)}`);
  }
}

/** Decodes one payload; throws KVR_ERR_UPSTREAM when it is not an EventBatch at all. */
export function decodeEventBatch(payload: Uint8Array): DecodedBatch {
  let raw: unknown;
  try {
    raw = decode(payload, { useBigInt64: true });
  } catch (e) {
    throw bad(`payload is not msgpack (${(e as Error).message})`);
  }
  let ts: unknown;
  let events: unknown;
  let rank: unknown;
  if (Array.isArray(raw)) {
    [ts, events, rank] = raw;
  } else if (isRecord(raw)) {
    ts = raw.ts;
    events = raw.events;
    rank = raw.data_parallel_rank;
  } else {
    throw bad('payload is neither an array nor a map');
  }
  if (!Array.isArray(events)) throw bad('"events" is not an array');
  const t = typeof ts === 'bigint' ? Number(ts) : ts;
  if (typeof t !== 'number' || !Number.isFinite(t)) throw bad('"ts" is not a number');
  let dataParallelRank: number | null = null;
  if (rank !== null && rank !== undefined) {
    const r = typeof rank === 'bigint' ? Number(rank) : rank;
    if (typeof r !== 'number' || !Number.isInteger(r)) throw bad('"data_parallel_rank" is not an integer');
    dataParallelRank = r;
  }
  const out: KvEvent[] = [];
  let malformedEvents = 0;
  for (const e of events) {
    const ev = decodeEvent(e);
    if (ev) out.push(ev);
    else malformedEvents++;
  }
  return { batch: { ts: t, events: out, dataParallelRank }, malformedEvents };
}

/** Decodes one event in array or map form; undefined when it is malformed or of an unknown type. */
export function decodeEvent(e: unknown): KvEvent | undefined {
  try {
    if (Array.isArray(e)) {
      switch (e[0]) {
        case 'BlockStored':
          return stored(e[1], e[2], e[3], e[4], e[5], e[6], e[7]);
        case 'BlockRemoved':
          return { type: 'BlockRemoved', blockHashes: hashList(e[1]), medium: optString(e[2]) };
        case 'AllBlocksCleared':
          return { type: 'AllBlocksCleared' };
        default:
          return undefined;
      }
    }
    if (isRecord(e)) {
      switch (e.type) {
        case 'BlockStored':
          return stored(e.block_hashes, e.parent_block_hash, e.token_ids, e.block_size, e.lora_id, e.medium, e.lora_name);
        case 'BlockRemoved':
          return { type: 'BlockRemoved', blockHashes: hashList(e.block_hashes), medium: optString(e.medium) };
        case 'AllBlocksCleared':
          return { type: 'AllBlocksCleared' };
        default:
          return undefined;
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}

function stored(hashes: unknown, parent: unknown, tokens: unknown, blockSize: unknown, loraId: unknown, medium: unknown, loraName: unknown): BlockStoredEvent {
  const blockHashes = hashList(hashes);
  const size = toInt(blockSize);
  if (size < 1) throw new Error('block_size');
  if (!Array.isArray(tokens)) throw new Error('token_ids');
  const tokenIds = new Array<number>(tokens.length);
  for (let i = 0; i < tokens.length; i++) tokenIds[i] = toInt(tokens[i]);
  // token_ids cover every listed block, in order; anything else cannot be keyed by an index.
  if (tokenIds.length !== blockHashes.length * size) throw new Error('token_ids length');
  return {
    type: 'BlockStored',
    blockHashes,
    parentBlockHash: parent === null || parent === undefined ? null : normalizeHash(parent),
    tokenIds,
    blockSize: size,
    loraId: loraId === null || loraId === undefined ? null : toInt(loraId),
    medium: optString(medium),
    loraName: optString(loraName),
  };
}

function hashList(v: unknown): bigint[] {
  if (!Array.isArray(v)) throw new Error('block_hashes');
  const out = new Array<bigint>(v.length);
  for (let i = 0; i < v.length; i++) out[i] = normalizeHash(v[i]);
  return out;
}

/**
 * A block hash as its unsigned 64-bit value: bigint or integer number (negative = a signed
 * int64, reinterpreted), or raw bytes (the last 8, big-endian). Throws on anything else.
 */
export function normalizeHash(v: unknown): bigint {
  if (typeof v === 'bigint') return BigInt.asUintN(64, v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error('hash is not an integer');
    return BigInt.asUintN(64, BigInt(v));
  }
  if (v instanceof Uint8Array) {
    if (v.length === 0) throw new Error('empty hash');
    let h = 0n;
    for (let i = Math.max(0, v.length - 8); i < v.length; i++) h = (h << 8n) | BigInt(v[i]);
    return h;
  }
  throw new Error('hash has an unsupported type');
}

function toInt(v: unknown): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new Error('not an integer');
  return n;
}

function optString(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string') throw new Error('not a string');
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function bad(why: string): KvrError {
  return new KvrError('KVR_ERR_UPSTREAM', `undecodable KV-event message: ${why}; check that the sender is vLLM's ZMQ publisher`);
}
