/**
 * Session bindings: key (explicit session id, client IP, ...) -> endpoint id, with a TTL read from
 * the injected clock. The in-memory store is bounded (least recently used bindings go first);
 * a shared store (Redis) for several router replicas can implement the same interface later,
 * which is why reads and writes may return promises.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { Lru } from '../prefix/lru.js';

/** Where session bindings live. */
export interface SessionStore {
  /** The endpoint id bound to `key`, if the binding exists and has not expired. */
  get(key: string): string | undefined | Promise<string | undefined>;
  /** Binds `key` to `endpointId` for `ttlMs` from now (refreshes an existing binding). */
  set(key: string, endpointId: string, ttlMs: number): void | Promise<void>;
  /** Removes the binding of `key`. */
  delete(key: string): void | Promise<void>;
}

/** Longest client session id bound (characters); a longer one is ignored (no binding). */
export const MAX_SESSION_ID_LENGTH = 1024;

/**
 * The store key of a client-chosen session id: `sid:` + 128 bits of its SHA-256 (base64url), so a
 * binding costs the same few bytes whatever the client sends; undefined for an empty id or one
 * over {@link MAX_SESSION_ID_LENGTH}.
 */
export function sessionIdKey(id: string): string | undefined {
  if (id === '' || id.length > MAX_SESSION_ID_LENGTH) return undefined;
  return 'sid:' + createHash('sha256').update(id, 'utf8').digest('base64url').slice(0, 22);
}

/** Default maximum number of bindings an in-memory store keeps. */
export const DEFAULT_MAX_SESSIONS = 100_000;

interface Binding {
  endpointId: string;
  expiresAt: number;
}

/** In-memory {@link SessionStore}: TTL via the injected clock, at most `maxEntries` bindings. */
export class InMemorySessionStore implements SessionStore {
  readonly #clock: Clock;
  readonly #lru: Lru<string, Binding>;

  constructor(clock: Clock, maxEntries = DEFAULT_MAX_SESSIONS) {
    this.#clock = clock;
    this.#lru = new Lru<string, Binding>(maxEntries);
  }

  /** Number of bindings held (expired ones included until read or evicted). */
  get size(): number {
    return this.#lru.size;
  }

  get(key: string): string | undefined {
    const b = this.#lru.peek(key);
    if (b === undefined) return undefined;
    if (b.expiresAt <= this.#clock.now()) {
      this.#lru.delete(key);
      return undefined;
    }
    return b.endpointId;
  }

  set(key: string, endpointId: string, ttlMs: number): void {
    this.#lru.set(key, { endpointId, expiresAt: this.#clock.now() + ttlMs });
  }

  delete(key: string): void {
    this.#lru.delete(key);
  }
}
