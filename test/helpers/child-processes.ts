/**
 * What the test helpers that run real servers (redis-server, a Redis Cluster, llama-server)
 * share: a free loopback port, a registry of live children killed if the test process exits
 * early, and a stop that escalates to SIGKILL.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A free loopback TCP port (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Registers `child` so it is killed if this process exits before {@link stopChild}. */
export function trackChild(child: ChildProcess): void {
  live.add(child);
}

/** Forgets `child` (it exited on its own). */
export function untrackChild(child: ChildProcess): void {
  live.delete(child);
}

/**
 * Stops `child` with `signal` (SIGCONT first, so a frozen child can act on it), SIGKILL after
 * `killAfterMs`; resolves once it exited.
 */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 2_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      live.delete(child);
      return resolve();
    }
    const t = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.once('exit', () => {
      clearTimeout(t);
      live.delete(child);
      resolve();
    });
    child.kill('SIGCONT');
    child.kill(signal);
  });
}
