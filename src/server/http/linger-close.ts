/**
 * Closing a connection without losing the answer: after the last response bytes are written and
 * the write side ended (FIN), the socket keeps reading and discarding what the client is still
 * sending, for at most `lingerMs`, then is destroyed. Destroying at once with unread data makes
 * the kernel send a reset, and a client still uploading (a 10 MB body over the limit) may then
 * see ECONNRESET/EPIPE instead of the 413 that was sent: nginx's `lingering_close` for the same
 * reason. The linger is bounded, so a client that keeps streaming costs at most `lingerMs`.
 */
import type { Socket } from 'node:net';

/** Destroys `socket` once the client closed, or after `lingerMs`, discarding whatever it sends meanwhile. */
export function closeAfterResponse(socket: Socket, lingerMs: number): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.resume();
}

/**
 * Makes Node's own close of `socket` (after a `Connection: close` response finishes) linger
 * instead of destroying at once; used for 413 responses.
 */
export function lingerOnClose(socket: Socket, lingerMs: number): void {
  const s = socket as Socket & { destroySoon?: () => void };
  s.destroySoon = () => {
    if (socket.writable) socket.end();
    closeAfterResponse(socket, lingerMs);
  };
}
