/**
 * Proxy overhead in instructions: what one proxied request costs each proxy, counted by
 * callgrind (valgrind), so before/after comparisons hold on a busy machine where CPU time from
 * /proc moves ±15 % between runs. The counts are of user-space instructions (no kernel time, no
 * cache effects): a measure of the work done, to compare builds and proxies, not a time.
 *
 *   upstreams  the 4 tiny upstreams of bench/proxy-overhead.ts (its `--role upstream`);
 *   proxies    bare (proxy-overhead's bare Node proxy), kvroute-rr, kvroute (default profile), and
 *              with --baseline-cli another build as kvroute-rr-base / kvroute-base; each runs
 *              under `valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes`;
 *   method     `--warmup` requests (closed loop, `--concurrency` connections) with instrumentation
 *              off (the JIT settles), then instrumentation on for `--idle-seconds` of no traffic
 *              (the background: scraper, health checks, timers), then for `--requests` requests;
 *              per request = (requests window - idle rate x its duration) / requests. Reported:
 *              the main thread (the event loop) and all threads (GC and compiler helpers vary
 *              more from run to run). kvroute runs with `--scrape-interval-ms 600000` unless
 *              `--kvroute-args` says otherwise: under valgrind a request takes tens of ms, so a
 *              50 ms scraper would be counted many times per request (traffic keeps its interval
 *              at the base); its cost is a CPU-time figure (proxy-overhead.ts with
 *              `--kvroute-args "--scrape-interval-ms 2000"`). The health checks (250 ms) stay on
 *              and are subtracted with the idle window.
 *
 * Needs valgrind (Debian: apt-get install -y valgrind).
 *
 *   npm run build && node dist/bench/proxy-instructions.js [--proxies bare,kvroute-rr,kvroute]
 *     [--baseline-cli <dist/src/cli/main.js of another build>] [--modes json,sse] [--warmup 4000]
 *     [--requests 400] [--idle-seconds 10] [--concurrency 4] [--kvroute-args "<serve flags>"]
 *     [--node-args "<node flags>"] [--keep-dir <dir>]
 *
 * Function level: `--node-args --perf-basic-prof --keep-dir <dir>` keeps the callgrind dumps
 * (`<proxy>-<mode>.cg.2-01` is the requests window's main thread) and V8's map of JIT code
 * (`/tmp/perf-<pid>.map`, the pid printed per proxy) to name the addresses callgrind_annotate
 * shows for JIT-compiled JS.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { freeLoopbackPort as freePort } from '../src/bench/live-peers.js';

const SELF = fileURLToPath(import.meta.url);
const OVERHEAD = join(SELF, '..', 'proxy-overhead.js');
const CLI = join(SELF, '..', '..', 'src', 'cli', 'main.js');
const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};

function startChild(cmd: string, args: string[], ready: RegExp): Promise<{ child: ChildProcess; m: RegExpExecArray }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let done = false;
    const on = (d: Buffer): void => {
      if (done) return;
      buf += d.toString();
      const m = ready.exec(buf);
      if (m) {
        done = true;
        resolve({ child, m });
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => {
      if (!done) reject(new Error(`${cmd} exited (${code}) before it was ready: ${buf.slice(-800)}`));
    });
  });
}


function chatBody(bytes: number, stream: boolean): string {
  const base = { model: 'bench-model', max_tokens: 16, stream, messages: [{ role: 'user', content: '' }] };
  const pad = bytes - JSON.stringify(base).length;
  let s = '';
  for (let i = 0; s.length < pad; i++) s += `word${i % 997} `;
  base.messages[0].content = s.slice(0, Math.max(0, pad));
  return JSON.stringify(base);
}

/** Instructions of each thread in the dumps of `prefix` (callgrind writes one file per thread). */
function threadCounts(dir: string, prefix: string): number[] {
  const out: number[] = [];
  for (const f of readdirSync(dir).filter((x) => x.startsWith(prefix)).sort()) {
    const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, f), 'utf8'));
    if (m) out.push(Number(m[1]));
  }
  return out;
}

interface Result { proxy: string; mode: string; mainKIr: number; allKIr: number; idleMainKIrPerS: number; errors: number }

async function measure(name: string, mode: string, upstreams: string[], dir: string): Promise<Result> {
  const baseline = arg('baseline-cli', '');
  const vg = ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', '--dump-instr=no'];
  const tag = `${name}-${mode}`;
  const outFile = join(dir, `${tag}.cg`);
  const nodeArgs = arg('node-args', '').split(' ').filter((a) => a !== '');
  let child: ChildProcess;
  let url: string;
  if (name === 'bare') {
    const r = await startChild('valgrind', [...vg, `--callgrind-out-file=${outFile}`, process.execPath, ...nodeArgs, OVERHEAD, '--role', 'bare-proxy', '--upstreams', upstreams.join(',')], /PORTS (\d+)/);
    child = r.child;
    url = `http://127.0.0.1:${r.m[1]}`;
  } else {
    const base = name.endsWith('-base');
    if (base && baseline === '') throw new Error(`${name} needs --baseline-cli`);
    const port = await freePort();
    const admin = await freePort();
    const args = [...vg, `--callgrind-out-file=${outFile}`, process.execPath, ...nodeArgs, base ? baseline : CLI, 'serve', '--endpoints', upstreams.join(','), '--port', String(port), '--admin-port', String(admin), '--log-level', 'silent'];
    if (name.startsWith('kvroute-rr')) args.push('--preset', 'round-robin');
    args.push(...arg('kvroute-args', '--scrape-interval-ms 600000').split(' ').filter((a) => a !== ''));
    const r = await startChild('valgrind', args, /gateway on (http:\/\/[\d.:]+)/);
    child = r.child;
    url = r.m[1];
  }
  const pid = String(child.pid);
  process.stderr.write(`${tag}: pid ${pid}\n`);
  const conc = Number(arg('concurrency', '4'));
  const pool = new Pool(url, { connections: conc });
  const body = chatBody(8192, mode === 'sse');
  let errors = 0;
  const run = async (n: number): Promise<void> => {
    let i = 0;
    const worker = async (): Promise<void> => {
      while (i < n) {
        i++;
        try {
          const r = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body });
          await r.body.text();
          if (r.statusCode !== 200) errors++;
        } catch {
          errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: conc }, worker));
  };
  const control = (...a: string[]): void => void spawnSync('callgrind_control', [...a, pid], { stdio: 'ignore' });
  try {
    await run(Number(arg('warmup', '4000')));
    errors = 0;
    const idleS = Number(arg('idle-seconds', '10'));
    control('-i', 'on');
    await new Promise((r) => setTimeout(r, idleS * 1000));
    control('-d'); // dump 1: the idle window
    const t0 = performance.now();
    const n = Number(arg('requests', '400'));
    await run(n);
    const loadS = (performance.now() - t0) / 1000;
    control('-d'); // dump 2: the requests window
    const idle = threadCounts(dir, `${tag}.cg.1-`);
    const load = threadCounts(dir, `${tag}.cg.2-`);
    const idleMainPerS = (idle[0] ?? 0) / idleS;
    const idleAllPerS = idle.reduce((a, b) => a + b, 0) / idleS;
    return {
      proxy: name,
      mode,
      mainKIr: Math.round(((load[0] ?? 0) - idleMainPerS * loadS) / n / 1000),
      allKIr: Math.round((load.reduce((a, b) => a + b, 0) - idleAllPerS * loadS) / n / 1000),
      idleMainKIrPerS: Math.round(idleMainPerS / 1000),
      errors,
    };
  } finally {
    child.kill('SIGKILL');
    await pool.close();
  }
}

async function main(): Promise<void> {
  if (spawnSync('sh', ['-c', 'command -v valgrind && command -v callgrind_control']).status !== 0) throw new Error('valgrind is not installed (Debian: apt-get install -y valgrind)');
  const proxies = arg('proxies', 'bare,kvroute-rr,kvroute').split(',');
  if (arg('baseline-cli', '') !== '') for (const p of ['kvroute-rr-base', 'kvroute-base']) if (!proxies.includes(p)) proxies.push(p);
  const modes = arg('modes', 'json,sse').split(',');
  const keep = arg('keep-dir', '');
  const dir = keep !== '' ? keep : mkdtempSync(join(tmpdir(), 'kvroute-instr-'));
  if (keep !== '') mkdirSync(keep, { recursive: true });
  const up = await startChild(process.execPath, [OVERHEAD, '--role', 'upstream'], /PORTS ([\d,]+)/);
  const upstreams = up.m[1].split(',').map((p) => `127.0.0.1:${p}`);
  const results: Result[] = [];
  try {
    for (const mode of modes) {
      for (const p of proxies) {
        const r = await measure(p, mode, upstreams, dir);
        results.push(r);
        process.stderr.write(`${p} ${mode}: ${r.mainKIr} kIr/req main thread, ${r.allKIr} all threads\n`);
      }
    }
  } finally {
    up.child.kill('SIGTERM');
    if (keep === '') rmSync(dir, { recursive: true, force: true });
  }
  console.log('mode  proxy            main kIr/req  x bare   all threads kIr/req  idle main kIr/s  errors');
  for (const r of results) {
    const bare = results.find((x) => x.proxy === 'bare' && x.mode === r.mode);
    const x = bare !== undefined ? (r.mainKIr / bare.mainKIr).toFixed(2) : '-';
    console.log(`${r.mode.padEnd(5)} ${r.proxy.padEnd(16)} ${String(r.mainKIr).padStart(12)} ${x.padStart(7)} ${String(r.allKIr).padStart(20)} ${String(r.idleMainKIrPerS).padStart(16)} ${String(r.errors).padStart(7)}`);
  }
}

await main();
