/**
 * Coalesces the Redis index's writes into fewer, larger script calls.
 *
 * Algorithm: writes are queued per group (single node: one group; Redis Cluster: one group per
 * endpoint, i.e. per hash slot, since a script may only touch one slot). A group sends at once
 * while it has fewer than `maxInFlight` calls outstanding; otherwise its writes wait and go out
 * together in the next call when one returns (no timer: an idle router pays no delay, a busy one
 * gets batching). A call takes queued sections in order, at most one per endpoint (so one
 * endpoint's writes apply in submission order, and a section that has to be retried is retried
 * before that endpoint's next one goes), up to `maxBlocks` blocks and `maxSections` sections, so a
 * call stays far below the command timeout.
 */

/** One endpoint's write, as the apply script takes it. */
export interface WriteSection {
  endpointId: string;
  /** The caller checked the run id: the script may take over a missing or foreign fence. */
  verified: boolean;
  /** Refresh the endpoint's TTLs in this call. */
  refresh: boolean;
  /** seq ('' = unfenced), ts, mode, part id, next part id. */
  fence: [string, string, string, string, string];
  ops: string[];
  blocks: number;
}

/** {code, added, removed, evicted} of one section. */
export type SectionReply = [number, number, number, number];

interface Pending {
  section: WriteSection;
  resolve(r: SectionReply): void;
  reject(err: unknown): void;
}

interface Group {
  queue: Pending[];
  inFlight: number;
}

/** The coalescing queue; see the file comment. */
export class RedisWriteQueue {
  readonly #groups = new Map<string, Group>();
  readonly #send: (sections: WriteSection[]) => Promise<SectionReply[]>;
  readonly #groupOf: (endpointId: string) => string;
  readonly #maxBlocks: number;
  readonly #maxSections: number;
  readonly #maxInFlight: number;
  /** Script calls sent and sections carried (for benchmarks and tests). */
  calls = 0;
  sections = 0;

  constructor(o: { send: (sections: WriteSection[]) => Promise<SectionReply[]>; groupOf: (endpointId: string) => string; maxBlocks: number; maxSections?: number; maxInFlight?: number }) {
    this.#send = o.send;
    this.#groupOf = o.groupOf;
    this.#maxBlocks = o.maxBlocks;
    this.#maxSections = o.maxSections ?? 256;
    this.#maxInFlight = o.maxInFlight ?? 2;
  }

  /** Queues one section; resolves with its reply (rejects when its call failed). */
  submit(section: WriteSection): Promise<SectionReply> {
    const key = this.#groupOf(section.endpointId);
    let g = this.#groups.get(key);
    if (g === undefined) {
      g = { queue: [], inFlight: 0 };
      this.#groups.set(key, g);
    }
    const group = g;
    return new Promise<SectionReply>((resolve, reject) => {
      group.queue.push({ section, resolve, reject });
      if (group.inFlight < this.#maxInFlight) this.#dispatch(key, group);
    });
  }

  #dispatch(key: string, g: Group): void {
    if (g.queue.length === 0) {
      if (g.inFlight === 0) this.#groups.delete(key);
      return;
    }
    const take: Pending[] = [];
    const rest: Pending[] = [];
    const eps = new Set<string>();
    let blocks = 0;
    for (const p of g.queue) {
      const s = p.section;
      const fits = take.length === 0 || (blocks + s.blocks <= this.#maxBlocks && take.length < this.#maxSections);
      if (fits && !eps.has(s.endpointId)) {
        take.push(p);
        eps.add(s.endpointId);
        blocks += s.blocks;
      } else rest.push(p);
    }
    g.queue = rest;
    g.inFlight++;
    this.calls++;
    this.sections += take.length;
    this.#send(take.map((p) => p.section)).then(
      (replies) => take.forEach((p, i) => p.resolve(replies[i])),
      (err: unknown) => take.forEach((p) => p.reject(err)),
    ).finally(() => {
      g.inFlight--;
      this.#dispatch(key, g);
    });
  }
}
