/** A free loopback TCP port for the benchmarks' child processes (bound, read, released). */
import { createServer } from 'node:net';

/** Resolves with a port that was free on 127.0.0.1 a moment ago; rejects when none can be bound. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}
