/**
 * Builds a replica's {@link PdConnector} from its `pd` options and registers its metrics
 * (the small hook replica-server.ts calls).
 */
import type { Clock } from '../../core/clock.js';
import { KvrError } from '../../core/errors.js';
import type { SimEngine } from '../engine.js';
import type { SimMetrics } from '../sim-metrics.js';
import { PdConnector, type SimPdRole } from './pd-connector.js';
import { KV_LINKS, type KvLink, type KvLinkName } from './transfer-model.js';

/** P/D options of a simulated replica. */
export interface SimPdOptions {
  role: SimPdRole;
  /** A named link (default `rdma`) or explicit numbers. */
  link?: KvLinkName | KvLink;
  /** Overrides the link's KV bytes per token. */
  kvBytesPerToken?: number;
  /** Overrides the link's bandwidth (bytes/s). */
  bandwidthBytesPerSec?: number;
  /** Pin expiry in ms (default 480,000, vLLM's VLLM_NIXL_ABORT_REQUEST_TIMEOUT). */
  pinTimeoutMs?: number;
  /** The engine's time scale (transfer times are scaled alike); set by the replica. */
  timeScale?: number;
  /** Receives warnings (invalid params, failed pulls); they are counted in metrics either way. */
  warn?: (msg: string) => void;
}

/** Default pin expiry (ms). */
export const DEFAULT_PIN_TIMEOUT_MS = 480_000;

/** See the file comment. */
export function createPdConnector(o: SimPdOptions, engine: SimEngine, clock: Clock, id: string, address: () => { host: string; port: number }, metrics: SimMetrics): PdConnector {
  if (!['prefill', 'decode', 'both'].includes(o.role)) throw new KvrError('KVR_ERR_USAGE', `sim role must be prefill, decode or both; got "${o.role}"`);
  const base: KvLink = typeof o.link === 'object' ? o.link : KV_LINKS[o.link ?? 'rdma'];
  if (base === undefined) throw new KvrError('KVR_ERR_USAGE', `unknown KV link "${String(o.link)}"; use ${Object.keys(KV_LINKS).join(' or ')}`);
  const link: KvLink = {
    kvBytesPerToken: o.kvBytesPerToken ?? base.kvBytesPerToken,
    bandwidthBytesPerSec: o.bandwidthBytesPerSec ?? base.bandwidthBytesPerSec,
    latencyMs: base.latencyMs,
  };
  if (!(link.kvBytesPerToken > 0) || !(link.bandwidthBytesPerSec > 0)) throw new KvrError('KVR_ERR_USAGE', 'KV bytes per token and link bandwidth must be > 0');
  const pinTimeoutMs = o.pinTimeoutMs ?? DEFAULT_PIN_TIMEOUT_MS;
  if (!(pinTimeoutMs > 0)) throw new KvrError('KVR_ERR_USAGE', 'the KV pin timeout must be > 0 ms');
  const c = new PdConnector({
    role: o.role,
    engine,
    clock,
    engineId: `${id}-engine`,
    address,
    link,
    pinTimeoutMs,
    timeScale: o.timeScale ?? 1,
    warn: (m) => o.warn?.(`[${id}] ${m}`),
  });
  metrics.registerPd(() => c.stats());
  return c;
}
