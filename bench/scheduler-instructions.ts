/**
 * The default profile's scheduling cost in instructions (callgrind), without the gateway around
 * it: what `bench/proxy-instructions.ts` shows as the default profile minus round robin, but
 * with nothing else in the window, so a change on the scheduling path shows in isolation.
 *
 *   setup    the default config, `--endpoints` (4) vLLM endpoints, no KV events (approximate
 *            routing: the precise scorer's embedded approximate scorer), the proxy benchmarks'
 *            8 KB chat prompt (the same text every request, as there);
 *   request  schedule() + onFirstToken + onComplete on a fresh request object (keys hashed,
 *            index read, common-prefix window, every scorer, the picker, the pick observers);
 *   method   `--warmup` requests (4,000) uninstrumented, then `--requests` (4,000) counted on
 *            the main thread (`valgrind --tool=callgrind --instr-atstart=no`, switched on and
 *            dumped with callgrind_control); reported: thousand instructions (kIr) per request.
 *            `--baseline DIR` (another build's root) measures that build the same way.
 *
 * Needs valgrind. `npm run build && node dist/bench/scheduler-instructions.js [--baseline DIR]
 * [--endpoints 4] [--requests 4000] [--warmup 4000]`
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const SELF = fileURLToPath(import.meta.url);
const THIS_ROOT = path.resolve(path.dirname(SELF), '..', '..');

/** The child: runs the requests inside valgrind and switches instrumentation on around the window. */
async function child(root: string): Promise<void> {
  const load = async (f: string) => import(pathToFileURL(path.join(root, 'dist/src', f)).href);
  const { createScheduler } = await load('scheduling/scheduler.js');
  const { loadConfig } = await load('config/load-config.js');
  const { ManualClock } = await load('core/clock.js');
  const { seededRng } = await load('core/rng.js');
  const clock = new ManualClock(0);
  const sched = createScheduler(loadConfig(), { clock, rng: seededRng(1) });
  const n = Number(arg('endpoints', '4'));
  const eps = Array.from({ length: n }, (_, i) => ({
    id: `ep-${i}`, address: `127.0.0.1:${8000 + i}`, url: `http://127.0.0.1:${8000 + i}`, role: 'both', engine: 'vllm', index: i,
    labels: {}, models: [], healthy: true, metrics: { waiting: 0, running: 0, kvUsage: 0, updatedAt: 1 },
  }));
  // The chat body of bench/proxy-overhead.ts and proxy-instructions.ts: ~8,100 characters of prompt.
  let text = '';
  for (let i = 0; text.length < 8100; i++) text += `word${i % 997} `;
  const prompt = text.slice(0, 8100);
  let rid = 0;
  const one = async (): Promise<void> => {
    const r = { id: `r${++rid}`, api: 'chat', model: 'bench-model', body: {}, promptText: prompt, maxTokens: 16, stream: false, clientIp: '127.0.0.1', headers: {}, arrivedAt: clock.now(), memo: new Map() };
    const res = await sched.schedule(r, eps);
    sched.onFirstToken(r, res.endpoint);
    sched.onComplete(r, res.endpoint, { ok: true, status: 200 });
    clock.advance(1);
  };
  for (let i = Number(arg('warmup', '4000')); i > 0; i--) await one();
  spawnSync('callgrind_control', ['-i', 'on', String(process.pid)], { stdio: 'ignore' });
  for (let i = Number(arg('requests', '4000')); i > 0; i--) await one();
  spawnSync('callgrind_control', ['-d', String(process.pid)], { stdio: 'ignore' });
}

/** Main-thread kIr per request of the build at `root`. */
function measure(root: string): number {
  const dir = mkdtempSync(path.join(tmpdir(), 'kvroute-sched-instr-'));
  try {
    const out = path.join(dir, 'cg');
    const r = spawnSync('valgrind', ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', '--dump-instr=no', `--callgrind-out-file=${out}`,
      process.execPath, SELF, '--child', root, ...argv.filter((a, i) => a !== '--baseline' && argv[i - 1] !== '--baseline')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`valgrind run failed (${r.status}): ${(r.stderr ?? '').slice(-800)}`);
    const dump = readdirSync(dir).filter((f) => f.startsWith('cg.1-')).sort()[0];
    if (dump === undefined) throw new Error('callgrind wrote no dump of the requests window (is callgrind_control on PATH?)');
    const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(path.join(dir, dump), 'utf8'));
    if (m === null) throw new Error('no instruction total in the callgrind dump');
    return Number(m[1]) / Number(arg('requests', '4000')) / 1000;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (argv[0] === '--child') {
  await child(argv[1]);
} else {
  if (spawnSync('sh', ['-c', 'command -v valgrind && command -v callgrind_control']).status !== 0) throw new Error('valgrind is not installed (Debian: apt-get install -y valgrind)');
  const base = arg('baseline', '');
  const builds: [string, string][] = [['this build', THIS_ROOT]];
  if (base !== '') builds.unshift(['baseline', path.resolve(base)]);
  for (const [name, root] of builds) console.log(`${name.padEnd(10)} ${measure(root).toFixed(1).padStart(7)} kIr per request (main thread, ${arg('endpoints', '4')} endpoints)`);
}
