/**
 * The Helm chart (deploy/helm/kvroute), rendered with a real `helm template` in each mode, every
 * object validated offline against real vendored schemas (deploy/schemas: Kubernetes v1.34.4
 * OpenAPI, InferencePool v1, Gateway API v1.6.3, Tekton v1) with a strict validator; then the
 * rendered kvroute container arguments are started for real (only listen address and ports
 * moved to loopback/ephemeral) against a fake Kubernetes API server and simulated vLLM pods that
 * publish KV events, and must route and ingest events.
 *
 * Needs `helm` (HELM=path, .tools/bin/helm as .ci/run installs it, or PATH) and python3 with
 * jsonschema + PyYAML; fails loudly without them.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startFleet, type SimFleet } from '../../src/sim/index.js';
import { FakeKubeApi, makePod } from '../helpers/fake-kube-api.js';
import { SIM_MODEL } from '../helpers/sim-router.js';
import { MALLOC_ENV } from '../../src/app/malloc-env.js';

const ROOT = process.cwd();
const CHART = join(ROOT, 'deploy/helm/kvroute');
const VALIDATOR = join(ROOT, 'deploy/schemas/validate.py');

function helmBinary(): string {
  const candidates = [process.env.HELM, join(ROOT, '.tools/bin/helm'), 'helm'].filter((x): x is string => !!x);
  for (const c of candidates) {
    if (c !== 'helm' && !existsSync(c)) continue;
    if (spawnSync(c, ['version', '--short'], { encoding: 'utf8' }).status === 0) return c;
  }
  throw new Error('helm not found: run .ci/run, or GOBIN=$PWD/.tools/bin go install helm.sh/helm/v4/cmd/helm@v4.3.2, or set HELM=/path/to/helm');
}

function render(args: string[]): string {
  const r = spawnSync(helmBinary(), ['template', 'kvroute', CHART, '-n', 'llm', ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `helm template ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

function validate(yamlText: string): { code: number; out: string } {
  const r = spawnSync('python3', [VALIDATOR, '--unvalidated', 'ServiceMonitor,Route'], { input: yamlText, encoding: 'utf8' });
  if (r.error !== undefined || /ModuleNotFoundError/.test(r.stderr)) throw new Error(`python3 with jsonschema and PyYAML is needed: ${r.stderr || r.error?.message}`);
  return { code: r.status ?? 1, out: r.stdout + r.stderr };
}

type Obj = { kind: string; metadata: { name: string }; spec?: Record<string, unknown> };
const objects = (text: string): Obj[] => parseAllDocuments(text).map((d) => d.toJS() as Obj).filter((o) => o !== null);
const kinds = (text: string): string[] => objects(text).map((o) => o.kind).sort();

const MODES: Array<{ name: string; args: string[]; expect: string[] }> = [
  { name: 'gateway (defaults)', args: [], expect: ['ConfigMap', 'Deployment', 'Role', 'RoleBinding', 'Service', 'ServiceAccount'] },
  { name: 'epp behind Istio', args: ['-f', join(CHART, 'examples/values-epp-istio.yaml')], expect: ['HTTPRoute', 'InferencePool', 'ServiceMonitor'] },
  { name: 'epp behind Envoy Gateway + Redis + vLLM', args: ['-f', join(CHART, 'examples/values-epp-envoy-gateway.yaml'), '--set', 'redis.enabled=true', '--set', 'vllm.enabled=true', '--set', 'config=apiVersion: llm-d.ai/v1alpha1'], expect: ['HTTPRoute', 'InferencePool'] },
  { name: 'gateway on OpenShift with vLLM', args: ['-f', join(CHART, 'examples/values-gateway-openshift.yaml'), '--set', 'serviceMonitor.enabled=true'], expect: ['Route', 'ServiceMonitor'] },
];

for (const mode of MODES) {
  test(`chart renders and every object validates: ${mode.name}`, () => {
    const text = render(mode.args);
    const v = validate(text);
    assert.equal(v.code, 0, v.out);
    assert.match(v.out, / 0 invalid/);
    const ks = kinds(text);
    for (const k of mode.expect) assert.ok(ks.includes(k), `${mode.name}: expected a ${k}, got ${ks.join(', ')}`);
    const dep = objects(text).find((o) => o.kind === 'Deployment' && o.metadata.name === 'kvroute-kvroute')!;
    const container = (dep.spec as { template: { spec: { containers: Array<{ args: string[]; env: Array<{ name: string; value?: string }> }> } } }).template.spec.containers[0];
    const args = container.args;
    for (const [name, value] of Object.entries(MALLOC_ENV)) {
      assert.equal(container.env.find((e) => e.name === name)?.value, value, `${mode.name}: the kvroute container sets ${name}=${value} (src/app/malloc-env.ts)`);
    }
    if (mode.name.startsWith('epp')) {
      for (const a of ['--ext-proc', '--ext-proc-port=9002', '--grpc-health-port=9003', '--pool-name=vllm-pool', '--discovery=k8s']) assert.ok(args.includes(a), `${a} in ${args.join(' ')}`);
      const pool = objects(text).find((o) => o.kind === 'InferencePool')!;
      assert.deepEqual((pool.spec as { endpointPickerRef: { name: string; port: { number: number } } }).endpointPickerRef.port.number, 9002);
    } else {
      assert.ok(args.includes('--discovery=k8s') && args.includes('--endpoint-target-ports=8000'), args.join(' '));
    }
  });
}

test('schemas: Tekton and gateway examples validate; the validator rejects broken objects (typo, wrong type, missing schema)', () => {
  const files = ['deploy/tekton/task-cache-hit.yaml', 'deploy/tekton/task-doctor.yaml', 'deploy/tekton/task-discover-endpoints.yaml', 'deploy/tekton/task-restart-decode-pods.yaml', 'deploy/tekton/pipeline-cache-hit.yaml', 'deploy/tekton/pipeline-cache-pod-restart.yaml', 'deploy/tekton/pipelinerun-cache-hit.yaml', 'deploy/tekton/rbac.yaml', 'deploy/helm/kvroute/examples/gateway-istio.yaml', 'deploy/helm/kvroute/examples/gateway-envoy-gateway.yaml'];
  const r = spawnSync('python3', [VALIDATOR, ...files.map((f) => join(ROOT, f))], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /VALID tekton\.dev\/v1 Pipeline kvroute-cache-hit/);
  const gw = render([]);
  assert.equal(validate(gw.replace('replicas: 1', 'replicas: "one"')).code, 1, 'a string replica count is rejected');
  assert.equal(validate(gw.replace('runAsNonRoot: true', 'runAsNonRoot: true\n        runAsNonRooot: true')).code, 1, 'an unknown field is rejected');
  const pool = render(['--set', 'mode=epp']).replace('failureMode: FailClose', 'failureMode: FailSometimes');
  const bad = validate(pool);
  assert.equal(bad.code, 1);
  assert.match(bad.out, /InferencePool.*failureMode/);
  assert.equal(validate('apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n').code, 1, 'an object with no schema is not waved through');
  assert.match(spawnSync(helmBinary(), ['template', 'x', CHART, '--set', 'precise.enabled=true'], { encoding: 'utf8' }).stderr, /precise\.enabled needs precise\.tokenizer/);
});

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

test('the rendered gateway-mode kvroute arguments start kvroute for real: pods from the API server, routing, KV events', async (t) => {
  const port = await freePort('127.0.0.41');
  const events = await freePort('127.0.0.41');
  const text = render(['--set', 'precise.enabled=true', '--set', 'precise.tokenizer=builtin', '--set', `precise.kvEventsPodPort=${events}`, '--set', `pool.targetPorts={${port}}`, '--set', 'preset=llm-d-precise']);
  const dep = objects(text).find((o) => o.kind === 'Deployment' && o.metadata.name === 'kvroute-kvroute')!;
  const rendered = (dep.spec as { template: { spec: { containers: Array<{ args: string[] }> } } }).template.spec.containers[0].args;
  // Only where it listens changes: loopback and ephemeral ports, as tests must.
  const args = rendered.map((a) => (a === '--host=0.0.0.0' ? '--host=127.0.0.1' : a === '--port=8000' ? '--port=0' : a === '--admin-port=9090' ? '--admin-port=0' : a));
  assert.equal(args.filter((a, i) => a !== rendered[i]).length, 3);

  const api = new FakeKubeApi();
  await api.start();
  const dir = await mkdtemp(join(tmpdir(), 'kvroute-kc-'));
  const kubeconfig = join(dir, 'config');
  await writeFile(kubeconfig, `apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster: {server: "${api.url}"}\nusers:\n- name: fake\n  user: {token: fake-token}\ncontexts:\n- name: fake\n  context: {cluster: fake, user: fake}\n`);
  const pods: SimFleet[] = [];
  for (const ip of ['127.0.0.41', '127.0.0.42']) {
    pods.push(await startFleet({ replicas: 1, host: ip, basePort: port, model: SIM_MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, maxModelLen: 4096, kvEvents: { host: ip, basePort: events, replay: false } }));
    api.apply('pods', makePod({ name: `vllm-decode-${ip.split('.')[3]}`, namespace: 'llm', ip, labels: { app: 'vllm-decode' } }));
  }
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), ...args], { env: { ...process.env, KUBECONFIG: kubeconfig, POD_NAMESPACE: 'llm', KUBERNETES_SERVICE_HOST: '' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  t.after(async () => {
    child.kill('SIGTERM');
    await Promise.all(pods.map((p) => p.close()));
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  const t0 = Date.now();
  while (!/kvroute gateway on http:\/\/\S+, admin on http:\/\/\S+/.test(out)) {
    if (Date.now() - t0 > 20000 || child.exitCode !== null) throw new Error(`kvroute did not start with the rendered arguments:\n${args.join(' ')}\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const [, url, admin] = /kvroute gateway on (http:\/\/\S+), admin on (http:\/\/\S+)/.exec(out)!;
  // Both discovered pods scraped healthy (what /readyz waits for in a cluster).
  for (const t2 = Date.now(); !/endpoint_healthy\{endpoint="llm\/vllm-decode-41-rank-0"\} 1[\s\S]*endpoint_healthy\{endpoint="llm\/vllm-decode-42-rank-0"\} 1/.test(await (await fetch(`${admin}/metrics`)).text());) {
    if (Date.now() - t2 > 10000) throw new Error('discovered pods never became healthy');
    await new Promise((r) => setTimeout(r, 100));
  }
  const prompt = 'You are a careful assistant. '.repeat(30) + 'Name a prime number.';
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: SIM_MODEL, messages: [{ role: 'user', content: prompt }], max_tokens: 4 }) });
    assert.equal(res.status, 200, await res.clone().text());
    await res.text();
  }
  let metrics = '';
  const t1 = Date.now();
  while (!/kvroute_kv_event_batches_total\{endpoint="llm\/vllm-decode-4[12]-rank-0"\} [1-9]/.test(metrics)) {
    if (Date.now() - t1 > 10000) throw new Error(`no KV events ingested from the discovered pods:\n${metrics.split('\n').filter((l) => /kv_event|endpoint_healthy/.test(l)).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
    metrics = await (await fetch(`${admin}/metrics`)).text();
  }
  assert.match(metrics, /kvroute_endpoint_healthy\{endpoint="llm\/vllm-decode-41-rank-0"\} 1/);
  assert.match(metrics, /kvroute_endpoint_healthy\{endpoint="llm\/vllm-decode-42-rank-0"\} 1/);
});

test('the rendered EPP-mode kvroute arguments start the ext_proc endpoint picker for real, following the InferencePool', async (t) => {
  const port = await freePort('127.0.0.43');
  const text = render(['--set', 'mode=epp', '--set', `pool.targetPorts={${port}}`]);
  const dep = objects(text).find((o) => o.kind === 'Deployment' && o.metadata.name === 'kvroute-kvroute')!;
  const rendered = (dep.spec as { template: { spec: { containers: Array<{ args: string[] }> } } }).template.spec.containers[0].args;
  const args = rendered.map((a) => (a === '--host=0.0.0.0' ? '--host=127.0.0.1' : a === '--ext-proc-port=9002' ? '--ext-proc-port=0' : a === '--grpc-health-port=9003' ? '--grpc-health-port=0' : a === '--admin-port=9090' ? '--admin-port=0' : a));
  assert.equal(args.filter((a, i) => a !== rendered[i]).length, 4, rendered.join(' '));
  const api = new FakeKubeApi();
  await api.start();
  const pool = objects(text).find((o) => o.kind === 'InferencePool')!;
  api.apply('inferencepools', { ...(pool as unknown as { metadata: { name: string } }), metadata: { name: pool.metadata.name, namespace: 'llm' } } as never);
  const dir = await mkdtemp(join(tmpdir(), 'kvroute-kc-'));
  const kubeconfig = join(dir, 'config');
  await writeFile(kubeconfig, `apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster: {server: "${api.url}"}\nusers:\n- name: fake\n  user: {token: fake-token}\ncontexts:\n- name: fake\n  context: {cluster: fake, user: fake}\n`);
  const pod = await startFleet({ replicas: 1, host: '127.0.0.43', basePort: port, model: SIM_MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, maxModelLen: 4096 });
  api.apply('pods', makePod({ name: 'vllm-decode-43', namespace: 'llm', ip: '127.0.0.43', labels: { app: 'vllm-decode' } }));
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), ...args], { env: { ...process.env, KUBECONFIG: kubeconfig, POD_NAMESPACE: 'llm', KUBERNETES_SERVICE_HOST: '' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  t.after(async () => {
    child.kill('SIGKILL');
    await pod.close();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  const t0 = Date.now();
  while (!/ext_proc on \S+, gRPC health on port \d+, admin on (http:\/\/\S+)/.test(out)) {
    if (Date.now() - t0 > 20000 || child.exitCode !== null) throw new Error(`kvroute --ext-proc did not start with the rendered arguments:\n${args.join(' ')}\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const admin = /admin on (http:\/\/\S+)/.exec(out)![1];
  for (const t1 = Date.now(); !/kvroute_endpoint_healthy\{endpoint="llm\/vllm-decode-43-rank-0"\} 1/.test(await (await fetch(`${admin}/metrics`)).text());) {
    if (Date.now() - t1 > 10000) throw new Error('the InferencePool pod never became a healthy endpoint of the endpoint picker');
    await new Promise((r) => setTimeout(r, 100));
  }
  // The pod leaves the pool: the endpoint picker drops it.
  api.delete('pods', 'llm', 'vllm-decode-43');
  for (const t2 = Date.now(); /kvroute_endpoint_healthy\{endpoint="llm\/vllm-decode-43-rank-0"\}/.test(await (await fetch(`${admin}/metrics`)).text());) {
    if (Date.now() - t2 > 5000) throw new Error('the deleted pod is still an endpoint of the endpoint picker');
    await new Promise((r) => setTimeout(r, 100));
  }
});
