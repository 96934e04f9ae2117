/**
 * A real 3-node Redis Cluster on loopback for tests and benchmarks: three `redis-server
 * --cluster-enabled yes` in a temp dir (no persistence), joined by `redis-cli --cluster create
 * ... --cluster-replicas 0 --cluster-yes`, ready once every node reports `cluster_state:ok`;
 * stopped by PID. Binaries from PATH unless `REDIS_SERVER` / `REDIS_CLI` name others. Fails
 * loudly (with how to install them) when they are missing.
 *
 *   const cluster = await startRedisCluster();
 *   after(() => cluster.stop());
 *   ... cluster.url ('redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3') ...
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stopChild, trackChild, untrackChild } from './child-processes.js';

const run = promisify(execFile);

/** A running 3-master cluster. */
export interface RedisCluster {
  readonly ports: number[];
  /** `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3` */
  readonly url: string;
  readonly pids: number[];
  /** Runs redis-cli against one node (e.g. `['cluster', 'info']`), returns stdout. */
  cli(port: number, args: string[]): Promise<string>;
  /** Stops every node (SIGTERM, then SIGKILL after 2 s) and removes the temp dir; safe twice. */
  stop(): Promise<void>;
}

const INSTALL = 'Install Redis (Debian/Ubuntu: sudo apt-get install -y redis-server redis-tools; macOS: brew install redis) or point REDIS_SERVER / REDIS_CLI at the binaries.';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function lowPorts(n: number, taken: number[]): Promise<number[]> {
  const out: number[] = [];
  for (let p = 20_000 + Math.floor(Math.random() * 20_000); out.length < n && p < 45_000; p++) {
    if (!taken.includes(p) && (await portFree(p)) && (await portFree(p + 10_000))) out.push(p);
  }
  return out;
}

function launch(bin: string, port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '5000',
      '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'notice'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  trackChild(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`redis-server (cluster node) did not start on port ${port} within 5 s: ${out.slice(-500)}`)), 5_000);
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        child.stderr?.resume();
        resolve(child);
      }
    };
    const fail = (err: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      untrackChild(child);
      reject(err);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', (err: NodeJS.ErrnoException) => fail(err.code === 'ENOENT' ? new Error(`redis-server is not installed (no "${bin}" on PATH): the Redis Cluster tests need a real Redis. ${INSTALL}`) : err));
    child.once('exit', (code) => fail(new Error(`redis-server exited (code ${code}) on port ${port}: ${out.slice(-500)}`)));
  });
}

/** Starts a 3-master Redis Cluster on loopback (see the file comment). */
export async function startRedisCluster(): Promise<RedisCluster> {
  const server = process.env.REDIS_SERVER ?? 'redis-server';
  const cliBin = process.env.REDIS_CLI ?? 'redis-cli';
  const dir = await mkdtemp(join(tmpdir(), 'kvroute-redis-cluster-'));
  const children: ChildProcess[] = [];
  const cli = async (port: number, args: string[]): Promise<string> => {
    try {
      return (await run(cliBin, ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 20_000 })).stdout;
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
      if (e.code === 'ENOENT') throw new Error(`redis-cli is not installed (no "${cliBin}" on PATH): creating a Redis Cluster needs it. ${INSTALL}`);
      throw new Error(`redis-cli ${args.join(' ')} failed: ${e.message} ${e.stdout ?? ''} ${e.stderr ?? ''}`);
    }
  };
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(children.map((c) => stopChild(c)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // Cluster bus ports are data port + 10000: both must be free.
    const ports = await lowPorts(3, []);
    if (ports.length < 3) throw new Error('no free loopback ports for a Redis Cluster (20000-45000 and their +10000 bus ports)');
    for (const p of ports) children.push(await launch(server, p, dir));
    await cli(ports[0], ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const infos = await Promise.all(ports.map((p) => cli(p, ['cluster', 'info'])));
      if (infos.every((i) => i.includes('cluster_state:ok'))) break;
      if (Date.now() > deadline) throw new Error(`Redis Cluster on ports ${ports.join(', ')} not ok within 20 s: ${infos.map((i) => /cluster_state:\w+/.exec(i)?.[0]).join(', ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      ports,
      url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
      pids: children.map((c) => c.pid as number),
      cli,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
