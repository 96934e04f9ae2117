/**
 * Runs the commands the README and docs show, so they cannot rot:
 *
 *   npm run build && node dist/bench/check-doc-commands.js          # quick: bench runs capped at 40 requests
 *   node dist/bench/check-doc-commands.js --all                      # as written, benchmarks included (long)
 *
 * 1. Every `kvroute` command in a shell block must use an existing subcommand and only flags its
 *    `--help` lists (bench/doc-commands.ts).
 * 2. Commands that can run offline are run, in a scratch folder, and must exit 0: the demo, the
 *    virtual benches (quick mode appends `--requests 40`), and the README's "real fleet" recipe
 *    against a simulated fleet: `kvroute sim`, then the README's `serve --config
 *    examples/default.yaml` with the simulated endpoints and free ports, its `curl` (must answer
 *    200), and every `doctor --router-admin http://127.0.0.1:9090` command (must exit 0: no FAIL).
 * 3. Everything else (a real vLLM, hosts 10.0.0.x, your own files, a scratch Redis) is listed with
 *    the reason it was not run; its flags were still checked in step 1.
 * Exit status 1 when anything failed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkFlags, docCommands, type DocCommand } from './doc-commands.js';
import { freeLoopbackPort as freePort } from '../src/bench/live-peers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const ALL = process.argv.includes('--all');
const TIMEOUT_MS = ALL ? 1_800_000 : 300_000;

type Plan = { kind: 'run'; shell: string; cwd: string } | { kind: 'fleet' } | { kind: 'skip'; reason: string };

function plan(c: DocCommand, scratch: string): Plan {
  const t = c.text;
  const node = `"${process.execPath}" "${CLI}"`;
  if (/^npm (ci|test)\b/.test(t) || t.startsWith('npm ci &&')) return { kind: 'skip', reason: 'what CI runs (.ci/run)' };
  if (/^vllm /.test(t)) return { kind: 'skip', reason: 'needs a real vLLM' };
  if (/serve --endpoints 10\.0\.0\.11:8000,10\.0\.0\.12:8000,10\.0\.0\.13:8000 --config examples\/default\.yaml/.test(t)) return { kind: 'fleet' };
  if (/^curl .*localhost:8000/.test(t) || (/doctor --router-admin http:\/\/127\.0\.0\.1:9090/.test(t) && !/10\.0\.0\./.test(t))) return { kind: 'fleet' };
  if (/10\.0\.0\.|<dir>|my-profile\.yaml|--redis /.test(t)) return { kind: 'skip', reason: 'needs a real fleet, your files or a scratch Redis (flags checked)' };
  if (/npx tsc|dist\/bench\/|npm run bench:/.test(t)) {
    if (!ALL) return { kind: 'skip', reason: 'a benchmark (run with --all)' };
    return { kind: 'run', shell: t.replace(/\.out\//g, join(scratch, '.out') + '/').replace(/--outDir \.out/, `--outDir ${join(scratch, '.out')}`).replace(/node dist\//g, `"${process.execPath}" ${ROOT}/dist/`), cwd: ROOT };
  }
  if (/^npm run demo\b/.test(t)) return { kind: 'run', shell: t, cwd: ROOT };
  if (/^(npx kvroute|kvroute|node dist\/src\/cli\/main\.js) bench\b.*--engine live/.test(t) && !ALL) return { kind: 'skip', reason: 'a live benchmark: real time, real peers (run with --all)' };
  if (/^(npx kvroute|kvroute|node dist\/src\/cli\/main\.js) (demo|bench)\b/.test(t)) {
    let shell = t.replace(/^(npx kvroute|kvroute|node dist\/src\/cli\/main\.js)/, node);
    if (!ALL && /\bbench\b/.test(shell) && !/--requests/.test(shell)) shell = shell.replace(/\bbench\b/, 'bench --requests 40');
    // The Azure trace's default folder is relative to the repository (../shared/traces).
    return { kind: 'run', shell, cwd: /--workload azure\b/.test(t) ? ROOT : scratch };
  }
  return { kind: 'skip', reason: 'not an offline command' };
}


/** Starts a long-running command; resolves with its first stdout/stderr text matching `ready`. */
function startUntil(args: string[], ready: RegExp, cwd: string): Promise<{ child: ChildProcess; out: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => rej(new Error(`not ready after 20 s: ${args.join(' ')}\n${out}`)), 20_000);
    const on = (b: Buffer) => {
      out += b.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        res({ child, out });
      }
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.once('exit', (code) => rej(new Error(`exited (${code}): ${args.join(' ')}\n${out}`)));
  });
}

function sh(shell: string, cwd: string): { ok: boolean; out: string } {
  const r = spawnSync('bash', ['-c', shell], { cwd, encoding: 'utf8', timeout: TIMEOUT_MS, env: { ...process.env, KVROUTE_LOG_LEVEL: 'warn' } });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.slice(-2_000) };
}

/** The README's real-fleet recipe against a simulated fleet. */
async function realFleet(cmds: DocCommand[], scratch: string, report: (c: DocCommand, ok: boolean, how: string) => void): Promise<void> {
  const serveCmd = cmds.find((c) => / serve /.test(c.text));
  const others = cmds.filter((c) => c !== serveCmd);
  if (serveCmd === undefined) {
    for (const c of others) report(c, false, 'the README serve recipe it depends on was not found');
    return;
  }
  const [simPort, port, adminPort] = [await freePort(), await freePort(), await freePort()];
  let sim: ChildProcess | undefined;
  let router: ChildProcess | undefined;
  try {
    const s = await startUntil([CLI, 'sim', '--replicas', '3', '--port', String(simPort), '--time-scale', '0.1'], /127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+\n/, scratch);
    sim = s.child;
    const list = /(127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+)\n/.exec(s.out)![1];
    const args = serveCmd.text
      .replace(/^(npx kvroute|kvroute)\s+/, '')
      .replace(/10\.0\.0\.11:8000,10\.0\.0\.12:8000,10\.0\.0\.13:8000/, list)
      .replace(/--port 8000/, `--port ${port}`)
      .replace(/--admin-port 9090/, `--admin-port ${adminPort}`)
      .split(' ');
    const r = await startUntil([CLI, ...args], /kvroute gateway on/, ROOT);
    router = r.child;
    report(serveCmd, true, `ran against a simulated fleet (${list})`);
    for (const c of others) {
      const shell = c.text
        .replace(/localhost:8000/g, `127.0.0.1:${port}`)
        .replace(/http:\/\/127\.0\.0\.1:9090/g, `http://127.0.0.1:${adminPort}`)
        .replace(/^(npx kvroute|kvroute)/, `"${process.execPath}" "${CLI}"`)
        // The status line is what is checked: curl prints it with -i (a documented `curl -s` has none).
        .replace(/^curl (?!.*\s-i\b)/, 'curl -i ');
      const res = sh(shell, scratch);
      const ok = res.ok && (!c.text.startsWith('curl') || /^HTTP\/1\.1 200/m.test(res.out));
      report(c, ok, ok ? 'ran against the recipe\'s router' : `failed:\n${res.out}`);
    }
  } catch (err) {
    for (const c of [serveCmd, ...others]) report(c, false, (err as Error).message);
  } finally {
    router?.kill('SIGTERM');
    sim?.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const cmds = docCommands(ROOT);
  const scratch = mkdtempSync(join(tmpdir(), 'kvroute-doc-commands-'));
  for (const d of ['examples', 'node_modules']) symlinkSync(join(ROOT, d), join(scratch, d));
  let failed = 0;
  const report = (c: DocCommand, ok: boolean, how: string) => {
    if (!ok) failed++;
    process.stdout.write(`${ok ? '[OK]  ' : '[FAIL]'} ${c.file}:${c.line}: ${c.text}\n        ${how.replace(/\n/g, '\n        ')}\n`);
  };
  const cache = new Map<string, Set<string>>();
  for (const c of cmds) for (const p of checkFlags(c, CLI, cache)) {
    failed++;
    process.stdout.write(`[FAIL] ${p}\n`);
  }
  const fleet: DocCommand[] = [];
  for (const c of cmds) {
    const p = plan(c, scratch);
    if (p.kind === 'fleet') fleet.push(c);
    else if (p.kind === 'skip') process.stdout.write(`[--]   ${c.file}:${c.line}: ${c.text}\n        not run: ${p.reason}\n`);
    else {
      const t0 = Date.now();
      const r = sh(p.shell, p.cwd);
      report(c, r.ok, r.ok ? `ran in ${((Date.now() - t0) / 1000).toFixed(1)} s` : `exit != 0:\n${r.out}`);
    }
  }
  await realFleet(fleet, scratch, report);
  rmSync(scratch, { recursive: true, force: true });
  process.stdout.write(`${cmds.length} documented commands; ${failed} failure(s)${ALL ? '' : ' (quick mode: bench runs capped at 40 requests, benchmarks not run; --all runs everything as written)'}\n`);
  process.exitCode = failed > 0 ? 1 : 0;
}

await main();
