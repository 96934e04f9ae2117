/**
 * Redis addresses and clients for the block index and the replica sync: one parser for every
 * form kvroute accepts, one factory that returns either a single-node client or an ioredis
 * `Cluster` (Redis Cluster or a Valkey cluster), with the same fail-fast options.
 *
 *   host:port | [v6]:port | redis://[user:pass@]host:port[/db] | rediss://...   one node (or a proxy)
 *   redis-cluster://[user:pass@]host1:port1,host2:port2,...                      Redis Cluster (seed nodes)
 *   rediss-cluster://...                                                         the same over TLS
 *
 * Anything else is refused with a message that lists these forms.
 */
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import { KvrError } from '../core/errors.js';

/** A parsed Redis address. */
export type RedisTarget =
  | { kind: 'node'; url: string }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; username?: string; password?: string; tls: boolean };

/** Options shared by both client kinds. */
export interface RedisClientOptions {
  /** Per-command timeout, ms (none when absent: blocking reads). */
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Reconnect delays grow to this, ms (default 1,000). */
  maxReconnectDelayMs?: number;
  /** Retries of a command after a connection error (default 0: fail fast). */
  maxRetriesPerRequest?: number;
  connectionName?: string;
  /** Batch the commands issued in one tick into one write per node (default false). */
  autoPipelining?: boolean;
}

const FORMS = 'use host:port, redis://host:port[/db], rediss://host:port, or redis-cluster://host1:port1,host2:port2 for Redis Cluster / Valkey cluster';
const HOST_PORT = /^(\[[0-9a-f:.]+\]|[\w.-]+):(\d{1,5})$/i;

/** Parses a Redis address (see the file comment); throws KVR_ERR_USAGE with the accepted forms. */
export function parseRedisTarget(addr: string): RedisTarget {
  const a = addr.trim();
  const bad = (why: string): KvrError => new KvrError('KVR_ERR_USAGE', `Redis address "${addr}" is not valid (${why}); ${FORMS}`);
  if (a === '') throw bad('empty');
  const cluster = /^(rediss?)-cluster:\/\/(.*)$/i.exec(a);
  if (cluster !== null) {
    let rest = cluster[2];
    let username: string | undefined;
    let password: string | undefined;
    const at = rest.lastIndexOf('@');
    if (at >= 0) {
      const auth = rest.slice(0, at);
      rest = rest.slice(at + 1);
      const colon = auth.indexOf(':');
      username = decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : auth) || undefined;
      password = colon >= 0 ? decodeURIComponent(auth.slice(colon + 1)) : undefined;
    }
    rest = rest.replace(/\/+$/, '');
    const nodes = rest.split(',').map((s) => s.trim());
    if (nodes.length === 0 || nodes.some((n) => n === '')) throw bad('no seed nodes after redis-cluster://');
    return {
      kind: 'cluster',
      nodes: nodes.map((n) => {
        const m = HOST_PORT.exec(n);
        const port = m === null ? NaN : Number(m[2]);
        if (m === null || !(port >= 1 && port <= 65_535)) throw bad(`seed node "${n}" is not host:port`);
        return { host: m[1].replace(/^\[|\]$/g, ''), port };
      }),
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
      tls: cluster[1].toLowerCase() === 'rediss',
    };
  }
  if (/^rediss?:\/\//i.test(a)) {
    let u: URL;
    try {
      u = new URL(a);
    } catch {
      throw bad('not a URL');
    }
    if (u.hostname === '') throw bad('no host');
    if (u.pathname !== '' && u.pathname !== '/' && !/^\/\d+$/.test(u.pathname)) throw bad(`the path "${u.pathname}" is not a database number`);
    return { kind: 'node', url: a };
  }
  if (HOST_PORT.test(a)) return { kind: 'node', url: `redis://${a}` };
  if (/^[a-z][\w+.-]*:\/\//i.test(a)) throw bad(`unknown scheme "${a.slice(0, a.indexOf(':'))}"`);
  throw bad('expected host:port or a URL');
}

/** The address without credentials, for logs and errors. */
export function describeTarget(t: RedisTarget): string {
  if (t.kind === 'cluster') return `${t.tls ? 'rediss' : 'redis'}-cluster://${t.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  return t.url.replace(/\/\/[^@/]*@/, '//');
}

/** A client for `target`: `Redis` for one node, `Cluster` for a cluster; lazily connected, no offline queue. */
export function createRedisClient(target: RedisTarget, o: RedisClientOptions = {}): Redis | Cluster {
  const maxDelay = o.maxReconnectDelayMs ?? 1_000;
  const retry = (times: number): number => Math.min(50 * 2 ** Math.min(times, 10), maxDelay);
  const common: RedisOptions = {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: o.maxRetriesPerRequest ?? 0,
    connectTimeout: o.connectTimeoutMs ?? 1_000,
    ...(o.commandTimeoutMs !== undefined ? { commandTimeout: o.commandTimeoutMs } : {}),
    ...(o.connectionName !== undefined ? { connectionName: o.connectionName } : {}),
  };
  if (target.kind === 'node') {
    return new Redis(target.url, { ...common, lazyConnect: true, enableAutoPipelining: o.autoPipelining ?? false, retryStrategy: retry });
  }
  const nodes: ClusterNode[] = target.nodes.map((n) => ({ host: n.host, port: n.port }));
  return new Cluster(nodes, {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableAutoPipelining: o.autoPipelining ?? false,
    clusterRetryStrategy: retry,
    // A moved slot is followed; a failover is retried briefly, then the call fails (callers fall back).
    maxRedirections: 4,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 50,
    redisOptions: {
      ...common,
      ...(target.username !== undefined ? { username: target.username } : {}),
      ...(target.password !== undefined ? { password: target.password } : {}),
      ...(target.tls ? { tls: {} } : {}),
    },
  });
}
