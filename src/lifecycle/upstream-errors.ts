/**
 * Maps what a transport threw while talking to an endpoint to an {@link UpstreamFailure} kind,
 * and a final failure to the router error the client gets. Node socket and undici error codes.
 */
import { KvrError } from '../core/errors.js';
import type { UpstreamFailure, UpstreamFailureKind } from './types.js';

const CONNECT = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'ENETUNREACH', 'EAI_AGAIN']);
const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED']);
const TIMEOUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

function codeOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
}

/**
 * Classifies `err` thrown by an upstream exchange. `timedOut` is the lifecycle's own timer that
 * aborted the exchange (it wins over the abort error it caused); `committed` says bytes already
 * reached the client (then any break is `midstream`).
 */
export function classifyUpstreamError(err: unknown, ctx: { timedOut?: 'ttfb-timeout' | 'timeout'; committed?: boolean } = {}): UpstreamFailure {
  const message = (err as Error | undefined)?.message ?? String(err);
  let kind: UpstreamFailureKind;
  const code = codeOf(err);
  if (ctx.timedOut !== undefined) kind = ctx.timedOut;
  else if (code !== undefined && CONNECT.has(code)) kind = 'connect';
  else if (code !== undefined && TIMEOUT.has(code)) kind = 'timeout';
  else if (ctx.committed) kind = 'midstream';
  else if (code !== undefined && RESET.has(code)) kind = 'reset';
  else kind = 'request';
  return { kind, message, cause: err };
}

/** The router error a client gets when an upstream failure is final. */
export function failureError(f: UpstreamFailure, endpointId: string): KvrError {
  switch (f.kind) {
    case 'connect':
      return new KvrError('KVR_ERR_NO_ENDPOINT', `no endpoint accepted the connection (last tried ${endpointId}: ${f.message}); check that the model servers are up`, { cause: f.cause });
    case 'ttfb-timeout':
      return new KvrError('KVR_ERR_UPSTREAM_TIMEOUT', `endpoint ${endpointId} produced no first token in time (${f.message}); the replica may be overloaded or hung; raise --ttfb-timeout-ms if prefills are legitimately this slow`, { cause: f.cause });
    case 'timeout':
      return new KvrError('KVR_ERR_UPSTREAM_TIMEOUT', `endpoint ${endpointId} did not finish in time (${f.message}); raise --upstream-timeout-ms for longer generations`, { cause: f.cause });
    case 'midstream':
      return new KvrError('KVR_ERR_UPSTREAM', `endpoint ${endpointId} failed mid-stream: ${f.message}; retry the request`, { cause: f.cause });
    default:
      return new KvrError('KVR_ERR_UPSTREAM', `endpoint ${endpointId} failed (${f.kind}${f.status !== undefined ? ` ${f.status}` : ''}): ${f.message}; retry the request`, { cause: f.cause });
  }
}

/** True for the error a lifecycle raises once its client went away. */
export function isClientClosed(err: unknown): boolean {
  return err instanceof KvrError && err.code === 'KVR_ERR_CLIENT_CLOSED';
}
