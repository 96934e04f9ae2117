/**
 * The public (gateway) port's HTTP server, hardened against slow, malformed and greedy clients:
 *
 * - timeouts: `headersTimeoutMs` (a request's headers must arrive within it, which also closes
 *   connections that never send a byte), `requestTimeoutMs` (the whole request, body included),
 *   `keepAliveTimeoutMs` (an idle keep-alive connection between requests). Node checks them every
 *   `connectionsCheckingInterval`, set here to a fraction of the shortest one so they hold to
 *   within about a second. A response that is streaming is never cut by these.
 * - connection caps: at most `maxConnections` open connections overall and
 *   `maxConnectionsPerClient` per client address (0 = no per-client cap); one over the cap gets a
 *   503 and is closed, so a slowloris client exhausts neither file descriptors nor the others'
 *   share.
 * - malformed input answered, not dropped: 400 for a malformed request line or header, 431 for
 *   headers over `maxHeaderBytes`, 408 for a request that did not arrive in time, each an
 *   OpenAI-shaped JSON body with `Connection: close` ({@link respondToClientError}).
 * - `Expect: 100-continue` with a `Content-Length` over the body limit gets 413 before the body
 *   is sent.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { KvrError, type ErrorCode } from '../../core/errors.js';
import type { RouterMetrics } from '../../metrics/router-metrics.js';
import { closeAfterResponse } from './linger-close.js';

/** Limits of the public port; see the file comment. */
export interface PublicPortOptions {
  /** Time allowed for a request's headers, from the connection's first byte wait (default 15 s). */
  headersTimeoutMs: number;
  /** Time allowed for a whole request, headers and body (default 120 s; >= headersTimeoutMs). */
  requestTimeoutMs: number;
  /** Idle time after a response before a keep-alive connection is closed (default 65 s). */
  keepAliveTimeoutMs: number;
  /** Most open connections (default: half the process's open-file limit, 64..16384). */
  maxConnections: number;
  /** Most open connections from one client address (default 0 = no per-client cap). */
  maxConnectionsPerClient: number;
  /** Largest request head (request line + headers) in bytes (default 16 KiB, Node's). */
  maxHeaderBytes: number;
}

/** Reads the soft open-file limit (Linux `/proc/self/limits`); undefined elsewhere. */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m === null) return undefined;
    return m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** The default connection cap: half the open-file limit (the rest for upstreams, Redis, files), 64..16384. */
export function defaultMaxConnections(limit: number | undefined = openFileLimit()): number {
  if (limit === undefined) return 4096;
  return Math.max(64, Math.min(16_384, Math.floor(limit / 2)));
}

/** Defaults of {@link PublicPortOptions}. */
export function defaultPublicPortOptions(): PublicPortOptions {
  return {
    headersTimeoutMs: 15_000,
    requestTimeoutMs: 120_000,
    keepAliveTimeoutMs: 65_000,
    maxConnections: defaultMaxConnections(),
    maxConnectionsPerClient: 0,
    maxHeaderBytes: 16 * 1024,
  };
}

/** Validates a partial set of options over the defaults; throws KVR_ERR_USAGE naming the bad one. */
export function resolvePublicPortOptions(p: Partial<PublicPortOptions> = {}): PublicPortOptions {
  const o = { ...defaultPublicPortOptions() };
  for (const [k, v] of Object.entries(p)) if (v !== undefined) (o as Record<string, number>)[k] = v;
  const positive: Array<keyof PublicPortOptions> = ['headersTimeoutMs', 'requestTimeoutMs', 'keepAliveTimeoutMs', 'maxConnections', 'maxHeaderBytes'];
  for (const k of positive) {
    if (!Number.isInteger(o[k]) || o[k] <= 0) throw new KvrError('KVR_ERR_USAGE', `${k} must be a positive integer (got ${o[k]})`);
  }
  if (!Number.isInteger(o.maxConnectionsPerClient) || o.maxConnectionsPerClient < 0) {
    throw new KvrError('KVR_ERR_USAGE', `maxConnectionsPerClient must be 0 (off) or a positive integer (got ${o.maxConnectionsPerClient})`);
  }
  if (o.requestTimeoutMs < o.headersTimeoutMs) {
    throw new KvrError('KVR_ERR_USAGE', `the request timeout (${o.requestTimeoutMs} ms) must be at least the headers timeout (${o.headersTimeoutMs} ms)`);
  }
  return o;
}

/** A raw HTTP/1.1 error response with an OpenAI-shaped body and `Connection: close`. */
export function rawErrorResponse(code: ErrorCode, message: string): string {
  const err = new KvrError(code, message);
  const body = JSON.stringify(err.toOpenAI());
  const reason: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Payload Too Large', 431: 'Request Header Fields Too Large', 503: 'Service Unavailable' };
  return (
    `HTTP/1.1 ${err.status} ${reason[err.status] ?? 'Error'}\r\n` +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

type ClientErrorKind = 'bad-request' | 'headers-too-large' | 'request-timeout' | 'reset';

/** Maps a Node `clientError` to the answer it gets. */
export function classifyClientError(err: NodeJS.ErrnoException, maxHeaderBytes: number, headersTimeoutMs: number, requestTimeoutMs: number): { kind: ClientErrorKind; response?: string } {
  switch (err.code) {
    case 'ECONNRESET':
    case 'EPIPE':
    case 'HPE_INVALID_EOF_STATE': // the client closed in the middle of a request
      return { kind: 'reset' };
    case 'HPE_HEADER_OVERFLOW':
      return { kind: 'headers-too-large', response: rawErrorResponse('KVR_ERR_HEADERS_TOO_LARGE', `request headers are larger than ${maxHeaderBytes} bytes; send fewer or shorter headers (or raise --max-header-bytes)`) };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        kind: 'request-timeout',
        response: rawErrorResponse('KVR_ERR_REQUEST_TIMEOUT', `the request did not arrive in time (headers within ${headersTimeoutMs} ms, whole request within ${requestTimeoutMs} ms); send it at once`),
      };
    default:
      return { kind: 'bad-request', response: rawErrorResponse('KVR_ERR_BAD_REQUEST', `malformed HTTP request (${err.code ?? 'parse error'}); send a valid HTTP/1.1 request`) };
  }
}

/**
 * The `clientError` handler: answers 400/431/408 when nothing of a response was sent on the socket
 * yet, then closes it (after a short linger so the client reads the answer instead of a reset).
 */
export function respondToClientError(opts: PublicPortOptions, metrics: RouterMetrics, logger: Logger) {
  return (err: NodeJS.ErrnoException, socket: Duplex): void => {
    const { kind, response } = classifyClientError(err, opts.maxHeaderBytes, opts.headersTimeoutMs, opts.requestTimeoutMs);
    metrics.clientErrors.inc({ kind });
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (response === undefined || !socket.writable || (inFlight != null && inFlight.headersSent)) {
      socket.destroy();
      return;
    }
    logger.debug({ kind, code: err.code }, 'client error answered');
    if (inFlight != null) {
      // A request is being handled (its body was still arriving). Only a timeout is answered
      // through its response; anything else (a broken stream) closes the socket, so the handler
      // sees the client go away (an abort, 499) rather than a response it did not write.
      if (kind !== 'request-timeout') {
        socket.destroy();
        return;
      }
      const status = 408;
      const body = response.slice(response.indexOf('\r\n\r\n') + 4);
      inFlight.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
      inFlight.end(body);
      return;
    }
    socket.end(response);
    closeAfterResponse(socket as Socket, 1_000);
  };
}

/** Remote address of a socket ('unknown' when gone). */
function addressOf(socket: Socket): string {
  return socket.remoteAddress ?? 'unknown';
}

/** Sockets refused by a connection cap: a request that still arrives on one is not handled. */
const refusedSockets = new WeakSet<object>();

/** True when `req` arrived on a connection refused by a cap (its handler must do nothing). */
export function onRefusedConnection(req: IncomingMessage): boolean {
  return refusedSockets.has(req.socket);
}

/**
 * Creates the gateway's HTTP server with {@link PublicPortOptions} applied. `maxBodyBytes` is
 * used for the `Expect: 100-continue` check.
 */
export function createPublicServer(handler: RequestListener, o: PublicPortOptions, deps: { metrics: RouterMetrics; logger: Logger; maxBodyBytes: number }): Server {
  const { metrics, logger } = deps;
  const server = createServer(
    {
      headersTimeout: o.headersTimeoutMs,
      requestTimeout: o.requestTimeoutMs,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      maxHeaderSize: o.maxHeaderBytes,
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(Math.min(o.headersTimeoutMs, o.keepAliveTimeoutMs) / 4))),
    },
    handler,
  );
  server.on('clientError', respondToClientError(o, metrics, logger));
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > deps.maxBodyBytes) {
      const body = JSON.stringify(new KvrError('KVR_ERR_BODY_TOO_LARGE', `request body is larger than ${deps.maxBodyBytes} bytes; send a shorter prompt or raise --max-body-bytes`).toOpenAI());
      res.writeHead(413, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
      res.end(body);
      return;
    }
    res.writeContinue();
    server.emit('request', req, res);
  });

  let open = 0;
  const perClient = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const addr = addressOf(socket);
    const mine = (perClient.get(addr) ?? 0) + 1;
    const over = open >= o.maxConnections ? 'all' : o.maxConnectionsPerClient > 0 && mine > o.maxConnectionsPerClient ? 'client' : undefined;
    if (over !== undefined) {
      metrics.clientErrors.inc({ kind: 'connection-limit' });
      refusedSockets.add(socket);
      const msg =
        over === 'all'
          ? `the gateway has ${o.maxConnections} connections open (--max-connections); retry shortly`
          : `this client has ${o.maxConnectionsPerClient} connections open (--max-connections-per-client); reuse connections or retry shortly`;
      socket.end(rawErrorResponse('KVR_ERR_TOO_MANY_CONNECTIONS', msg));
      closeAfterResponse(socket, 1_000);
      return;
    }
    open++;
    perClient.set(addr, mine);
    metrics.openConnections.set(open);
    socket.once('close', () => {
      open--;
      const n = (perClient.get(addr) ?? 1) - 1;
      if (n <= 0) perClient.delete(addr);
      else perClient.set(addr, n);
      metrics.openConnections.set(open);
    });
  });
  return server;
}
