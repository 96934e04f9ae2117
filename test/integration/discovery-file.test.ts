/**
 * File discovery (llm-d's file-discovery format) with the real gateway and simulated replicas:
 * the file is rewritten in place and replaced by atomic rename (as editors and ConfigMap volumes
 * do); the pool follows within 2 s; a malformed or oversized file keeps the last good set; the
 * `kvroute serve --discovery file:` command line runs the same path.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFleet } from '../../src/sim/index.js';
import { startRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { FileDiscovery, parseDiscoveryFile } from '../../src/discovery/file-discovery.js';
import { SIM_MODEL } from '../helpers/sim-router.js';

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

function yamlFor(entries: Array<{ name: string; port: number; role?: string }>): string {
  return 'endpoints:\n' + entries.map((e) => `  - name: ${e.name}\n    namespace: llm\n    address: 127.0.0.1\n    port: "${e.port}"\n    labels:\n      app: vllm\n${e.role ? `      llm-d.ai/role: ${e.role}\n` : ''}`).join('');
}

test('parseDiscoveryFile: llm-d format in YAML and JSON; clear errors', () => {
  const specs = parseDiscoveryFile(yamlFor([{ name: 'a', port: 8000, role: 'prefill' }]), 'f.yaml');
  assert.deepEqual(specs, [{ id: 'llm/a', url: 'http://127.0.0.1:8000', role: 'prefill', labels: { app: 'vllm', 'llm-d.ai/role': 'prefill' } }]);
  const json = parseDiscoveryFile(JSON.stringify({ endpoints: [{ name: 'b', address: '10.0.0.7', port: 8001 }] }), 'f.json', { port: 5557 });
  assert.deepEqual(json, [{ id: 'b', url: 'http://10.0.0.7:8001', role: 'both', labels: {}, kvEvents: { endpoint: 'tcp://10.0.0.7:5557' } }]);
  assert.throws(() => parseDiscoveryFile('endpoints:\n  - name: x\n    address: 1.2.3.4\n', 'f'), /needs a port/);
  assert.throws(() => parseDiscoveryFile('nodes: []', 'f'), /top-level "endpoints:"/);
  assert.throws(() => parseDiscoveryFile('endpoints: [ {', 'f'), /not valid YAML/);
  assert.throws(() => parseDiscoveryFile(`endpoints: []\n#${'x'.repeat(1024 * 1024)}`, 'f'), /larger than 1 MiB/);
});

test('file discovery: in-place writes and atomic renames move the pool within 2 s; a bad file keeps the last good set', async (t) => {
  const fleet = await startFleet({ replicas: 3, basePort: 0, model: SIM_MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, maxModelLen: 4096 });
  const dir = await mkdtemp(join(tmpdir(), 'kvroute-fd-'));
  const file = join(dir, 'endpoints.yaml');
  const [p0, p1, p2] = fleet.replicas.map((r) => r.port);
  await writeFile(file, yamlFor([{ name: 'a', port: p0 }]));
  const router = await startRouter({ endpoints: [], discovery: new FileDiscovery({ path: file }), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
  t.after(async () => {
    await router.close();
    await fleet.close();
    await rm(dir, { recursive: true, force: true });
  });
  const ids = () => router.pool.all().map((e) => e.id).sort().join();
  assert.equal(ids(), 'llm/a');

  // Atomic rename (write elsewhere, rename over): b and c join.
  await writeFile(join(dir, '.endpoints.yaml.tmp'), yamlFor([{ name: 'a', port: p0 }, { name: 'b', port: p1 }, { name: 'c', port: p2, role: 'decode' }]));
  await rename(join(dir, '.endpoints.yaml.tmp'), file);
  const ms = await waitFor('b and c healthy', () => ids() === 'llm/a,llm/b,llm/c' && router.pool.all().every((e) => e.healthy));
  assert.ok(ms < 2000, `joined in ${ms} ms`);
  assert.equal(router.pool.get('llm/c')!.role, 'decode');

  // A half-written file: nothing changes.
  await writeFile(file, 'endpoints:\n  - name: a\n    address: 127.0');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(ids(), 'llm/a,llm/b,llm/c', 'a malformed file keeps the last good set');

  // In-place write removing a: it stops getting traffic.
  await writeFile(file, yamlFor([{ name: 'b', port: p1 }, { name: 'c', port: p2 }]));
  assert.ok((await waitFor('a removed', () => ids() === 'llm/b,llm/c')) < 2000);
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${router.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: SIM_MODEL, messages: [{ role: 'user', content: `hi ${i}` }], max_tokens: 2 }) });
    assert.equal(res.status, 200);
    await res.text();
    assert.notEqual(router.decisions.toArray().at(-1)!.servedBy, 'llm/a');
  }
  // c's role changed back to both: it is replaced (same id, new object).
  assert.equal(router.pool.get('llm/c')!.role, 'both');
});

test('kvroute serve --discovery file: starts from the file and rejects flags that do not apply', async (t) => {
  const fleet = await startFleet({ replicas: 1, basePort: 0, model: SIM_MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, maxModelLen: 4096 });
  const dir = await mkdtemp(join(tmpdir(), 'kvroute-fd-'));
  const file = join(dir, 'endpoints.yaml');
  await writeFile(file, yamlFor([{ name: 'only', port: fleet.replicas[0].port }]));
  t.after(async () => {
    await fleet.close();
    await rm(dir, { recursive: true, force: true });
  });
  const main = join(process.cwd(), 'dist/src/cli/main.js');
  const bad = spawn(process.execPath, [main, 'serve', '--discovery', `file:${file}`, '--pool-name', 'x', '--port', '0', '--admin-port', '0']);
  let err = '';
  bad.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise((r) => bad.on('exit', r));
  assert.equal(code, 2);
  assert.match(err, /--pool-name applies to --discovery k8s only/);

  const child = spawn(process.execPath, [main, 'serve', '--discovery', `file:${file}`, '--port', '0', '--admin-port', '0', '--log-level', 'info']);
  t.after(() => void child.kill('SIGTERM'));
  let out = '';
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('gateway up with discovery running', () => /kvroute gateway on (http:\/\/\S+)/.test(out) && /endpoint discovery running/.test(out), 15000);
  const url = /kvroute gateway on (http:\/\/\S+),/.exec(out)![1];
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: SIM_MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 2 }) });
  assert.equal(res.status, 200, await res.clone().text());
});
