/**
 * Bounded soak of the gateway against a simulated fleet with faults (not in CI):
 *
 *   npm run soak -- [--connections 200] [--seconds 60] [--replicas 3] [--time-scale 0.05]
 *                   [--serve-args "--redis 127.0.0.1:6379 ..."] [--hook ./my-hook.js]
 *
 * Both the fleet (`kvroute sim`) and the router (`kvroute serve`) run as child processes, so the
 * router's RSS and open files are its own (/proc/<pid>/status, /proc/<pid>/fd). Timeline:
 *
 *   0 .. 10 %      warm-up (RSS and open files "before" are read at 10 %)
 *   10 %           replica 1 starts answering 500 to everything (until the end)
 *   25 % .. 50 %   replica 0 is killed (connections dropped, port closed), then restarted
 *   100 %          load stops; the clients close; 35 s later (the router's upstream keep-alive
 *                  is 30 s) RSS and open files "after" are read
 *
 * `connections` clients loop requests (half streaming, 32 tokens, prompts sharing prefixes);
 * a separate probe reads GET /health every 50 ms. Errors are counted by kind: HTTP status,
 * `stream-cut` (a stream ended without [DONE]), `stream-error` (an error event in the stream),
 * `transport` (the connection to the router failed).
 *
 * Hooks for faults on other parts (Redis restart, KV-event flood): `--hook <module>` loads a
 * module whose default export `(ctx) => Promise<void>` is called at each phase with
 * `{ phase: 'start' | 'faults' | 'kill' | 'restart' | 'end', routerUrl, adminUrl, endpoints }`;
 * `--serve-args` passes extra flags to `kvroute serve` (e.g. `--redis`, `--kv-events`).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Agent, request } from 'undici';
import { startSimProcess } from './sim-process.js';

interface Args { connections: number; seconds: number; replicas: number; timeScale: number; serveArgs: string[]; hook?: string }

function parseArgs(): Args {
  const a: Args = { connections: 200, seconds: 60, replicas: 3, timeScale: 0.05, serveArgs: [] };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i];
    const x = v[i + 1];
    if (x === undefined) throw new Error(`${k} needs a value`);
    if (k === '--connections') a.connections = Number(x);
    else if (k === '--seconds') a.seconds = Number(x);
    else if (k === '--replicas') a.replicas = Number(x);
    else if (k === '--time-scale') a.timeScale = Number(x);
    else if (k === '--serve-args') a.serveArgs = x.split(' ').filter(Boolean);
    else if (k === '--hook') a.hook = resolve(x);
    else throw new Error(`unknown flag ${k}; flags: --connections --seconds --replicas --time-scale --serve-args --hook`);
  }
  if (!(a.connections > 0 && a.seconds >= 10 && a.replicas >= 3)) throw new Error('need --connections > 0, --seconds >= 10, --replicas >= 3');
  return a;
}

const MODEL = 'soak-model';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]);

async function procStats(pid: number, adminUrl: string): Promise<{ rssMiB: number; heapUsedMiB: number; fds: number }> {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
  const m = await (await request(`${adminUrl}/metrics`)).body.text();
  const heap = Number(/^kvroute_nodejs_heap_size_used_bytes (\S+)/m.exec(m)?.[1] ?? NaN) / 2 ** 20;
  return { rssMiB: Math.round(rss * 10) / 10, heapUsedMiB: Math.round(heap * 10) / 10, fds: readdirSync(`/proc/${pid}/fd`).length };
}

async function startServe(endpoints: string, extra: string[]): Promise<{ url: string; adminUrl: string; pid: number; log: string; stop(): Promise<void> }> {
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  // The router's stderr goes to a file, not a pipe: its logger writes synchronously, and a pipe
  // this busy process drains late would stall the router's event loop (and the measurements).
  const log = join(mkdtempSync(join(tmpdir(), 'kvroute-soak-')), 'serve.log');
  const fd = openSync(log, 'w');
  const child = spawn(process.execPath, [cli, 'serve', '--endpoints', endpoints, '--port', '0', '--admin-port', '0', '--kv-events', 'off', ...extra], { stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  let exited = false;
  child.once('exit', () => (exited = true));
  let urls: RegExpExecArray | null = null;
  for (let i = 0; i < 600 && urls === null; i++) {
    await sleep(50);
    if (exited) throw new Error(`kvroute serve exited: ${readFileSync(log, 'utf8')}`);
    urls = /kvroute gateway on (\S+), admin on (\S+)/.exec(readFileSync(log, 'utf8'));
  }
  if (urls === null) throw new Error(`kvroute serve did not start in 30 s: ${readFileSync(log, 'utf8')}`);
  return {
    url: urls[1],
    adminUrl: urls[2],
    pid: child.pid!,
    log,
    stop: () => new Promise<void>((r) => (child.exitCode !== null ? r() : (child.once('exit', () => r()), child.kill('SIGTERM')))),
  };
}

async function setFaults(url: string, faults: Record<string, unknown>): Promise<void> {
  const res = await request(`http://${url}/sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(faults) });
  await res.body.text();
  if (res.statusCode !== 200) throw new Error(`/sim/faults on ${url}: ${res.statusCode}`);
}

async function main(): Promise<void> {
  const a = parseArgs();
  const hook = a.hook ? ((await import(pathToFileURL(a.hook).href)) as { default: (ctx: Record<string, unknown>) => Promise<void> }).default : undefined;
  const sim = await startSimProcess(['--replicas', String(a.replicas), '--time-scale', String(a.timeScale), '--model', MODEL, '--profile', 'llama-3.2-1b', '--max-num-seqs', '256']);
  const eps = sim.endpoints.split(',');
  const router = await startServe(sim.endpoints, a.serveArgs);
  const ctx = (phase: string) => ({ phase, routerUrl: router.url, adminUrl: router.adminUrl, endpoints: eps });
  const client = new Agent({ connections: a.connections + 8, keepAliveTimeout: 30_000 });
  const errors: Record<string, number> = {};
  const lat: number[] = [];
  let total = 0;
  let ok = 0;
  let stop = false;
  const t0 = performance.now();
  const prefixes = Array.from({ length: 20 }, (_, i) => `System prompt ${i}: ${'you are a careful assistant; '.repeat(20 + i)}`);
  const worker = async (w: number): Promise<void> => {
    for (let n = 0; !stop; n++) {
      const stream = (w + n) % 2 === 0;
      const t = performance.now();
      total++;
      try {
        const res = await request(`${router.url}/v1/completions`, {
          method: 'POST',
          dispatcher: client,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: MODEL, prompt: `${prefixes[(w * 7 + n) % prefixes.length]} question ${w}-${n}`, max_tokens: 32, ignore_eos: true, ...(stream ? { stream: true } : {}) }),
        });
        const text = await res.body.text();
        let kind: string | undefined;
        if (res.statusCode !== 200) kind = `http-${res.statusCode}`;
        else if (stream && text.includes('data: {"error"')) kind = 'stream-error';
        else if (stream && !text.endsWith('data: [DONE]\n\n')) kind = 'stream-cut';
        if (kind === undefined) {
          ok++;
          lat.push(performance.now() - t);
        } else errors[kind] = (errors[kind] ?? 0) + 1;
      } catch {
        errors.transport = (errors.transport ?? 0) + 1;
      }
    }
  };
  // /health is probed from a worker thread: its own event loop, so the 200 clients' work in
  // this process does not show up as router latency.
  const probe = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const { request } = require(workerData.undici);
     const lat = []; const lag = []; let stop = false;
     parentPort.on('message', () => { stop = true; });
     (async () => {
       while (!stop) {
         const t = performance.now();
         try { const r = await request(workerData.url + '/health'); await r.body.text(); lat.push(performance.now() - t); }
         catch { lat.push(Infinity); }
         await new Promise((r) => setTimeout(r, 50));
       }
     })();
     (async () => {
       // The router's own event-loop delay (max over each scrape interval, prom-client).
       while (!stop) {
         try {
           const m = await (await request(workerData.admin + '/metrics')).body.text();
           const x = /^kvroute_nodejs_eventloop_lag_max_seconds (\\S+)/m.exec(m);
           if (x) lag.push(Number(x[1]) * 1000);
         } catch {}
         await new Promise((r) => setTimeout(r, 1000));
       }
       await new Promise((r) => setTimeout(r, 100));
       parentPort.postMessage({ lat, lag });
     })();`,
    { eval: true, workerData: { url: router.url, admin: router.adminUrl, undici: createRequire(import.meta.url).resolve('undici') } },
  );
  const probeDone = new Promise<{ lat: number[]; lag: number[] }>((r) => probe.once('message', (m: { lat: number[]; lag: number[] }) => r(m)));
  const ms = a.seconds * 1000;
  const idle = await procStats(router.pid, router.adminUrl);
  await hook?.(ctx('start'));
  const work = Promise.all(Array.from({ length: a.connections }, (_, w) => worker(w)));
  await sleep(ms * 0.1);
  const before = await procStats(router.pid, router.adminUrl);
  await setFaults(eps[1], { errorRate: 1 });
  await hook?.(ctx('faults'));
  await sleep(ms * 0.15);
  await setFaults(eps[0], { down: true, downForMs: Math.round(ms * 0.25) });
  await hook?.(ctx('kill'));
  await sleep(ms * 0.25);
  await hook?.(ctx('restart'));
  await sleep(ms * 0.5);
  stop = true;
  await work;
  probe.postMessage('stop');
  const { lat: health, lag } = await probeDone;
  await probe.terminate();
  const elapsed = (performance.now() - t0) / 1000;
  await hook?.(ctx('end'));
  await client.close();
  // The router keeps idle upstream connections for 30 s (keep-alive): wait them out.
  await sleep(35_000);
  const after = await procStats(router.pid, router.adminUrl);
  const metrics = await (await request(`${router.adminUrl}/metrics`)).body.text();
  const sum = (re: RegExp) => metrics.split('\n').filter((l) => re.test(l)).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  const report = {
    connections: a.connections,
    seconds: Math.round(elapsed),
    requests: total,
    ok,
    errors,
    latencyMs: { p50: Math.round(pct(lat, 0.5)), p99: Math.round(pct(lat, 0.99)) },
    routerEventLoopLagMaxMs: Math.round(Math.max(...lag)),
    healthMs: { p50: Math.round(pct(health, 0.5) * 10) / 10, p99: Math.round(pct(health, 0.99) * 10) / 10, max: Math.round(Math.max(...health) * 10) / 10 },
    routerLog: router.log,
    router_idle_before_load: idle,
    router_warm_at_10pct: before,
    router_after_35s_idle: after,
    router: {
      retries: sum(/^kvroute_upstream_retries_total\{/),
      ejections: sum(/^kvroute_outlier_ejections_total\{/),
      retryBudgetExhausted: sum(/^kvroute_retry_budget_exhausted_total /),
      clientAborts: sum(/^kvroute_client_aborts_total\{/),
      inflightAtEnd: sum(/^kvroute_inflight_requests\{/),
      upstreamErrors: Object.fromEntries(
        [...metrics.matchAll(/^kvroute_upstream_errors_total\{endpoint="[^"]+",kind="([^"]+)"\} (\d+)/gm)].reduce((m, x) => m.set(x[1], (m.get(x[1]) ?? 0) + Number(x[2])), new Map<string, number>()),
      ),
    },
  };
  console.log(JSON.stringify(report, null, 2));
  await router.stop();
  await sim.stop();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
