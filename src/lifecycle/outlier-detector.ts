/**
 * Passive outlier detection after Envoy's (`outlier_detection`): the request path reports each
 * upstream attempt's result; a replica with `consecutiveFailures` failures in a row is ejected
 * (takes no new traffic) for a back-off that grows with each ejection.
 *
 *   failure  = 5xx status, connection refused/reset, time-to-first-byte or request timeout
 *   success  = any other status (4xx is the client's fault, not the replica's)
 *
 *   on the N-th consecutive failure (N = consecutiveFailures):
 *     ejections += 1
 *     ejected until now + min(baseEjectionMs x ejections, maxEjectionMs)
 *   while not ejected, each `baseEjectionMs` without an ejection decays `ejections` by one
 *   (Envoy decrements its multiplier on healthy intervals), so a replica that recovered starts
 *   from the base time again.
 *
 * At most `maxEjectionPercent` of the known replicas are ejected at once (at least one), and
 * {@link OutlierDetector.filter} never returns an empty list when it was given endpoints: if
 * every candidate is ejected, all are returned (Envoy's panic mode), since refusing every
 * request is worse than trying a suspect replica.
 */
import type { Clock } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { KvrError } from '../core/errors.js';

/** Settings of {@link OutlierDetector}; all have defaults. */
export interface OutlierOptions {
  /** Consecutive failures that eject a replica (default 5, Envoy's consecutive_5xx). 0 disables ejection. */
  consecutiveFailures?: number;
  /** First ejection time (ms, default 30 000, Envoy's base_ejection_time). */
  baseEjectionMs?: number;
  /** Longest ejection (ms, default 300 000, Envoy's max_ejection_time). */
  maxEjectionMs?: number;
  /** Most replicas ejected at once, percent of those seen (default 50; at least one). */
  maxEjectionPercent?: number;
}

/** Called on each ejection (metrics, logs). */
export type EjectionListener = (endpointId: string, untilMs: number, ejections: number) => void;

interface HostState {
  consecutive: number;
  ejections: number;
  ejectedUntil: number;
  /** Last time `ejections` was decayed or an ejection ended. */
  calmSince: number;
}

/** Envoy-like consecutive-failure ejection; see the file comment. */
export class OutlierDetector {
  readonly consecutiveFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
  readonly #clock: Clock;
  readonly #hosts = new Map<string, HostState>();
  readonly #listeners: EjectionListener[] = [];
  #knownHosts = 0;

  constructor(clock: Clock, o: OutlierOptions = {}) {
    this.#clock = clock;
    this.consecutiveFailures = o.consecutiveFailures ?? 5;
    this.baseEjectionMs = o.baseEjectionMs ?? 30_000;
    this.maxEjectionMs = o.maxEjectionMs ?? 300_000;
    this.maxEjectionPercent = o.maxEjectionPercent ?? 50;
    if (!(Number.isInteger(this.consecutiveFailures) && this.consecutiveFailures >= 0)) throw new KvrError('KVR_ERR_CONFIG', `outlier consecutiveFailures must be an integer >= 0 (0 disables ejection), got ${this.consecutiveFailures}`);
    if (!(this.baseEjectionMs > 0)) throw new KvrError('KVR_ERR_CONFIG', `outlier base ejection time must be > 0 ms, got ${this.baseEjectionMs}`);
    if (!(this.maxEjectionMs >= this.baseEjectionMs)) throw new KvrError('KVR_ERR_CONFIG', `outlier max ejection time (${this.maxEjectionMs} ms) must be >= the base ejection time (${this.baseEjectionMs} ms)`);
    if (!(this.maxEjectionPercent >= 0 && this.maxEjectionPercent <= 100)) throw new KvrError('KVR_ERR_CONFIG', `outlier max ejection percent must be in [0, 100], got ${this.maxEjectionPercent}`);
  }

  /** Registers a listener told about each ejection. */
  onEject(listener: EjectionListener): void {
    this.#listeners.push(listener);
  }

  /** True while `endpointId` is ejected. */
  isEjected(endpointId: string): boolean {
    const h = this.#hosts.get(endpointId);
    return h !== undefined && h.ejectedUntil > this.#clock.now();
  }

  /** Ids of the replicas ejected now. */
  ejected(): string[] {
    const now = this.#clock.now();
    const out: string[] = [];
    for (const [id, h] of this.#hosts) if (h.ejectedUntil > now) out.push(id);
    return out;
  }

  /** `endpoints` without the ejected ones; all of them when every one is ejected (panic). */
  filter<E extends Pick<Endpoint, 'id'>>(endpoints: readonly E[]): readonly E[] {
    if (endpoints.length > this.#knownHosts) this.#knownHosts = endpoints.length;
    if (this.#hosts.size === 0) return endpoints;
    const now = this.#clock.now();
    let kept: E[] | undefined;
    for (let i = 0; i < endpoints.length; i++) {
      const h = this.#hosts.get(endpoints[i].id);
      const out = h !== undefined && h.ejectedUntil > now;
      if (out && kept === undefined) kept = endpoints.slice(0, i);
      else if (!out && kept !== undefined) kept.push(endpoints[i]);
    }
    if (kept === undefined) return endpoints;
    return kept.length > 0 ? kept : endpoints;
  }

  /** The replica answered in a way that is not its fault. */
  success(endpointId: string): void {
    const h = this.#hosts.get(endpointId);
    if (h === undefined) return;
    h.consecutive = 0;
    this.#decay(h, this.#clock.now());
  }

  /** The replica failed one attempt (5xx, refused, reset, timeout). Returns true when this ejected it. */
  failure(endpointId: string): boolean {
    const now = this.#clock.now();
    let h = this.#hosts.get(endpointId);
    if (h === undefined) {
      h = { consecutive: 0, ejections: 0, ejectedUntil: 0, calmSince: now };
      this.#hosts.set(endpointId, h);
    }
    if (h.ejectedUntil > now) return false; // already out: in-flight stragglers do not extend it
    this.#decay(h, now);
    h.consecutive++;
    if (this.consecutiveFailures === 0 || h.consecutive < this.consecutiveFailures) return false;
    if (!this.#mayEject(now)) return false;
    h.consecutive = 0;
    h.ejections++;
    h.ejectedUntil = now + Math.min(this.baseEjectionMs * h.ejections, this.maxEjectionMs);
    h.calmSince = h.ejectedUntil;
    for (const l of this.#listeners) l(endpointId, h.ejectedUntil, h.ejections);
    return true;
  }

  /** Forgets a replica that left the pool. */
  removeEndpoint(endpointId: string): void {
    this.#hosts.delete(endpointId);
  }

  /** Per replica: consecutive failures, ejections so far, ejected-until (ms, 0 when in). */
  snapshot(): Record<string, { consecutive: number; ejections: number; ejectedUntil: number }> {
    const out: Record<string, { consecutive: number; ejections: number; ejectedUntil: number }> = {};
    for (const [id, h] of this.#hosts) out[id] = { consecutive: h.consecutive, ejections: h.ejections, ejectedUntil: h.ejectedUntil };
    return out;
  }

  #decay(h: HostState, now: number): void {
    if (h.ejections === 0 || h.ejectedUntil > now) return;
    const calm = Math.floor((now - h.calmSince) / this.baseEjectionMs);
    if (calm <= 0) return;
    h.ejections = Math.max(0, h.ejections - calm);
    h.calmSince += calm * this.baseEjectionMs;
  }

  #mayEject(now: number): boolean {
    let out = 0;
    for (const h of this.#hosts.values()) if (h.ejectedUntil > now) out++;
    // Replicas seen: every host that ever reported (successes of unseen hosts are not tracked, so
    // count at least the ejected ones plus this one).
    const seen = Math.max(this.#knownHosts, this.#hosts.size);
    const cap = Math.max(1, Math.floor((seen * this.maxEjectionPercent) / 100));
    return out < cap;
  }

  /** Tells the detector how many replicas the pool has (for the ejection cap). */
  setHostCount(n: number): void {
    this.#knownHosts = n;
  }
}
