/**
 * The Tekton Tasks' own scripts (deploy/tekton), run with bash against simulated vLLM pods:
 * `$(params.*)` and `$(results.*.path)` are substituted as Tekton does and `kvroute` is this
 * build. The doctor step passes on a good fleet and fails the run on one started without
 * prefix caching; the cache-hit step runs the seeds' test and writes its three results.
 * (Schema validation of the same files is in deploy-chart.test.ts.)
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startFleet } from '../../src/sim/index.js';
import { startRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { SIM_MODEL } from '../helpers/sim-router.js';

interface TaskDoc { spec: { params?: Array<{ name: string; default?: string }>; results?: Array<{ name: string }>; steps: Array<{ name: string; script: string }> } }

const ROOT = process.cwd();

/** Runs a Task's single step script; returns exit code, output and result files' contents. */
async function runTask(file: string, params: Record<string, string>, binDir: string): Promise<{ code: number; out: string; results: Record<string, string> }> {
  const doc = parseYaml(await readFile(join(ROOT, 'deploy/tekton', file), 'utf8')) as TaskDoc;
  const dir = await mkdtemp(join(tmpdir(), 'kvroute-tekton-'));
  try {
    const values: Record<string, string> = {};
    for (const p of doc.spec.params ?? []) if (p.default !== undefined) values[p.name] = p.default;
    Object.assign(values, params);
    const results: Record<string, string> = {};
    let script = doc.spec.steps[0].script.replace(/\$\(params\.([a-z0-9-]+)\)/g, (_m, n: string) => {
      if (values[n] === undefined) throw new Error(`${file}: param ${n} has no value`);
      return values[n];
    });
    script = script.replace(/\$\(results\.([a-z0-9-]+)\.path\)/g, (_m, n: string) => (results[n] = join(dir, `result-${n}`)));
    assert.doesNotMatch(script, /\$\((params|results|workspaces)\./, 'every Tekton variable substituted');
    const child = spawn('bash', ['-c', script], { env: { ...process.env, PATH: `${binDir}:${process.env.PATH ?? ''}` } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? 1)));
    const got: Record<string, string> = {};
    for (const [n, p] of Object.entries(results)) got[n] = await readFile(p, 'utf8').catch(() => '');
    return { code, out, results: got };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('Tekton doctor and cache-hit steps run against simulated pods; doctor fails a fleet without prefix caching', async (t) => {
  const binDir = await mkdtemp(join(tmpdir(), 'kvroute-bin-'));
  await writeFile(join(binDir, 'kvroute'), `#!/bin/sh\nexec "${process.execPath}" "${resolve(ROOT, 'dist/src/cli/main.js')}" "$@"\n`);
  await chmod(join(binDir, 'kvroute'), 0o755);
  const good = await startFleet({ replicas: 2, basePort: 0, model: SIM_MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, maxModelLen: 4096 });
  const bad = await startFleet({ replicas: 2, basePort: 0, model: SIM_MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, maxModelLen: 4096, enablePrefixCaching: false });
  t.after(async () => {
    await Promise.all([good.close(), bad.close()]);
    await rm(binDir, { recursive: true, force: true });
  });
  const eps = (f: typeof good) => f.replicas.map((r) => `127.0.0.1:${r.port}`).join(',');

  const ok = await runTask('task-doctor.yaml', { endpoints: eps(good) }, binDir);
  assert.equal(ok.code, 0, ok.out);
  const fail = await runTask('task-doctor.yaml', { endpoints: eps(bad) }, binDir);
  assert.notEqual(fail.code, 0, `doctor must fail the run on a fleet without prefix caching:\n${fail.out}`);
  assert.match(fail.out, /prefix/i);

  const run = await runTask('task-cache-hit.yaml', { endpoints: eps(good), requests: '12', model: SIM_MODEL, 'min-hit-rate': '0.5' }, binDir);
  assert.equal(run.code, 0, run.out);
  assert.match(run.out, /aggregate delta hit rate: \d+\.\d%/);
  assert.match(run.out, /overall pod hit rate: +\d+\.\d%/);
  assert.match(run.out, /stickiness verdict: +\S+/);
  const rate = Number(run.results['aggregate-delta-hit-rate']);
  assert.ok(rate >= 0.5 && rate <= 1, `aggregate delta hit rate result ${run.results['aggregate-delta-hit-rate']}`);
  assert.ok(Number(run.results['overall-pod-hit-rate']) > 0);
  assert.ok(run.results['stickiness-verdict'].length > 0);

  // Through the deployed gateway (gateway-url): every request of the step reaches that gateway.
  const gw = await startRouter({ endpoints: good.replicas.map((r) => ({ url: `http://127.0.0.1:${r.port}` })), scheduler: buildScheduler(), port: 0, adminPort: 0, processMetrics: false });
  t.after(() => gw.close());
  const before = gw.decisions.toArray().length;
  const via = await runTask('task-cache-hit.yaml', { endpoints: eps(good), 'gateway-url': gw.url, requests: '12', model: SIM_MODEL, 'min-hit-rate': '0.5' }, binDir);
  assert.equal(via.code, 0, via.out);
  assert.ok(gw.decisions.toArray().length - before >= 12, `the step's requests went through the gateway (${gw.decisions.toArray().length - before} decisions)`);
  assert.ok(Number(via.results['aggregate-delta-hit-rate']) >= 0.5, via.out);

  // The threshold is enforced: an impossible minimum fails the step.
  const strict = await runTask('task-cache-hit.yaml', { endpoints: eps(good), requests: '6', model: SIM_MODEL, 'min-hit-rate': '1.01' }, binDir);
  assert.notEqual(strict.code, 0);
  assert.match(strict.out, /FAIL: aggregate delta hit rate below/);
});
