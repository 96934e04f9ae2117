/**
 * Discovery: where the pool's endpoints come from. Every source reports whole snapshots (the
 * complete desired set of endpoints), never deltas; {@link PoolMembership} diffs them against
 * the pool, so a lost or repeated notification can never leave a stale endpoint behind.
 */
import type { EndpointRole } from '../core/endpoint.js';
import type { EndpointSpec } from '../datalayer/endpoint-pool.js';

/** Receives each new snapshot of the endpoint set. */
export type DiscoveryListener = (specs: EndpointSpec[]) => void | Promise<void>;

/** A source of endpoints (static list, file, DNS, Kubernetes). */
export interface DiscoverySource {
  /** Short description for logs, e.g. `file:/etc/kvroute/endpoints.yaml`. */
  readonly description: string;
  /**
   * Starts discovery; `listener` gets the first snapshot before this resolves (or the source
   * rejects with a KvrError saying what to fix), then every change.
   */
  start(listener: DiscoveryListener): Promise<void>;
  /** Stops watching; no snapshot is delivered after this resolves. */
  stop(): Promise<void>;
}

/**
 * KV events following discovery (llm-d's `podDiscoveryConfig`): every discovered endpoint of
 * rank i gets the ZeroMQ PUB address `tcp://<ip>:<port + i>`.
 */
export interface KvEventsDiscovery {
  /** Base port of the pods' KV-event publishers (vLLM's default 5557). */
  port: number;
}

/** The pod label llm-d uses for a P/D role. */
export const ROLE_LABEL = 'llm-d.ai/role';

/** Maps an `llm-d.ai/role` label value to an endpoint role (unknown or absent = both). */
export function roleFromLabels(labels: Readonly<Record<string, string>> | undefined): EndpointRole {
  const v = labels?.[ROLE_LABEL]?.trim().toLowerCase();
  if (v === 'prefill') return 'prefill';
  if (v === 'decode') return 'decode';
  return 'both';
}

/** `tcp://ip:port+rank`, or undefined when events do not follow discovery. */
export function kvEventsFor(ip: string, rank: number, kv: KvEventsDiscovery | undefined): EndpointSpec['kvEvents'] {
  if (kv === undefined) return undefined;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return { endpoint: `tcp://${host}:${kv.port + rank}` };
}
