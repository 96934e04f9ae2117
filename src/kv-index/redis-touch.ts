/**
 * Background refresh of what lookups read, for the Redis index: after a lookup, the keys it hit
 * move to a new generation of their holders' recency logs (root last, so the per-endpoint cap
 * evicts chain tails nobody reads) and the holders' TTLs are refreshed.
 *
 * Algorithm: at most one touch in flight (touches never queue up in front of writes and
 * lookups; a lookup finding one in flight sends none); a key is sent at most once per
 * `intervalMs` (a bounded map of key -> last touch, cleared when full); at most `maxKeys` keys per
 * touch (the rest go with a later lookup). Each holder is sent with how many of the sent keys
 * fall in its leading run. A failed touch forgets its keys' times so the next lookup retries.
 */
import type { Clock } from '../core/clock.js';

/** Options of {@link RedisToucher}. */
export interface RedisToucherOptions {
  clock: Clock;
  intervalMs: number;
  maxKeys: number;
  /** Sends one touch: keys in chain order, holders with the count of those keys they hold. */
  send(keys: string[], holders: [string, number][]): Promise<unknown>;
}

/** See the file comment. */
export class RedisToucher {
  readonly #o: RedisToucherOptions;
  readonly #touched = new Map<string, number>();
  #inFlight: Promise<void> | undefined;
  /** Touch calls sent. */
  sent = 0;

  constructor(o: RedisToucherOptions) {
    this.#o = o;
  }

  /** `keys`: the lookup's keys (strings, chain order); `holders`: (endpoint id, leading run) with run > 0. */
  touch(keys: readonly string[], holders: readonly [string, number][]): void {
    if (this.#inFlight !== undefined) return;
    let hit = 0;
    for (const [, r] of holders) hit = Math.max(hit, r);
    const now = this.#o.clock.now();
    const picked: number[] = [];
    for (let i = 0; i < hit && picked.length < this.#o.maxKeys; i++) {
      const last = this.#touched.get(keys[i]);
      if (last !== undefined && now - last < this.#o.intervalMs) continue;
      picked.push(i);
    }
    if (picked.length === 0) return;
    if (this.#touched.size + picked.length > 200_000) this.#touched.clear();
    const sent = picked.map((i) => keys[i]);
    for (const k of sent) this.#touched.set(k, now);
    const counts: [string, number][] = [];
    for (const [ep, r] of holders) {
      let c = 0;
      while (c < picked.length && picked[c] < r) c++;
      if (c > 0) counts.push([ep, c]);
    }
    this.sent++;
    this.#inFlight = this.#o
      .send(sent, counts)
      .then(
        () => undefined,
        () => {
          // Best effort: a missed refresh only shortens a key's life to its last write's TTL.
          for (const k of sent) this.#touched.delete(k);
        },
      )
      .finally(() => (this.#inFlight = undefined));
  }

  /** Resolves when no touch is in flight. */
  async idle(): Promise<void> {
    await this.#inFlight;
  }
}
