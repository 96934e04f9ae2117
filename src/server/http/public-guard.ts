/**
 * The gateway handler's front door: what the public port does to a request before the OpenAI
 * gateway sees it, and to the response headers on the way out. Transport policy only; no
 * routing here.
 *
 * In order, per request:
 * 1. a request on a connection refused by a connection cap is dropped (src/server/http/public-server.ts);
 * 2. API keys (when configured): every path but `GET /health` needs `Authorization: Bearer <key>`
 *    or `x-api-key`; otherwise 401 in OpenAI's error shape. The tenant is remembered
 *    ({@link tenantOf}) and counted per status in `kvroute_tenant_requests_total`;
 * 3. a declared `Content-Length` over the body limit gets 413 at once (no body read);
 * 4. configured client headers (`Authorization`, `Cookie`, `x-api-key`, ...) are removed, so the
 *    gateway never forwards them upstream;
 * 5. with signed session tokens, an `x-session-token` is verified and handed to the scheduler in
 *    llm-d's plain form, or dropped when forged/unsigned; with hidden endpoints the explain header
 *    is dropped;
 * 6. on the way out, `x-session-token` is signed and `x-kvroute-endpoint` made opaque (when
 *    configured), and any 413 closes the connection (after a bounded linger, so the client reads
 *    the 413 rather than a reset, and a 250 MB upload is not read to its end).
 */
import type { IncomingMessage, OutgoingHttpHeaders, RequestListener, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { KvrError } from '../../core/errors.js';
import type { RouterMetrics } from '../../metrics/router-metrics.js';
import { SESSION_TOKEN_HEADER } from '../../scheduling/scorers/session-affinity-scorer.js';
import { presentedKey, type ApiKeyStore } from './api-keys.js';
import { EndpointPrivacy } from './endpoint-privacy.js';
import { lingerOnClose } from './linger-close.js';
import { onRefusedConnection } from './public-server.js';

/** Header the gateway names the serving endpoint in. */
export const ENDPOINT_HEADER = 'x-kvroute-endpoint';
const EXPLAIN_HEADER = 'x-kvroute-explain';
/** How long a connection closed after a 413 keeps discarding the client's upload. */
export const LINGER_MS = 2_000;

/** Options of {@link guardPublicHandler}. */
export interface PublicGuardOptions {
  metrics: RouterMetrics;
  logger: Logger;
  maxBodyBytes: number;
  /** Accepted API keys; undefined = no authentication. */
  apiKeys?: ApiKeyStore;
  /**
   * Lower-case client header names removed before the gateway sees (and forwards) the request;
   * default: {@link DEFAULT_STRIP_WITH_KEYS} with API keys on (the key is the gateway's), else none.
   */
  stripHeaders?: readonly string[];
  /** Signed session tokens / opaque endpoint ids; undefined = llm-d plain tokens and real ids. */
  privacy?: EndpointPrivacy;
  /** Endpoint ids currently known (to resolve a verified token). */
  endpointIds?: () => Iterable<string>;
}

/** Headers stripped by default when API keys are on. */
export const DEFAULT_STRIP_WITH_KEYS: readonly string[] = ['authorization', 'x-api-key'];

const tenants = new WeakMap<IncomingMessage, string>();

/** The API-key tenant of a request (undefined when keys are off). Gateways add it to their log line. */
export function tenantOf(req: IncomingMessage): string | undefined {
  return tenants.get(req);
}

/** `{ tenant }` for a request's log line when API keys are on, else `{}` (spread into the logger's child bindings). */
export function tenantLogFields(req: IncomingMessage): { tenant?: string } {
  const t = tenants.get(req);
  return t === undefined ? {} : { tenant: t };
}

function sendJsonError(res: ServerResponse, err: KvrError, extra: OutgoingHttpHeaders = {}): void {
  const body = JSON.stringify(err.toOpenAI());
  res.writeHead(err.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

/** Wraps the gateway handler with the steps of the file comment. */
export function guardPublicHandler(handler: RequestListener, o: PublicGuardOptions): RequestListener {
  const strip = [...new Set((o.stripHeaders ?? (o.apiKeys !== undefined ? DEFAULT_STRIP_WITH_KEYS : [])).map((h) => h.toLowerCase()))];
  const privacy = o.privacy;
  return (req: IncomingMessage, res: ServerResponse) => {
    if (onRefusedConnection(req)) {
      res.destroy();
      return;
    }
    rewriteResponseHeaders(req, res, privacy);
    const path = (req.url ?? '/').split('?')[0];
    if (o.apiKeys !== undefined && !(req.method === 'GET' && path === '/health')) {
      const key = presentedKey(req.headers);
      const tenant = key === undefined ? undefined : o.apiKeys.verify(key);
      if (tenant === undefined) {
        o.metrics.clientErrors.inc({ kind: 'unauthorized' });
        o.logger.info({ method: req.method, path, status: 401, client: req.socket.remoteAddress, why: key === undefined ? 'no key' : 'unknown key' }, 'request failed');
        req.resume();
        const msg = key === undefined ? 'this gateway needs an API key: send "Authorization: Bearer <key>" (or "x-api-key: <key>")' : 'incorrect API key provided; check the key you were given';
        sendJsonError(res, new KvrError('KVR_ERR_UNAUTHORIZED', msg), { 'www-authenticate': 'Bearer realm="kvroute"' });
        return;
      }
      tenants.set(req, tenant);
      res.once('close', () => o.metrics.tenantRequests.inc({ tenant, status: res.writableFinished ? String(res.statusCode) : '499' }));
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > o.maxBodyBytes) {
      sendJsonError(res, new KvrError('KVR_ERR_BODY_TOO_LARGE', `request body is larger than ${o.maxBodyBytes} bytes; send a shorter prompt or raise --max-body-bytes`));
      return;
    }
    for (const h of strip) delete req.headers[h];
    if (privacy !== undefined) {
      const token = req.headers[SESSION_TOKEN_HEADER];
      delete req.headers[SESSION_TOKEN_HEADER];
      if (typeof token === 'string' && token !== '') {
        const id = privacy.verify(token, o.endpointIds?.() ?? []);
        if (id !== undefined) req.headers[SESSION_TOKEN_HEADER] = EndpointPrivacy.plainToken(id);
      }
      if (privacy.hideEndpoints) delete req.headers[EXPLAIN_HEADER];
    }
    handler(req, res);
  };
}

/**
 * Intercepts `res.writeHead` (also reached by an implicit header) to sign the session token,
 * hide the endpoint id, and close the connection after a 413.
 */
function rewriteResponseHeaders(req: IncomingMessage, res: ServerResponse, privacy: EndpointPrivacy | undefined): void {
  const original = res.writeHead;
  res.writeHead = function writeHead(this: ServerResponse, statusCode: number, ...rest: unknown[]) {
    const i = typeof rest[0] === 'string' ? 1 : 0;
    const given = rest[i];
    const headers: Record<string, unknown> = given !== null && typeof given === 'object' && !Array.isArray(given) ? (given as Record<string, unknown>) : {};
    if (rest[i] === undefined) rest[i] = headers;
    if (privacy !== undefined) {
      const key = Object.keys(headers).find((k) => k.toLowerCase() === ENDPOINT_HEADER);
      const id = key !== undefined ? String(headers[key]) : (this.getHeader(ENDPOINT_HEADER) as string | undefined);
      if (id !== undefined) {
        if (key !== undefined) delete headers[key];
        this.removeHeader(ENDPOINT_HEADER);
        headers[ENDPOINT_HEADER] = privacy.publicId(id);
        for (const k of Object.keys(headers)) if (k.toLowerCase() === SESSION_TOKEN_HEADER) delete headers[k];
        this.removeHeader(SESSION_TOKEN_HEADER);
        headers[SESSION_TOKEN_HEADER] = privacy.sign(id);
      }
    }
    if (statusCode === 413) {
      headers.connection = 'close';
      const socket = this.socket ?? req.socket;
      if (socket != null) lingerOnClose(socket, LINGER_MS);
    }
    return original.call(this, statusCode, ...(rest as [])) as ServerResponse;
  } as typeof res.writeHead;
}
