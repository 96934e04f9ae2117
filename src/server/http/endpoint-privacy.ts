/**
 * What a client may learn about, and choose among, the upstream replicas.
 *
 * - Signed session tokens (`x-session-token`): with a secret, the token the gateway hands out is
 *   `<opaque id>.<HMAC-SHA256(secret, opaque id), base64url, 128 bits>` instead of llm-d's
 *   base64(endpoint id). A token coming back is verified (constant-time) and turned into the
 *   llm-d form the session-affinity scorer reads; a forged, altered or unsigned token is dropped
 *   (ignored, not honoured, not an error), so a client cannot pin itself to a replica it picks.
 *   Without a secret, tokens stay llm-d's base64(endpoint id) (compatible with llm-d clients).
 * - Opaque endpoint ids (`hideEndpoints`): `x-kvroute-endpoint` carries `ep-<12 hex>` (an HMAC of
 *   the endpoint id) instead of its address, and the explain header is not honoured (it lists
 *   candidates; the admin port's `/debug/decisions` has the same data).
 *
 * The secret comes from `--session-secret` / `KVROUTE_SESSION_SECRET` (stable across router
 * replicas and restarts) or is random per process.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { KvrError } from '../../core/errors.js';
import { sessionTokenFor } from '../../scheduling/scorers/session-affinity-scorer.js';

/** Options of {@link EndpointPrivacy}. */
export interface EndpointPrivacyOptions {
  /** HMAC secret (at least 16 characters); undefined = random per process. */
  secret?: string;
  /** Show opaque ids instead of endpoint ids in response headers. */
  hideEndpoints: boolean;
}

/** Signs and verifies session tokens, maps endpoint ids to opaque ids; see the file comment. */
export class EndpointPrivacy {
  readonly hideEndpoints: boolean;
  readonly #secret: Buffer;
  readonly #opaque = new Map<string, string>();
  readonly #byOpaque = new Map<string, string>();
  /** MAC per opaque id of a known endpoint (computed once; the set of endpoints is small). */
  readonly #macs = new Map<string, string>();

  constructor(o: EndpointPrivacyOptions) {
    if (o.secret !== undefined && o.secret.length < 16) {
      throw new KvrError('KVR_ERR_USAGE', '--session-secret must be at least 16 characters (or leave it out for a random per-process secret)');
    }
    this.#secret = o.secret !== undefined ? Buffer.from(o.secret, 'utf8') : randomBytes(32);
    this.hideEndpoints = o.hideEndpoints;
  }

  /** `ep-` + 12 hex characters of HMAC(secret, endpoint id): stable for a given secret. */
  opaqueId(endpointId: string): string {
    let o = this.#opaque.get(endpointId);
    if (o === undefined) {
      o = 'ep-' + createHmac('sha256', this.#secret).update(`endpoint:${endpointId}`).digest('hex').slice(0, 12);
      this.#opaque.set(endpointId, o);
      this.#byOpaque.set(o, endpointId);
    }
    return o;
  }

  /** What `x-kvroute-endpoint` shows for `endpointId`. */
  publicId(endpointId: string): string {
    return this.hideEndpoints ? this.opaqueId(endpointId) : endpointId;
  }

  /** The signed token for `endpointId`. */
  sign(endpointId: string): string {
    const o = this.opaqueId(endpointId);
    return `${o}.${this.#mac(o)}`;
  }

  /**
   * The endpoint id a token names, when the token is well formed, correctly signed and names an
   * endpoint in `knownIds`; else undefined.
   */
  verify(token: string, knownIds: Iterable<string>): string | undefined {
    if (token.length > 128) return undefined;
    const dot = token.indexOf('.');
    if (dot <= 0) return undefined;
    const o = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'utf8');
    const want = Buffer.from(this.#byOpaque.has(o) ? this.#mac(o) : this.#macOf(o), 'utf8');
    if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
    if (!this.#byOpaque.has(o)) for (const id of knownIds) this.opaqueId(id);
    return this.#byOpaque.get(o);
  }

  /** The plain llm-d token the session-affinity scorer reads, for a verified endpoint id. */
  static plainToken(endpointId: string): string {
    return sessionTokenFor(endpointId);
  }

  /** The endpoint id of a plain (llm-d) token, when it decodes to text. */
  static plainEndpointId(token: string): string | undefined {
    const id = Buffer.from(token, 'base64').toString('utf8');
    return id === '' ? undefined : id;
  }

  /** The MAC of an opaque id of a known endpoint, cached. */
  #mac(opaque: string): string {
    let m = this.#macs.get(opaque);
    if (m === undefined) {
      m = this.#macOf(opaque);
      this.#macs.set(opaque, m);
    }
    return m;
  }

  /** The MAC of any opaque id (not cached: a client can send arbitrary ones). */
  #macOf(opaque: string): string {
    return createHmac('sha256', this.#secret).update(`session-token:${opaque}`).digest('base64url').slice(0, 22);
  }
}
