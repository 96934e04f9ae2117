/**
 * Bounded soak of the gateway against a simulated fleet with faults (not in CI):
 *
 *   npm run soak -- [--connections 200] [--seconds 60] [--replicas 3] [--time-scale 0.05]
 *                   [--kv-events on|off] [--redis on|off] [--flood-mps 40] [--settle-seconds 40]
 *                   [--serve-args "--log-level warn ..."] [--router-node-args "--cpu-prof"] [--hook ./my-hook.js]
 *                   [--router-env image|inherit]
 *
 * The fleet (`kvroute sim`), the router (`kvroute serve`) and Redis (`redis-server`) run as child
 * processes, so the router's RSS and open files are its own (/proc/<pid>/status, /proc/<pid>/fd).
 * With `--kv-events on` (default) routing is precise: the router binds its KV-event SUB on
 * loopback (`--kv-events bind`) and every replica's PUB connects to it (vLLM's
 * `"endpoint":"tcp://router:5557"` wiring), replays through each replica's ROUTER socket;
 * with `--redis on` (default) the block index is a real Redis. Timeline (share of `--seconds`):
 *
 *   0 .. 10 %      warm-up (RSS and open files "warm" are read at 10 %)
 *   10 %           replica 1 starts answering 500 to everything (until the end)
 *   25 %           replica 0 is killed: its engine restarts (in-flight requests fail, cache gone,
 *                  KV-event seq back to 0 without AllBlocksCleared, like a new vLLM process) and
 *                  its port closes (connections dropped, new ones refused)
 *   30 .. 70 %     a flood of 1 MiB KV-event messages (`--flood-mps` per second, worker thread,
 *                  bench/soak-flood-worker.ts) hits the router's event socket on replica 2's topic
 *   50 %           replica 0 listens again
 *   60 %           Redis is restarted (killed, empty again, same port)
 *   100 %          load stops; the clients close; RSS and open files are sampled for
 *                  `--settle-seconds` (the router's upstream keep-alive is 30 s)
 *
 * `connections` clients loop requests (half streaming, 32 tokens, prompts sharing prefixes);
 * a worker thread reads GET /health every 50 ms. Errors are counted by kind: HTTP status,
 * `stream-cut` (a stream ended without [DONE]), `stream-error` (an error event in the stream:
 * the replica died while streaming, nothing could be retried), `transport` (the connection to
 * the router failed). Router RSS and open files are sampled every second (peak).
 *
 * Hooks for other faults: `--hook <module>` loads a module whose default export
 * `(ctx) => Promise<void>` is called at each phase with `{ phase: 'start' | 'faults' | 'kill' |
 * 'restart' | 'end', routerUrl, adminUrl, endpoints }`; `--serve-args` passes extra flags to
 * `kvroute serve`; `--router-node-args` passes Node flags to the router's process (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`, `--trace-gc`).
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
import { startRedisServer, type RedisServer } from '../test/helpers/redis-server.js';
import { startSimProcess } from './sim-process.js';
import { MALLOC_ENV } from '../src/app/malloc-env.js';
import { freeLoopbackPort as freePort } from '../src/bench/live-peers.js';

interface Args { routerEnv: 'image' | 'inherit'; connections: number; seconds: number; replicas: number; timeScale: number; kvEvents: boolean; redis: boolean; floodMps: number; settleSeconds: number; serveArgs: string[]; routerNodeArgs: string[]; hook?: string }

function onOff(k: string, x: string): boolean {
  if (x !== 'on' && x !== 'off') throw new Error(`${k} takes on or off, got ${x}`);
  return x === 'on';
}

function parseArgs(): Args {
  const a: Args = { routerEnv: 'image', connections: 200, seconds: 60, replicas: 3, timeScale: 0.05, kvEvents: true, redis: true, floodMps: 40, settleSeconds: 40, serveArgs: [], routerNodeArgs: [] };
  const v = process.argv.slice(2);
  if (v.includes('--help') || v.includes('-h')) {
    process.stdout.write('usage: npm run soak -- [--connections 200] [--seconds 60] [--replicas 3] [--time-scale 0.05] [--kv-events on|off] [--redis on|off]\n' +
      '         [--flood-mps 40] [--settle-seconds 40] [--serve-args "..."] [--router-node-args "..."] [--router-env image|inherit] [--hook ./my-hook.js]\n(the scenario: the comment atop bench/soak.ts)\n');
    process.exit(0);
  }
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i];
    const x = v[i + 1];
    if (x === undefined) throw new Error(`${k} needs a value`);
    if (k === '--connections') a.connections = Number(x);
    else if (k === '--seconds') a.seconds = Number(x);
    else if (k === '--replicas') a.replicas = Number(x);
    else if (k === '--time-scale') a.timeScale = Number(x);
    else if (k === '--kv-events') a.kvEvents = onOff(k, x);
    else if (k === '--redis') a.redis = onOff(k, x);
    else if (k === '--flood-mps') a.floodMps = Number(x);
    else if (k === '--settle-seconds') a.settleSeconds = Number(x);
    else if (k === '--serve-args') a.serveArgs = x.split(' ').filter(Boolean);
    else if (k === '--router-node-args') a.routerNodeArgs = x.split(' ').filter(Boolean);
    else if (k === '--hook') a.hook = resolve(x);
    else if (k === '--router-env') {
      if (x !== 'image' && x !== 'inherit') throw new Error(`--router-env takes image or inherit, got ${x}`);
      a.routerEnv = x;
    }
    else throw new Error(`unknown flag ${k}; flags: --connections --seconds --replicas --time-scale --kv-events --redis --flood-mps --settle-seconds --serve-args --router-node-args --router-env --hook`);
  }
  if (!(a.connections > 0 && a.seconds >= 10 && a.replicas >= 3)) throw new Error('need --connections > 0, --seconds >= 10, --replicas >= 3');
  if (!(a.floodMps >= 0 && a.settleSeconds >= 0)) throw new Error('need --flood-mps >= 0 and --settle-seconds >= 0');
  if (!a.kvEvents && (a.redis || a.floodMps > 0)) throw new Error('--redis on and --flood-mps > 0 need --kv-events on (pass --redis off --flood-mps 0 with --kv-events off)');
  return a;
}

const MODEL = 'soak-model';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]);

interface ProcSample { rssMiB: number; fds: number }

function procSample(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
  return { rssMiB: Math.round(rss * 10) / 10, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/**
 * Where the resident memory is, from /proc/<pid>/smaps: file-backed pages (the node binary and
 * libraries: code, shared), the main thread's malloc heap (`[heap]`), 64 MiB malloc arenas of
 * other threads (ZeroMQ's I/O thread, libuv's pool, worker threads), and other anonymous
 * mappings (V8's heap pages, mmapped allocations).
 */
function rssBreakdown(pid: number): { fileMiB: number; mallocMainMiB: number; mallocArenasMiB: number; otherAnonMiB: number } {
  const kb = { file: 0, main: 0, arena: 0, anon: 0 };
  let cls: keyof typeof kb = 'anon';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const name = m[3].trim();
      const sizeKb = (parseInt(m[2], 16) - parseInt(m[1], 16)) / 1024;
      cls = name === '[heap]' ? 'main' : name.startsWith('/') ? 'file' : name === '' && sizeKb >= 60 * 1024 && sizeKb <= 64 * 1024 ? 'arena' : 'anon';
    } else if (line.startsWith('Rss:')) kb[cls] += Number(line.split(/\s+/)[1]);
  }
  const r = (x: number) => Math.round((x / 1024) * 10) / 10;
  return { fileMiB: r(kb.file), mallocMainMiB: r(kb.main), mallocArenasMiB: r(kb.arena), otherAnonMiB: r(kb.anon) };
}

async function procStats(pid: number, adminUrl: string): Promise<ProcSample & { heapUsedMiB: number; heapTotalMiB: number; externalMiB: number }> {
  const m = await (await request(`${adminUrl}/metrics`)).body.text();
  const mib = (name: string) => Math.round((Number(new RegExp(`^${name} (\\S+)`, 'm').exec(m)?.[1] ?? NaN) / 2 ** 20) * 10) / 10;
  return { ...procSample(pid), heapUsedMiB: mib('kvroute_nodejs_heap_size_used_bytes'), heapTotalMiB: mib('kvroute_nodejs_heap_size_total_bytes'), externalMiB: mib('kvroute_nodejs_external_memory_bytes'), ...rssBreakdown(pid) };
}


async function startServe(endpoints: string, extra: string[], nodeArgs: string[], routerEnv: 'image' | 'inherit'): Promise<{ url: string; adminUrl: string; pid: number; log: string; stop(): Promise<void> }> {
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  // The router's stderr goes to a file, not a pipe: its logger writes synchronously, and a pipe
  // this busy process drains late would stall the router's event loop (and the measurements).
  const log = join(mkdtempSync(join(tmpdir(), 'kvroute-soak-')), 'serve.log');
  const fd = openSync(log, 'w');
  // The router runs with the container image's malloc settings (src/app/malloc-env.ts), unless
  // --router-env inherit asks for this shell's environment as it is.
  const env = routerEnv === 'image' ? { ...process.env, ...MALLOC_ENV } : process.env;
  const child = spawn(process.execPath, [...nodeArgs, cli, 'serve', '--endpoints', endpoints, '--port', '0', '--admin-port', '0', ...extra], { stdio: ['ignore', 'ignore', fd], env });
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

/** Stops what was started (children by PID), also when the soak fails half-way. */
const cleanups: (() => Promise<void>)[] = [];

async function post(url: string): Promise<void> {
  const res = await request(url, { method: 'POST' });
  await res.body.text();
  if (res.statusCode !== 200) throw new Error(`POST ${url}: ${res.statusCode}`);
}

async function main(): Promise<void> {
  const a = parseArgs();
  const hook = a.hook ? ((await import(pathToFileURL(a.hook).href)) as { default: (ctx: Record<string, unknown>) => Promise<void> }).default : undefined;
  const redis: RedisServer | undefined = a.redis ? await startRedisServer() : undefined;
  if (redis) cleanups.push(() => redis.stop());
  const eventsAddr = a.kvEvents ? `tcp://127.0.0.1:${await freePort()}` : undefined;
  const simArgs = ['--replicas', String(a.replicas), '--time-scale', String(a.timeScale), '--model', MODEL, '--profile', 'llama-3.2-1b', '--max-num-seqs', '256'];
  if (eventsAddr) simArgs.push('--kv-events', '--kv-events-port', '0', '--kv-events-connect', eventsAddr);
  const sim = await startSimProcess(simArgs);
  cleanups.push(() => sim.stop());
  const eps = sim.endpoints.split(',').map((e) => e.split(';')[0]);
  const serveArgs = eventsAddr ? ['--kv-events', 'bind', '--kv-events-bind', eventsAddr, '--tokenizer', 'builtin'] : ['--kv-events', 'off'];
  if (redis) serveArgs.push('--redis', `127.0.0.1:${redis.port}`);
  const router = await startServe(sim.endpoints, [...serveArgs, ...a.serveArgs], a.routerNodeArgs, a.routerEnv);
  cleanups.push(() => router.stop());
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
     const lat = []; const at = []; const lag = []; let stop = false;
     parentPort.on('message', () => { stop = true; });
     (async () => {
       // One uncounted request first: the probe's own start (undici's parser, the connection)
       // is not router latency.
       const w0 = performance.now();
       try { const r = await request(workerData.url + '/health'); await r.body.text(); } catch {}
       parentPort.postMessage({ warmupMs: performance.now() - w0 });
       while (!stop) {
         const t = performance.now();
         try { const r = await request(workerData.url + '/health'); await r.body.text(); lat.push(performance.now() - t); }
         catch { lat.push(Infinity); }
         at.push(Math.round((performance.timeOrigin + t - workerData.t0) / 100) / 10);
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
       parentPort.postMessage({ lat, at, lag });
     })();`,
    { eval: true, workerData: { url: router.url, admin: router.adminUrl, t0: performance.timeOrigin + t0, undici: createRequire(import.meta.url).resolve('undici') } },
  );
  const probeWarmupMs = await new Promise<number>((r) => probe.once('message', (m: { warmupMs: number }) => r(m.warmupMs)));
  const probeDone = new Promise<{ lat: number[]; at: number[]; lag: number[] }>((r) => probe.once('message', (m: { lat: number[]; at: number[]; lag: number[] }) => r(m)));
  // Router RSS / open files every second: the peak.
  const samples: (ProcSample & { t: number })[] = [];
  const sampler = setInterval(() => samples.push({ t: Math.round((performance.now() - t0) / 100) / 10, ...procSample(router.pid) }), 1000);
  const ms = a.seconds * 1000;
  const at = async (share: number) => sleep(Math.max(0, t0 + ms * share - performance.now()));
  const idle = await procStats(router.pid, router.adminUrl);
  await hook?.(ctx('start'));
  const work = Promise.all(Array.from({ length: a.connections }, (_, w) => worker(w)));
  const timeline: Record<string, number> = {};
  const mark = (name: string) => (timeline[name] = Math.round((performance.now() - t0) / 100) / 10);
  await at(0.1);
  const warm = await procStats(router.pid, router.adminUrl);
  await setFaults(eps[1], { errorRate: 1 });
  mark('replica1-500s');
  await hook?.(ctx('faults'));
  await at(0.25);
  await post(`http://${eps[0]}/sim/restart`);
  // Its control port is the one that closes: it listens again by itself at 50 %.
  await setFaults(eps[0], { down: true, downForMs: Math.round(ms * 0.25) });
  mark('replica0-killed');
  await hook?.(ctx('kill'));
  let flood: { worker: Worker; done: Promise<Record<string, number>> } | undefined;
  if (a.floodMps > 0 && eventsAddr) {
    await at(0.3);
    const fw = new Worker(new URL('./soak-flood-worker.js', import.meta.url), { workerData: { address: eventsAddr, topic: `kv@${eps[2]}@${MODEL}`, perSecond: a.floodMps, maxBytes: 1024 * 1024 } });
    flood = { worker: fw, done: new Promise((r) => fw.once('message', r)) };
    mark('flood-start');
  }
  await at(0.5);
  mark('replica0-restarted');
  await hook?.(ctx('restart'));
  if (redis) {
    await at(0.6);
    await redis.restart();
    mark('redis-restarted');
  }
  let floodReport: Record<string, number> | undefined;
  if (flood) {
    await at(0.7);
    flood.worker.postMessage('stop');
    floodReport = await flood.done;
    await flood.worker.terminate();
    mark('flood-end');
  }
  await at(1);
  stop = true;
  await work;
  mark('load-end');
  probe.postMessage('stop');
  const { lat: health, at: healthAt, lag } = await probeDone;
  await probe.terminate();
  const elapsed = (performance.now() - t0) / 1000;
  const peak = samples.reduce((p, s) => ({ rssMiB: Math.max(p.rssMiB, s.rssMiB), fds: Math.max(p.fds, s.fds) }), { rssMiB: 0, fds: 0 });
  await hook?.(ctx('end'));
  await client.close();
  // Idle settle: the router keeps idle upstream connections for 30 s (keep-alive).
  const settle: (ProcSample & { t: number; heapTotalMiB: number })[] = [];
  for (let s = 5; s <= a.settleSeconds; s += 5) {
    await sleep(5000);
    const st = await procStats(router.pid, router.adminUrl);
    settle.push({ t: s, rssMiB: st.rssMiB, fds: st.fds, heapTotalMiB: st.heapTotalMiB });
  }
  clearInterval(sampler);
  const after = await procStats(router.pid, router.adminUrl);
  const metrics = await (await request(`${router.adminUrl}/metrics`)).body.text();
  const sum = (re: RegExp) => metrics.split('\n').filter((l) => re.test(l)).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  const byLabel = (name: string, label: string) =>
    Object.fromEntries([...metrics.matchAll(new RegExp(`^${name}\\{[^}]*${label}="([^"]+)"[^}]*\\} (\\S+)`, 'gm'))].reduce((m, x) => m.set(x[1], (m.get(x[1]) ?? 0) + Number(x[2])), new Map<string, number>()));
  const streamingToDead = errors['stream-error'] ?? 0;
  const report = {
    connections: a.connections,
    seconds: Math.round(elapsed),
    setup: { routerEnv: a.routerEnv === 'image' ? MALLOC_ENV : 'inherited', kvEvents: a.kvEvents ? `bind ${eventsAddr}` : 'off', index: redis ? `redis 127.0.0.1:${redis.port}` : a.kvEvents ? 'memory' : 'none', floodMps: a.floodMps },
    timeline,
    requests: total,
    ok,
    errors,
    errorsStreamingToDeadReplica: streamingToDead,
    errorsOther: Object.values(errors).reduce((n, x) => n + x, 0) - streamingToDead,
    latencyMs: { p50: Math.round(pct(lat, 0.5)), p99: Math.round(pct(lat, 0.99)) },
    routerEventLoopLagMaxMs: Math.round(Math.max(...lag)),
    healthSlowest: health.map((ms, i) => ({ atS: healthAt[i], ms: Math.round(ms) })).sort((x, y) => y.ms - x.ms).slice(0, 5),
    healthProbeWarmupMs: Math.round(probeWarmupMs),
    healthMs: { n: health.length, p50: Math.round(pct(health, 0.5) * 10) / 10, p99: Math.round(pct(health, 0.99) * 10) / 10, max: Math.round(Math.max(...health) * 10) / 10 },
    routerLog: router.log,
    router_idle_before_load: idle,
    router_warm_at_10pct: warm,
    router_peak: peak,
    router_settle: settle,
    router_after_settle: after,
    flood: floodReport,
    router: {
      retries: sum(/^kvroute_upstream_retries_total\{/),
      ejections: sum(/^kvroute_outlier_ejections_total\{/),
      retryBudgetExhausted: sum(/^kvroute_retry_budget_exhausted_total /),
      clientAborts: sum(/^kvroute_client_aborts_total\{/),
      inflightAtEnd: sum(/^kvroute_inflight_requests\{/),
      upstreamErrors: byLabel('kvroute_upstream_errors_total', 'kind'),
      kvEventBatches: sum(/^kvroute_kv_event_batches_total\{/),
      kvEventDropped: byLabel('kvroute_kv_event_dropped_total', 'reason'),
      kvEventResets: sum(/^kvroute_kv_event_resets_total\{/),
      kvEventSinkFailures: sum(/^kvroute_kv_event_sink_failures_total\{/),
      kvEventQueuedBytesAtEnd: sum(/^kvroute_kv_event_queued_bytes\{/),
      idleGcRuns: sum(/^kvroute_idle_gc_total /),
      idleGcSeconds: Math.round(sum(/^kvroute_idle_gc_seconds_total /) * 1000) / 1000,
      idleReleasedMiB: Math.round(sum(/^kvroute_idle_released_bytes_total /) / 2 ** 20),
    },
  };
  console.log(JSON.stringify(report, null, 2));
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    process.exit();
  });
