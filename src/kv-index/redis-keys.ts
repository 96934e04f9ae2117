/**
 * Key layout of the Redis block index (docs/kv-index.md), version 2. Every key of one endpoint
 * carries the same Redis Cluster hash tag, derived from the endpoint id, so one endpoint lives in
 * one slot (its writes are single-slot scripts) and the fleet's endpoints spread over the
 * cluster's slots:
 *
 *   <prefix>v2:epoch           run id (string); gone = Redis was flushed or restarted without data
 *   <prefix>v2:h:{<tag>}<endpoint>  hash  block key -> "<tiers>@<generation>" ("gpu@41", "gpu,cpu@7")
 *   <prefix>v2:e:{<tag>}<endpoint>  hash  recency log: per generation g, k<g> keys (eviction order),
 *                                         c<g> live count, n<g> list length; lo = oldest generation
 *   <prefix>v2:m:{<tag>}<endpoint>  hash  engine hash (hex) -> block key
 *   <prefix>v2:n:{<tag>}<endpoint>  hash  "<key>|<tier>" -> extra copies (vLLM stores a recomputed block twice)
 *   <prefix>v2:f:{<tag>}<endpoint>  hash  run id r, stream fence {s, t, p}, generation counter q
 *
 * `<tag>` = {@link endpointTag} (4 hex digits of a hash of the endpoint id). Version 1 (no `v2:`)
 * had a recency sorted set `e` (one member per block) and bare tiers as holdings values; a router
 * of either version reads only its own keys, so the two never misread each other's data.
 *
 * Also: the op arguments of the write script (redis-scripts.ts), cut into parts of at most
 * `max` blocks, built in loops (a 120k-block batch never spreads onto the stack).
 */
import { KvrError } from '../core/errors.js';
import { keyToString, type RouterKey } from './block-keys.js';
import { checkTier } from './tiers.js';
import type { EngineBatch } from './kv-block-index.js';

/**
 * The hash tag of an endpoint: 4 hex digits of a mixed hash of its id. Redis hashes the tag with
 * CRC16, which is linear: ids that differ in a digit or two (`10.0.0.1:8000`, `10.0.0.2:8000`)
 * would land on a few structured slots (measured: 24 such ids on 2 of 3 nodes). FNV-1a with a
 * murmur3 finalizer first spreads them evenly.
 */
export function endpointTag(endpointId: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < endpointId.length; i++) h = Math.imul(h ^ endpointId.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return ((h >>> 0) & 0xffff).toString(16).padStart(4, '0');
}

/** The layout version, after the prefix of every key (see the file comment). */
export const LAYOUT = 'v2:';

/** The five keys of an endpoint, in the scripts' KEYS order: h, e, m, n, f. */
export function endpointKeys(prefix: string, endpointId: string): [string, string, string, string, string] {
  const tag = `{${endpointTag(endpointId)}}${endpointId}`;
  const p = prefix + LAYOUT;
  return [`${p}h:${tag}`, `${p}e:${tag}`, `${p}m:${tag}`, `${p}n:${tag}`, `${p}f:${tag}`];
}

/** The holdings hash of an endpoint (the only key a lookup reads). */
export function holdingsKey(prefix: string, endpointId: string): string {
  return `${prefix}${LAYOUT}h:{${endpointTag(endpointId)}}${endpointId}`;
}

/** The run id key (one per prefix and layout). */
export function epochKey(prefix: string): string {
  return `${prefix}${LAYOUT}epoch`;
}

/** Refuses an empty endpoint id (a key could not name its endpoint). */
export function checkEndpointId(endpointId: string): void {
  if (typeof endpointId !== 'string' || endpointId === '') throw new KvrError('KVR_ERR_BAD_REQUEST', 'block index: an endpoint id must be a non-empty string');
}

/** Refuses a key prefix with braces (it would change the keys' hash tags, so one endpoint's keys could land in several slots). */
export function checkPrefix(prefix: string): void {
  if (/[{}]/.test(prefix)) throw new KvrError('KVR_ERR_CONFIG', `Redis index: key prefix "${prefix}" must not contain { or } (kvroute puts each endpoint's hash tag in braces)`);
}

/** One part of a write: op arguments and the blocks they carry. */
export interface OpPart {
  ops: string[];
  blocks: number;
}

/** Plain add / remove ops (`A` / `D`), cut into parts of at most `max` keys. */
export function keyParts(op: 'A' | 'D', tier: string, keys: ArrayLike<RouterKey>, max: number): OpPart[] {
  checkTier(tier);
  const out: OpPart[] = [];
  for (let from = 0; from < keys.length; from += max) {
    const n = Math.min(max, keys.length - from);
    const ops = [op, tier, String(n)];
    for (let j = from; j < from + n; j++) ops.push(keyToString(keys[j]));
    out.push({ ops, blocks: n });
  }
  return out;
}

/** An engine batch's ops (`S`, `R`, `C`), validated, cut into parts of at most `max` blocks. */
export function engineParts(batch: EngineBatch, max: number): OpPart[] {
  for (const op of batch.ops) {
    if (op.kind !== 'clear') checkTier(op.tier);
    if (op.kind === 'store' && op.keys.length !== op.engineHashes.length) {
      throw new KvrError('KVR_ERR_BAD_REQUEST', `store op: ${op.keys.length} keys for ${op.engineHashes.length} engine hashes`);
    }
  }
  const parts: OpPart[] = [{ ops: [], blocks: 0 }];
  const room = (): OpPart => {
    if (parts[parts.length - 1].blocks >= max) parts.push({ ops: [], blocks: 0 });
    return parts[parts.length - 1];
  };
  for (const op of batch.ops) {
    if (op.kind === 'clear') {
      const p = room();
      p.ops.push('C');
      p.blocks++;
      continue;
    }
    const total = op.engineHashes.length;
    for (let from = 0; from < total; ) {
      const p = room();
      const n = Math.min(total - from, max - p.blocks);
      p.ops.push(op.kind === 'remove' ? 'R' : 'S', op.tier, String(n));
      for (let j = from; j < from + n; j++) {
        p.ops.push(op.engineHashes[j].toString(16));
        if (op.kind === 'store') p.ops.push(keyToString(op.keys[j]));
      }
      p.blocks += n;
      from += n;
    }
  }
  return parts;
}
