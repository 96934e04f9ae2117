/**
 * Raw TCP clients for the public-port fault tests: what a slowloris, a malformed or an oversized
 * request looks like on the wire, and what came back.
 */
import { connect, type Socket } from 'node:net';

/** What a raw connection saw: bytes received and how/when it ended. */
export interface RawOutcome {
  /** Everything the server sent. */
  text: string;
  /** HTTP status of the first response, if any. */
  status: number | undefined;
  /** ms from connect to the socket closing. */
  closedAfterMs: number;
  /** Socket error code, if the connection ended in one. */
  error: string | undefined;
}

/** Opens a TCP connection to `url`'s host and port (optionally from `localAddress`). */
export function openRaw(url: string, localAddress?: string): Promise<Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect({ host: u.hostname, port: Number(u.port), ...(localAddress ? { localAddress } : {}) }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Collects what `socket` receives until it closes (or `maxMs` passes: then it is destroyed). */
export function outcome(socket: Socket, maxMs: number): Promise<RawOutcome> {
  const started = Date.now();
  let text = '';
  let error: string | undefined;
  socket.on('data', (b: Buffer) => (text += b.toString('latin1')));
  socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
  return new Promise((resolve) => {
    const timer = setTimeout(() => socket.destroy(), maxMs);
    socket.once('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ text, status: m ? Number(m[1]) : undefined, closedAfterMs: Date.now() - started, error });
    });
  });
}

/** The JSON body of a raw response (after the blank line). */
export function rawBody(text: string): unknown {
  const i = text.indexOf('\r\n\r\n');
  return JSON.parse(text.slice(i + 4));
}

/** True when the socket is still open after `ms`. */
export async function stillOpen(socket: Socket, ms: number): Promise<boolean> {
  await new Promise((r) => setTimeout(r, ms));
  return !socket.destroyed && socket.readyState === 'open';
}
