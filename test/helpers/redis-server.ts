/**
 * A real redis-server for tests: started on a free 127.0.0.1 port with no persistence, stopped by
 * its PID, restartable on the same port (an empty Redis again, as after a crash without data).
 * The binary is `redis-server` from PATH unless `REDIS_SERVER` names another.
 *
 *   const redis = await startRedisServer();
 *   after(() => redis.stop());
 *   ... redis.url ... await redis.kill(); ... await redis.restart();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, stopChild, trackChild, untrackChild } from './child-processes.js';

/** A running (or stopped, restartable) redis-server. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** PID of the current process (undefined while stopped). */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM, then SIGKILL after 2 s); safe to call twice. */
  stop(): Promise<void>;
  /** Kills the server at once (SIGKILL), like a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: no persistence). Stops it first if running. */
  restart(): Promise<void>;
}

function launch(port: number): Promise<ChildProcess> {
  const bin = process.env.REDIS_SERVER ?? 'redis-server';
  const child = spawn(
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'notice', '--databases', '1'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  trackChild(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`redis-server did not start on port ${port} within 5 s: ${out.slice(-500)}`)), 5_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        child.stderr?.resume();
        resolve(child);
      }
    };
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      untrackChild(child);
      reject(err);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', (err: NodeJS.ErrnoException) =>
      fail(
        err.code === 'ENOENT'
          ? new Error(
              `redis-server is not installed (no "${bin}" on PATH): the Redis index tests need a real Redis. ` +
                'Install it (Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis) or point REDIS_SERVER at the binary.',
            )
          : err,
      ),
    );
    child.once('exit', (code) => fail(new Error(`redis-server exited (code ${code}) on port ${port}: ${out.slice(-500)}`)));
  });
}

/** Starts a redis-server on a free loopback port (retries with another port if one was taken). */
export async function startRedisServer(): Promise<RedisServer> {
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 0; child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await launch(port);
    } catch (err) {
      if (attempt >= 2) throw err;
    }
  }
  let current: ChildProcess | undefined = child;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return current?.pid;
    },
    async stop() {
      if (current !== undefined) await stopChild(current, 'SIGTERM');
      current = undefined;
    },
    async kill() {
      if (current !== undefined) await stopChild(current, 'SIGKILL');
      current = undefined;
    },
    async restart() {
      if (current !== undefined) await stopChild(current, 'SIGTERM');
      current = await launch(port);
    },
  };
}
