/**
 * The Redis index's calls to Redis: the client (one node or a Cluster, from the address), its
 * three scripts, and how calls are grouped: on a single node one script call may name several
 * endpoints (its keys may sit in any slot); on a cluster a call names one endpoint (one slot), and
 * the per-endpoint calls of one lookup or touch are sent together (ioredis keeps one connection
 * per node, so they travel pipelined per node).
 */
import type { Cluster, Redis } from 'ioredis';
import { createRedisClient, parseRedisTarget } from './redis-client.js';
import { endpointKeys, holdingsKey } from './redis-keys.js';
import { APPLY_LUA, LOOKUP_LUA, TOUCH_LUA } from './redis-scripts.js';
import type { SectionReply, WriteSection } from './redis-write-queue.js';

type Client = (Redis | Cluster) & {
  kvrApply(...args: (string | number)[]): Promise<number[]>;
  kvrTouch(...args: (string | number)[]): Promise<number>;
  kvrLookup(...args: (string | number)[]): Promise<(number | string)[]>;
};

/** See the file comment. */
export class RedisIndexCalls {
  readonly client: Client;
  /** True on a Redis Cluster. */
  readonly cluster: boolean;
  readonly #prefix: string;

  constructor(url: string, prefix: string, o: { commandTimeoutMs: number; connectTimeoutMs?: number; maxReconnectDelayMs?: number }) {
    const target = parseRedisTarget(url);
    this.cluster = target.kind === 'cluster';
    this.#prefix = prefix;
    this.client = createRedisClient(target, {
      commandTimeoutMs: o.commandTimeoutMs,
      ...(o.connectTimeoutMs !== undefined ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
      ...(o.maxReconnectDelayMs !== undefined ? { maxReconnectDelayMs: o.maxReconnectDelayMs } : {}),
      // Single node: batch the commands of one tick into one write. Not on a cluster: ioredis's
      // auto-pipelining groups a script call by its first argument (the key count), not its keys.
      autoPipelining: !this.cluster,
    }) as Client;
    // numberOfKeys left out: each call passes its key count first (5 keys per endpoint for writes).
    this.client.defineCommand('kvrApply', { lua: APPLY_LUA });
    this.client.defineCommand('kvrLookup', { lua: LOOKUP_LUA, readOnly: true });
    this.client.defineCommand('kvrTouch', { lua: TOUCH_LUA });
  }

  /** Groups of items one script call may carry together: all (single node) or one each (cluster). */
  groups<T>(items: readonly T[]): T[][] {
    return this.cluster ? items.map((x) => [x]) : items.length > 0 ? [[...items]] : [];
  }

  /** One apply call for `sections` (one endpoint each; on a cluster, one section per call). */
  async apply(runId: string, consts: [number, number, number], sections: readonly WriteSection[]): Promise<SectionReply[]> {
    const args: (string | number)[] = [5 * sections.length];
    for (const s of sections) for (const k of endpointKeys(this.#prefix, s.endpointId)) args.push(k);
    args.push(runId, consts[0], consts[1], consts[2], sections.length);
    for (const s of sections) {
      args.push(s.verified ? '1' : '0', s.refresh ? '1' : '0', s.fence[0], s.fence[1], s.fence[2], s.fence[3], s.fence[4], s.ops.length);
      for (const a of s.ops) args.push(a);
    }
    const flat = await this.client.kvrApply(...args);
    return sections.map((_, i) => [flat[4 * i], flat[4 * i + 1], flat[4 * i + 2], flat[4 * i + 3]]);
  }

  /** Runs of `keys` per endpoint (same order), as [blocks, weighted]. */
  async lookup(endpointIds: readonly string[], head: readonly string[], keys: readonly string[]): Promise<[number, number][]> {
    const groups = this.groups(endpointIds);
    const replies = await Promise.all(groups.map((g) => this.client.kvrLookup(g.length, ...g.map((ep) => holdingsKey(this.#prefix, ep)), ...head, ...keys)));
    const out: [number, number][] = [];
    replies.forEach((r, gi) => groups[gi].forEach((_, j) => out.push([Number(r[2 * j]), Number(r[2 * j + 1])])));
    return out;
  }

  /** Re-scores `keys` (chain order) for each holder's leading run and refreshes its TTLs. */
  touch(ttlSeconds: number, keys: readonly string[], holders: readonly [string, number][]): Promise<unknown> {
    return Promise.all(this.groups(holders).map((g) => this.client.kvrTouch(5 * g.length, ...g.flatMap(([ep]) => endpointKeys(this.#prefix, ep)), ttlSeconds, keys.length, ...keys, ...g.map(([, r]) => r))));
  }

  /** Keys held per endpoint (holdings hash sizes). */
  counts(endpointIds: readonly string[]): Promise<number[]> {
    return Promise.all(endpointIds.map((id) => this.client.hlen(holdingsKey(this.#prefix, id))));
  }

  /** Redis memory in use, summed over a cluster's masters. */
  async usedMemory(): Promise<number> {
    const nodes: (Redis | Cluster)[] = this.cluster ? (this.client as Cluster).nodes('master') : [this.client];
    const infos = await Promise.all(nodes.map((c) => c.info('memory')));
    return infos.reduce((s, info) => s + Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0), 0);
  }
}
