/** Small HTTP helpers of the simulated replica: bounded body reading and JSON / error replies. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KvrError, toKvrError } from '../core/errors.js';

/** Reads the request body, rejecting with KVR_ERR_BODY_TOO_LARGE past `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new KvrError('KVR_ERR_BODY_TOO_LARGE', `request body over ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        reject(new KvrError('KVR_ERR_BODY_TOO_LARGE', `request body over ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      if (!failed) reject(e);
      failed = true;
    });
  });
}

/** Parses a JSON object body (400 KVR_ERR_BAD_JSON otherwise). */
export function parseJsonObject(buf: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw new KvrError('KVR_ERR_BAD_JSON', `malformed JSON body: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new KvrError('KVR_ERR_BAD_JSON', 'the request body must be a JSON object');
  }
  return v as Record<string, unknown>;
}

/** Sends `body` as JSON with `status`. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}

/** vLLM's error `type` for an HTTP status (`create_error_response` err_type). */
export function vllmErrorType(status: number): string {
  if (status === 404) return 'NotFoundError';
  if (status === 501) return 'NotImplementedError';
  if (status >= 500) return 'InternalServerError';
  return 'BadRequestError';
}

/**
 * vLLM's `ErrorResponse` body: `{"error": {"message", "type", "param", "code"}}` with the HTTP
 * status as an integer `code` and a type such as BadRequestError / NotFoundError.
 */
export function vllmErrorBody(err: unknown): { error: { message: string; type: string; param: string | null; code: number } } {
  const e = toKvrError(err);
  return { error: { message: e.message, type: vllmErrorType(e.status), param: e.param ?? null, code: e.status } };
}

/** Sends any error as vLLM's error body with its status (if the response has not started). */
export function sendError(res: ServerResponse, err: unknown): void {
  const e = toKvrError(err);
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  if (e.code === 'KVR_ERR_BODY_TOO_LARGE') res.setHeader('connection', 'close');
  sendJson(res, e.status, vllmErrorBody(e));
}
