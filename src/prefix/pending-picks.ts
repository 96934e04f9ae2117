/**
 * Picks the approximate index has not applied yet, per endpoint index, oldest first: the index
 * applies them at its next read, so its LRU upkeep runs only where it is read. While nobody
 * reads (precise routing serving every request, the approximate index only its fallback), each
 * endpoint's queue keeps just its newest picks covering `cap` keys (what its LRU could hold of
 * them anyway, at most `maxKeys`), so memory and the one-time cost of the first read stay
 * bounded. The queued key arrays are the requests' own (memoized) keys, not copies.
 */

interface Queue<E> {
  endpoints: E[];
  keys: ArrayLike<number>[];
  head: number;
  /** Keys queued from `head` on. */
  count: number;
}

/** Per-endpoint queues of unapplied picks; see the file comment. */
export class PendingPicks<E extends { id: string; index: number }> {
  readonly maxKeys: number;
  #queues: (Queue<E> | undefined)[] = [];
  #any = false;

  /** @param maxKeys most keys queued per endpoint (older picks beyond are dropped) */
  constructor(maxKeys: number) {
    this.maxKeys = maxKeys;
  }

  /** True when nothing is queued. */
  get empty(): boolean {
    return !this.#any;
  }

  /** Queues a pick; drops the endpoint's oldest picks while the newer ones still cover min(cap, maxKeys) keys. */
  push(endpoint: E, keys: ArrayLike<number>, cap: number): void {
    let q = this.#queues[endpoint.index];
    if (q === undefined) this.#queues[endpoint.index] = q = { endpoints: [], keys: [], head: 0, count: 0 };
    q.endpoints.push(endpoint);
    q.keys.push(keys);
    q.count += keys.length;
    this.#any = true;
    const keep = Math.min(cap, this.maxKeys);
    while (q.keys.length - q.head > 1 && q.count - q.keys[q.head].length >= keep) {
      q.count -= q.keys[q.head].length;
      q.endpoints[q.head] = undefined as unknown as E;
      q.keys[q.head++] = [];
    }
    if (q.head > 64 && q.head * 2 > q.keys.length) {
      q.endpoints.splice(0, q.head);
      q.keys.splice(0, q.head);
      q.head = 0;
    }
  }

  /** Hands every queued pick to `apply`, each endpoint's in order, and empties the queues. */
  drain(apply: (endpoint: E, keys: ArrayLike<number>) => void): void {
    const queues = this.#queues;
    this.#queues = [];
    this.#any = false;
    for (const q of queues) {
      if (q === undefined) continue;
      for (let i = q.head; i < q.keys.length; i++) apply(q.endpoints[i], q.keys[i]);
    }
  }

  /** Drops the queued picks of endpoint `id` at `index`. */
  drop(id: string, index: number): void {
    const q = this.#queues[index];
    if (q === undefined) return;
    const kept = { endpoints: [] as E[], keys: [] as ArrayLike<number>[], head: 0, count: 0 };
    for (let i = q.head; i < q.keys.length; i++) {
      if (q.endpoints[i].id === id) continue;
      kept.endpoints.push(q.endpoints[i]);
      kept.keys.push(q.keys[i]);
      kept.count += q.keys[i].length;
    }
    this.#queues[index] = kept.keys.length > 0 ? kept : undefined;
  }

  /** Forgets everything queued. */
  clear(): void {
    this.#queues = [];
    this.#any = false;
  }
}
