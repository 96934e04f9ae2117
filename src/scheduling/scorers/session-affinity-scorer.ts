/**
 * session-affinity-scorer: keeps a conversation on the endpoint that served it before.
 *
 *   score_i = 1 for the endpoint the session is bound to, 0 for every other candidate
 *
 * The binding comes from the first of these sources that names one of the candidates:
 * (a) the `x-session-token` request header, echoed by the client: base64 of the endpoint id, as
 *     llm-d does (the gateway sets it on responses). Stateless: works across router replicas.
 * (b) an explicit session id header (`sessionHeader`, default `x-session-id`), bound in the
 *     session store to the endpoint picked for it, refreshed (TTL restarted) on every pick.
 * (c) the client IP, bound the same way; OFF by default (`clientIp: true` turns it on) because
 *     many users behind one NAT or proxy IP would all pile onto one endpoint.
 *
 * Parameters:
 * - `sessionHeader` (default `x-session-id`): lower-case header carrying an explicit session id.
 * - `clientIp` (default false): also bind client IPs.
 * - `ttlSeconds` (default 7200, the seeds' ClientIP timeout): lifetime of a binding since its
 *   last pick.
 *
 * Session ids are stored hashed (src/scheduling/session-store.ts `sessionIdKey`: a fixed ~26-byte
 * key whatever the id's length; ids over 1,024 characters are not bound), and the store is
 * bounded by count, so clients cannot grow the router's memory with long or many ids. With
 * signed tokens on (`--sign-session-tokens`), the public port verifies `x-session-token` before
 * this scorer sees it (src/server/http/endpoint-privacy.ts).
 */
import { Buffer } from 'node:buffer';
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import type { InferenceRequest } from '../../core/request.js';
import type { PluginDefinition } from '../plugin-registry.js';
import { sessionIdKey, type SessionStore } from '../session-store.js';
import { SESSION_BOUND_MEMO_KEY } from './cold-request.js';
import type { RequestObserver, Scorer, SchedulingContext } from '../types.js';

/** Request/response header carrying base64(endpoint id), as llm-d. */
export const SESSION_TOKEN_HEADER = 'x-session-token';

const params = z.strictObject({
  sessionHeader: z.string().min(1).regex(/^[a-z0-9-]+$/, 'a lower-case header name').default('x-session-id'),
  clientIp: z.boolean().default(false),
  ttlSeconds: z.number().positive().default(7200),
});

/** Parameters of {@link SessionAffinityScorer}. */
export type SessionAffinityParams = z.infer<typeof params>;

/** Encodes an endpoint id as the `x-session-token` value. */
export function sessionTokenFor(endpointId: string): string {
  return Buffer.from(endpointId, 'utf8').toString('base64');
}

/** Scores the endpoint bound to the request's session 1; see the file comment. */
export class SessionAffinityScorer implements Scorer, RequestObserver {
  readonly type = 'session-affinity-scorer';
  readonly sessionHeader: string;
  readonly clientIp: boolean;
  readonly ttlMs: number;
  readonly #store: SessionStore;

  constructor(readonly name: string, store: SessionStore, p: Partial<SessionAffinityParams> = {}) {
    this.#store = store;
    this.sessionHeader = p.sessionHeader ?? 'x-session-id';
    this.clientIp = p.clientIp ?? false;
    this.ttlMs = (p.ttlSeconds ?? 7200) * 1000;
  }

  score(ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void | Promise<void> {
    const req = ctx.request;
    const token = req.headers[SESSION_TOKEN_HEADER];
    if (token !== undefined && token !== '' && this.#mark(req, decodeToken(token), candidates, out)) return;
    const sid = req.headers[this.sessionHeader];
    const ipKey = this.#ipKey(req);
    const fromStore = (key: string | undefined, next: () => void | Promise<void>): void | Promise<void> => {
      if (key === undefined) return next();
      const bound = this.#store.get(key);
      if (bound instanceof Promise) return bound.then((id) => (this.#mark(req, id, candidates, out) ? undefined : next()));
      return this.#mark(req, bound, candidates, out) ? undefined : next();
    };
    return fromStore(sid ? sessionIdKey(sid) : undefined, () => fromStore(ipKey, () => undefined));
  }

  onPicked(ctx: SchedulingContext, endpoint: Endpoint): void {
    const req = ctx.request;
    const sid = req.headers[this.sessionHeader];
    const sidKey = sid ? sessionIdKey(sid) : undefined;
    if (sidKey !== undefined) void this.#store.set(sidKey, endpoint.id, this.ttlMs);
    const ipKey = this.#ipKey(req);
    if (ipKey !== undefined) void this.#store.set(ipKey, endpoint.id, this.ttlMs);
  }

  #ipKey(req: InferenceRequest): string | undefined {
    return this.clientIp && req.clientIp ? `ip:${req.clientIp}` : undefined;
  }

  /**
   * Sets 1 on the candidate with id `id` and memoizes the binding on the request (later scorers
   * then know the request has a home); false when no candidate has it.
   */
  #mark(req: InferenceRequest, id: string | undefined, candidates: readonly Endpoint[], out: Float64Array): boolean {
    if (id === undefined) return false;
    for (let i = 0; i < candidates.length; i++) {
      if (candidates[i].id === id) {
        out[i] = 1;
        req.memo.set(SESSION_BOUND_MEMO_KEY, id);
        return true;
      }
    }
    return false;
  }
}

function decodeToken(token: string): string | undefined {
  const id = Buffer.from(token, 'base64').toString('utf8');
  return id === '' ? undefined : id;
}

/** Registry entry of {@link SessionAffinityScorer}. */
export const sessionAffinityScorerPlugin: PluginDefinition<SessionAffinityParams> = {
  type: 'session-affinity-scorer',
  kind: 'scorer',
  description: '1 for the endpoint bound to the session (x-session-token, session header, optional client IP), else 0',
  params,
  create: (name, p, deps) => new SessionAffinityScorer(name, deps.sessions, p),
};
