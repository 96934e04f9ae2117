/**
 * Other router replicas' in-flight requests, as learned from the sync stream: one entry per
 * (router, request, endpoint) from its pick until its completion record, with
 *
 * - a TTL (`ttlMs`, from the pick): a completion lost in transit cannot hold load forever;
 * - per-router removal: a router that stops heartbeating (or says bye) takes its load with it;
 * - reconciliation: a heartbeat carries its sender's in-flight count per endpoint, queued after
 *   every record it published before; entries of that sender beyond the count (a completion
 *   record lost while Redis was down, a gateway killed and restarted under the same id) are
 *   dropped, oldest first, so a lost completion costs one heartbeat, not the TTL;
 * - a cap on entries (oldest dropped first), so a hostile or runaway stream bounds memory.
 *
 * Only per-endpoint sums leave this class, through `onChange(endpointId, prefillTokens,
 * inflight)` (the scheduler's LoadTracker.setRemote), so remote work stays apart from local work.
 */

interface Entry {
  router: string;
  endpointId: string;
  prefill: number;
  expires: number;
}

/** Remote in-flight entries and their per-endpoint sums; see the file comment. */
export class RemoteLoad {
  readonly #entries = new Map<string, Entry>();
  readonly #sums = new Map<string, { prefill: number; inflight: number }>();
  readonly #onChange: (endpointId: string, prefillTokens: number, inflight: number) => void;
  readonly #maxEntries: number;
  /** Entries dropped by the cap. */
  capped = 0;

  constructor(onChange: (endpointId: string, prefillTokens: number, inflight: number) => void, maxEntries = 200_000) {
    this.#onChange = onChange;
    this.#maxEntries = maxEntries;
  }

  /** Number of remote in-flight entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** Remote in-flight requests per endpoint id (for metrics). */
  inflightByEndpoint(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [id, s] of this.#sums) m.set(id, s.inflight);
    return m;
  }

  /** A remote pick: `router` sent request `q` to `endpointId` with `prefill` uncached tokens. */
  pick(router: string, q: string, endpointId: string, prefill: number, expires: number): void {
    const key = `${router}\u0000${q}\u0000${endpointId}`;
    this.#remove(key);
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#remove(oldest);
      this.capped++;
    }
    this.#entries.set(key, { router, endpointId, prefill, expires });
    this.#add(endpointId, prefill, 1);
  }

  /** The remote request's first token: its prefill work is done. */
  firstToken(router: string, q: string, endpointId: string): void {
    const e = this.#entries.get(`${router}\u0000${q}\u0000${endpointId}`);
    if (e === undefined || e.prefill === 0) return;
    this.#add(e.endpointId, -e.prefill, 0);
    e.prefill = 0;
  }

  /** The remote request's assignment ended. */
  complete(router: string, q: string, endpointId: string): void {
    this.#remove(`${router}\u0000${q}\u0000${endpointId}`);
  }

  /** Forgets everything `router` had in flight (it died or said bye). Returns how many. */
  dropRouter(router: string): number {
    let n = 0;
    for (const [k, e] of this.#entries) {
      if (e.router !== router) continue;
      this.#remove(k);
      n++;
    }
    return n;
  }

  /**
   * Trims `router`'s entries to `counts` (its in-flight requests per endpoint id, as its heartbeat
   * reported them; an endpoint absent from `counts` has none): per endpoint, the oldest entries
   * beyond the count go. Returns how many went. Fewer entries than the count (a pick record lost)
   * are left as they are: a pick's work is not known without its record.
   */
  reconcile(router: string, counts: Readonly<Record<string, number>>): number {
    const held = new Map<string, number>();
    for (const e of this.#entries.values()) if (e.router === router) held.set(e.endpointId, (held.get(e.endpointId) ?? 0) + 1);
    const excess = new Map<string, number>();
    for (const [id, h] of held) {
      const want = Object.hasOwn(counts, id) ? counts[id] : 0;
      if (h > want) excess.set(id, h - want);
    }
    if (excess.size === 0) return 0;
    let n = 0;
    for (const [k, e] of this.#entries) {
      if (e.router !== router) continue;
      const x = excess.get(e.endpointId);
      if (x === undefined || x === 0) continue;
      excess.set(e.endpointId, x - 1);
      this.#remove(k);
      n++;
    }
    return n;
  }

  /** Drops entries whose TTL passed. Returns how many. */
  expire(now: number): number {
    let n = 0;
    for (const [k, e] of this.#entries) {
      if (e.expires > now) continue;
      this.#remove(k);
      n++;
    }
    return n;
  }

  #remove(key: string): void {
    const e = this.#entries.get(key);
    if (e === undefined) return;
    this.#entries.delete(key);
    this.#add(e.endpointId, -e.prefill, -1);
  }

  #add(endpointId: string, prefill: number, inflight: number): void {
    let s = this.#sums.get(endpointId);
    if (s === undefined) {
      s = { prefill: 0, inflight: 0 };
      this.#sums.set(endpointId, s);
    }
    s.prefill = Math.max(0, s.prefill + prefill);
    s.inflight = Math.max(0, s.inflight + inflight);
    if (s.inflight === 0) {
      s.prefill = 0;
      this.#sums.delete(endpointId);
    }
    this.#onChange(endpointId, s.prefill, s.inflight);
  }
}
