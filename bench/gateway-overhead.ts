/**
 * Router CPU and latency per proxied request, old gateway build vs new, in the same run:
 *
 *   node dist/bench/gateway-overhead.js --old <dir of an old build's dist> [--requests 2000]
 *        [--concurrency 16] [--rounds 3] [--mix both|stream|json]
 *
 * A simulated fleet (2 replicas, 1/1000 of real step times) runs in a child process, so this
 * process holds only the router and the load generator (identical for both builds); the
 * router's share is what differs. Rounds alternate old/new (A B A B ...) to spread drift.
 * Each request: 200-word prompt, 16 tokens; `--mix` both (default: half streaming), stream or json.
 */
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { startSimProcess } from './sim-process.js';

interface Args { old?: string; new?: string; requests: number; concurrency: number; rounds: number; mix: 'both' | 'stream' | 'json' }
function args(): Args {
  const a: Args = { requests: 2000, concurrency: 16, rounds: 3, mix: 'both' };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i].replace(/^--/, '');
    if (k === 'old') a.old = resolve(v[i + 1]);
    else if (k === 'new') a.new = resolve(v[i + 1]);
    else if (k === 'mix' && ['both', 'stream', 'json'].includes(v[i + 1])) a.mix = v[i + 1] as Args['mix'];
    else if (k === 'requests' || k === 'concurrency' || k === 'rounds') a[k] = Number(v[i + 1]);
    else throw new Error(`unknown flag ${v[i]}; flags: --old <dist dir> [--new <dist dir>, default this build] --requests n --concurrency n --rounds n --mix both|stream|json`);
  }
  return a;
}

const MODEL = 'bench-model';
const words = Array.from({ length: 200 }, (_, i) => `w${(i * 37) % 101}`).join(' ');

async function runVariant(dist: string, endpoints: string, n: number, conc: number, mix: Args['mix']): Promise<{ cpuUsPerReq: number; p50: number; p99: number; rps: number; errors: number }> {
  const { startRouter } = (await import(pathToFileURL(`${dist}/src/server/router.js`).href)) as typeof import('../src/server/router.js');
  const { buildScheduler } = (await import(pathToFileURL(`${dist}/src/app/build-scheduler.js`).href)) as typeof import('../src/app/build-scheduler.js');
  const router = await startRouter({ endpoints: endpoints.split(',').map((url) => ({ url })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
  const client = new Agent({ connections: conc * 2 });
  let errors = 0;
  const one = async (i: number): Promise<number> => {
    const t0 = performance.now();
    const res = await request(`${router.url}/v1/completions`, {
      method: 'POST',
      dispatcher: client,
      headers: { 'content-type': 'application/json' },
      // Like the OpenAI SDKs, a non-streaming request leaves `stream` out.
      body: JSON.stringify({ model: MODEL, prompt: `${i % 50} ${words}`, max_tokens: 16, ignore_eos: true, ...((mix === 'both' ? i % 2 === 0 : mix === 'stream') ? { stream: true } : {}) }),
    });
    await res.body.text();
    if (res.statusCode !== 200) errors++;
    return performance.now() - t0;
  };
  const drive = async (count: number, lat?: number[]): Promise<void> => {
    let next = 0;
    await Promise.all(Array.from({ length: conc }, async () => {
      while (next < count) {
        const ms = await one(next++);
        lat?.push(ms);
      }
    }));
  };
  await drive(200); // warm-up: JIT, connection pools
  const lat: number[] = [];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await drive(n, lat);
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  await client.close();
  await router.close();
  lat.sort((a, b) => a - b);
  return { cpuUsPerReq: (c.user + c.system) / n, p50: lat[Math.floor(n * 0.5)], p99: lat[Math.floor(n * 0.99)], rps: (n / wall) * 1000, errors };
}

async function main(): Promise<void> {
  const a = args();
  if (a.old === undefined) throw new Error('--old <dist dir of the old build> is required (build the baseline commit into a separate folder first)');
  const fresh = a.new ?? resolve(fileURLToPath(new URL('..', import.meta.url)));
  const sim = await startSimProcess(['--replicas', '2', '--time-scale', '0.001', '--model', MODEL, '--profile', 'llama-3.2-1b']);
  try {
    const res: Record<'old' | 'new', Array<Awaited<ReturnType<typeof runVariant>>>> = { old: [], new: [] };
    for (let r = 0; r < a.rounds; r++) {
      for (const [name, dir] of [['old', a.old], ['new', fresh]] as const) {
        const x = await runVariant(dir, sim.endpoints, a.requests, a.concurrency, a.mix);
        res[name].push(x);
        console.log(`round ${r + 1} ${name}: ${x.cpuUsPerReq.toFixed(0)} us CPU/request, p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms, ${x.rps.toFixed(0)} req/s, errors ${x.errors}`);
      }
    }
    const med = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
    const m = (k: 'cpuUsPerReq' | 'p50' | 'p99' | 'rps') => ({ old: med(res.old.map((x) => x[k])), new: med(res.new.map((x) => x[k])) });
    for (const k of ['cpuUsPerReq', 'p50', 'p99', 'rps'] as const) {
      const v = m(k);
      console.log(`median ${k}: old ${v.old.toFixed(2)}, new ${v.new.toFixed(2)}, new/old ${(v.new / v.old).toFixed(3)}`);
    }
  } finally {
    await sim.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
