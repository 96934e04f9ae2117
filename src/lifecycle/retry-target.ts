/**
 * Where a failed upstream attempt may be retried, as a pure function of the failure and the
 * decision's ranked candidates (the lifecycle adds the attempt count, the retry budget and the
 * bookkeeping). Retriable: a refused or reset connection, a time-to-first-byte timeout, or a
 * status in `retryStatuses`, all before any byte reached the client. Target: the best-ranked
 * candidate not tried yet and not ejected that is healthy; when none is left, one that is only
 * silent (probes time out, connections accepted): the retry's share of panic routing
 * (EndpointPool.candidatesFor), since a pick made in panic mode has no healthy candidate left.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { UpstreamFailure } from './types.js';

/** Whether `f` may be retried on another endpoint (nothing reached the client yet). */
export function retriableFailure(f: UpstreamFailure, retryStatuses: ReadonlySet<number>): boolean {
  return f.kind === 'connect' || f.kind === 'reset' || f.kind === 'ttfb-timeout' || (f.kind === 'status' && f.status !== undefined && retryStatuses.has(f.status));
}

/** The endpoint to retry on, or undefined (see the module comment). */
export function retryTarget(ranked: readonly Endpoint[], tried: ReadonlySet<string>, isEjected: (id: string) => boolean): Endpoint | undefined {
  const open = (e: Endpoint, silentOk: boolean): boolean => !tried.has(e.id) && (e.healthy !== false || (silentOk && e.health?.silent === true)) && !isEjected(e.id);
  return ranked.find((e) => open(e, false)) ?? ranked.find((e) => open(e, true));
}
