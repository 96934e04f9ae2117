/**
 * Options of the Redis block index and their defaults (validated: a bad value is refused with a
 * message, never ignored).
 */
import type { Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { DEFAULT_CLOCK_TOLERANCE_S } from './kv-block-index.js';
import type { TierWeights } from './tiers.js';

/** Options of {@link RedisBlockIndex}. */
export interface RedisBlockIndexOptions {
  /** `redis://host:port[/db]`, `host:port`, or `redis-cluster://host1:port1,host2:port2` (default `redis://127.0.0.1:6379`). */
  url?: string;
  /** Prefix of every key (default `kvroute:`; no braces). */
  prefix?: string;
  /** Per-command timeout (default 500 ms). */
  commandTimeoutMs?: number;
  /** Connect timeout (default 1,000 ms); reconnect delays grow to `maxReconnectDelayMs` (1,000). */
  connectTimeoutMs?: number;
  maxReconnectDelayMs?: number;
  /** TTL of an endpoint's keys, refreshed by its writes and by lookups that hit it (default 86,400 s). */
  ttlSeconds?: number;
  /** Most keys per endpoint; past it the least recently stored or read keys (chain tails) are dropped (default 1,000,000). */
  maxKeysPerEndpoint?: number;
  /** Most blocks per write script call (default 2,000; bounds one call's time well below the command timeout). */
  maxBlocksPerCall?: number;
  /** A key hit by lookups, and an endpoint written to, has its TTLs refreshed at most this often (default TTL / 8, at least 1,000 ms). */
  touchIntervalMs?: number;
  tierWeights?: TierWeights;
  otherTierWeight?: number;
  clockToleranceS?: number;
  /** Minimum interval between stats refreshes from Redis (default 5,000 ms). */
  statsIntervalMs?: number;
  /** Most engine hashes cached locally per endpoint to resolve parents (default 100,000). */
  resolveCacheSize?: number;
  clock?: Clock;
  /** Run id generator (default crypto.randomUUID). */
  runId?: () => string;
}

/** The numeric options with their defaults applied. */
export type ResolvedRedisIndexOptions = Required<Pick<RedisBlockIndexOptions, 'commandTimeoutMs' | 'ttlSeconds' | 'maxKeysPerEndpoint' | 'clockToleranceS' | 'statsIntervalMs' | 'resolveCacheSize' | 'maxBlocksPerCall' | 'touchIntervalMs'>>;

/** Applies the defaults; throws KVR_ERR_CONFIG on a bad value. */
export function resolveRedisIndexOptions(opts: RedisBlockIndexOptions): ResolvedRedisIndexOptions {
  const o: ResolvedRedisIndexOptions = {
    commandTimeoutMs: opts.commandTimeoutMs ?? 500,
    ttlSeconds: opts.ttlSeconds ?? 86_400,
    maxKeysPerEndpoint: opts.maxKeysPerEndpoint ?? 1_000_000,
    clockToleranceS: opts.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S,
    statsIntervalMs: opts.statsIntervalMs ?? 5_000,
    resolveCacheSize: opts.resolveCacheSize ?? 100_000,
    maxBlocksPerCall: opts.maxBlocksPerCall ?? 2_000,
    touchIntervalMs: opts.touchIntervalMs ?? Math.max(1_000, ((opts.ttlSeconds ?? 86_400) * 1000) / 8),
  };
  for (const k of ['commandTimeoutMs', 'ttlSeconds', 'maxKeysPerEndpoint', 'statsIntervalMs', 'touchIntervalMs'] as const) {
    if (!(Number.isFinite(o[k]) && o[k] > 0)) throw new KvrError('KVR_ERR_CONFIG', `Redis index: ${k} must be a number > 0, got ${String(opts[k])}`);
  }
  if (!Number.isInteger(o.maxBlocksPerCall) || o.maxBlocksPerCall < 1) {
    throw new KvrError('KVR_ERR_CONFIG', `Redis index: maxBlocksPerCall must be an integer >= 1, got ${String(opts.maxBlocksPerCall)}`);
  }
  return o;
}
