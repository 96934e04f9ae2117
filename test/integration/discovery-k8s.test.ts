/**
 * Kubernetes discovery against a fake API server speaking the real list/watch protocol, with
 * real simulated vLLM pods (each on its own loopback IP, all on the same port as pods are),
 * real KV events over ZeroMQ and the real gateway: pods added to / removed from the API server
 * start / stop receiving traffic within 2 s, and a removed pod leaves nothing behind (scheduler,
 * approximate index, precise index, event subscription, scraper gauges).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startFleet, type SimFleet } from '../../src/sim/index.js';
import { startRouter, type RunningRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { createKvCache } from '../../src/app/kv-cache.js';
import { K8sDiscovery } from '../../src/discovery/k8s-discovery.js';
import type { KubeConnection } from '../../src/discovery/kube-client.js';
import { FakeKubeApi, makeInferencePool, makePod } from '../helpers/fake-kube-api.js';
import { SIM_MODEL } from '../helpers/sim-router.js';

const NS = 'llm';

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

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function conn(url: string): KubeConnection {
  return { server: url, token: 'fake-token' };
}

/** One "pod": a simulated replica per port on `ip`, publishing KV events on eventsPort (+rank). */
async function startPod(ip: string, port: number, ranks = 1, eventsPort?: number): Promise<SimFleet> {
  return startFleet({
    replicas: ranks,
    host: ip,
    basePort: port,
    model: SIM_MODEL,
    profile: 'llama-3.2-1b',
    timeScale: 0.02,
    maxModelLen: 4096,
    ...(eventsPort !== undefined ? { kvEvents: { host: ip, basePort: eventsPort, replay: false } } : {}),
  });
}

async function chat(router: RunningRouter, text: string): Promise<string> {
  const res = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: SIM_MODEL, messages: [{ role: 'user', content: text }], max_tokens: 4 }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  await res.text();
  return router.decisions.toArray().at(-1)!.servedBy;
}

const PROMPT = 'You are a careful assistant. '.repeat(40) + 'What is the capital of France?';

test('pods added to / removed from the API server start / stop getting traffic within 2 s; a removed pod leaves no index entries, subscription or gauges', async (t) => {
  const api = new FakeKubeApi();
  await api.start();
  const port = await freePort('127.0.0.2');
  const eventsPort = await freePort('127.0.0.2');
  const podA = await startPod('127.0.0.2', port, 1, eventsPort);
  const podB = await startPod('127.0.0.3', port, 1, eventsPort);
  const kv = await createKvCache({ tokenizer: { type: 'builtin' }, events: 'connect' });
  const scheduler = buildScheduler({ preset: 'llm-d-precise', kvCache: kv.services });
  api.apply('pods', makePod({ name: 'vllm-a', namespace: NS, ip: '127.0.0.2', labels: { app: 'vllm' } }));
  api.apply('pods', makePod({ name: 'other', namespace: NS, ip: '127.0.0.9', labels: { app: 'redis' } }));
  const router = await startRouter({
    endpoints: [],
    discovery: new K8sDiscovery({ namespace: NS, selector: { app: 'vllm' }, targetPorts: [port], connection: conn(api.url), kvEvents: { port: eventsPort } }),
    scheduler,
    kvCache: kv,
    port: 0,
    adminPort: 0,
    processMetrics: false,
  });
  t.after(async () => {
    await router.close();
    await Promise.all([podA.close(), podB.close(), api.close()]);
  });
  const idA = `${NS}/vllm-a-rank-0`;
  const idB = `${NS}/vllm-b-rank-0`;
  assert.deepEqual(router.pool.all().map((e) => e.id), [idA], 'only the selected pod is an endpoint');
  const epA = router.pool.get(idA)!;
  assert.equal(epA.url, `http://127.0.0.2:${port}`);
  assert.deepEqual(epA.kvEvents, { endpoint: `tcp://127.0.0.2:${eventsPort}` }, 'KV events follow discovery: tcp://<pod-ip>:5557+rank');
  await waitFor('pod A healthy', () => epA.healthy);
  // Subscribed once its first scrape round is over (its model is known then); /health may have
  // made it healthy a moment earlier.
  await waitFor('pod A subscribed for KV events', () => (kv.ingestor?.endpointIds() ?? []).includes(idA));
  assert.deepEqual(kv.ingestor?.endpointIds(), [idA]);

  for (let i = 0; i < 3; i++) assert.equal(await chat(router, PROMPT), idA);
  await waitFor('precise index holds pod A blocks', () => (kv.indexStats().endpoints[idA] ?? 0) > 0);
  const precise = [...(scheduler as unknown as { plugins: Map<string, { type: string; approximate?: { index: { blocksOf(e: unknown): number } } }> }).plugins.values()].find((p) => p.type === 'precise-prefix-cache-scorer')!;
  assert.ok(precise.approximate!.index.blocksOf(epA) > 0, 'approximate index holds pod A blocks');
  const metricsBefore = await (await fetch(`${router.adminUrl}/metrics`)).text();
  assert.match(metricsBefore, new RegExp(`kvroute_endpoint_healthy\\{endpoint="${idA}"\\} 1`));

  // Pod B appears in the API server: it gets traffic within 2 s.
  api.apply('pods', makePod({ name: 'vllm-b', namespace: NS, ip: '127.0.0.3', labels: { app: 'vllm' } }));
  const joinMs = await waitFor('pod B healthy in the pool', () => router.pool.get(idB)?.healthy === true);
  assert.ok(joinMs < 2000, `pod B joined in ${joinMs} ms`);
  await waitFor('pod B subscribed for KV events', () => (kv.ingestor?.endpointIds() ?? []).includes(idB));
  assert.deepEqual(kv.ingestor?.endpointIds().sort(), [idA, idB]);

  // Pod A is deleted: within 2 s it is out of the pool with every trace of it gone.
  api.delete('pods', NS, 'vllm-a');
  const leaveMs = await waitFor('pod A removed', () => router.pool.get(idA) === undefined);
  assert.ok(leaveMs < 2000, `pod A left in ${leaveMs} ms`);
  await waitFor('precise entries of A gone', () => (kv.indexStats().endpoints[idA] ?? 0) === 0);
  assert.equal(precise.approximate!.index.blocksOf(epA), 0, 'approximate index forgot pod A');
  assert.deepEqual(kv.ingestor?.endpointIds(), [idB], 'pod A\'s KV-event subscription closed');
  const metricsAfter = await (await fetch(`${router.adminUrl}/metrics`)).text();
  assert.doesNotMatch(metricsAfter, new RegExp(`kvroute_endpoint_healthy\\{endpoint="${idA}"\\}`), 'scraper stopped: no health gauge for A');
  for (let i = 0; i < 3; i++) assert.equal(await chat(router, PROMPT), idB, 'all traffic goes to B');
});

test('Ready flips and deletionTimestamp take a pod out and back; watch disconnects and 410 Expired recover', async (t) => {
  const api = new FakeKubeApi();
  await api.start();
  const port = await freePort('127.0.0.4');
  const podA = await startPod('127.0.0.4', port);
  const podB = await startPod('127.0.0.5', port);
  const podC = await startPod('127.0.0.6', port);
  api.apply('pods', makePod({ name: 'a', namespace: NS, ip: '127.0.0.4', labels: { app: 'vllm' } }));
  const router = await startRouter({
    endpoints: [],
    discovery: new K8sDiscovery({ namespace: NS, selector: { app: 'vllm' }, targetPorts: [port], connection: conn(api.url), reconnectMs: 100 }),
    scheduler: buildScheduler({ preset: 'default' }),
    port: 0,
    adminPort: 0,
    processMetrics: false,
  });
  t.after(async () => {
    await router.close();
    await Promise.all([podA.close(), podB.close(), podC.close(), api.close()]);
  });
  const ids = () => router.pool.all().map((e) => e.id).sort();
  assert.deepEqual(ids(), [`${NS}/a-rank-0`]);

  // Not Ready: out; Ready again: back.
  api.modify('pods', NS, 'a', (p) => void ((p.status as { conditions: Array<{ status: string }> }).conditions[0].status = 'False'));
  assert.ok((await waitFor('not-ready pod removed', () => ids().length === 0)) < 2000);
  api.modify('pods', NS, 'a', (p) => void ((p.status as { conditions: Array<{ status: string }> }).conditions[0].status = 'True'));
  assert.ok((await waitFor('ready pod back', () => router.pool.get(`${NS}/a-rank-0`)?.healthy === true)) < 2000);
  assert.equal(await chat(router, 'hello'), `${NS}/a-rank-0`);

  // A label change out of the selector: the watch sends DELETED.
  api.apply('pods', makePod({ name: 'b', namespace: NS, ip: '127.0.0.5', labels: { app: 'vllm' } }));
  await waitFor('b joined', () => ids().length === 2);
  api.modify('pods', NS, 'b', (p) => void (p.metadata.labels = { app: 'other' }));
  await waitFor('b left after relabel', () => ids().length === 1);

  // Being deleted (deletionTimestamp set, still present): out at once.
  api.modify('pods', NS, 'a', (p) => void (p.metadata.deletionTimestamp = new Date().toISOString()));
  await waitFor('terminating pod removed', () => ids().length === 0);
  api.delete('pods', NS, 'a');

  // Disconnect, a change, compaction: the client resumes from an expired resourceVersion, gets
  // an ERROR event with Status 410 Expired, and relists.
  const listsBefore = api.count('list-pods');
  api.closeWatches();
  api.apply('pods', makePod({ name: 'c', namespace: NS, ip: '127.0.0.6', labels: { app: 'vllm' } }));
  api.compact();
  await waitFor('c joined after 410 relist', () => router.pool.get(`${NS}/c-rank-0`)?.healthy === true);
  await waitFor('relisted', () => api.count('list-pods') > listsBefore);

  // The same with an HTTP 410 answer to the watch request.
  api.expiredAs = 'http';
  const lists2 = api.count('list-pods');
  api.closeWatches();
  api.delete('pods', NS, 'c');
  api.compact();
  await waitFor('c removed after HTTP 410 relist', () => ids().length === 0);
  assert.ok(api.count('list-pods') > lists2, 'an HTTP 410 made the client relist');

  // API server down (503s) for a while: the watch retries with backoff and recovers.
  api.setDown(true);
  await new Promise((r) => setTimeout(r, 300));
  api.apply('pods', makePod({ name: 'b2', namespace: NS, ip: '127.0.0.5', labels: { app: 'vllm' } }));
  assert.equal(ids().length, 0, 'nothing seen while the API server is down');
  api.setDown(false);
  await waitFor('b2 joined after the API server came back', () => router.pool.get(`${NS}/b2-rank-0`)?.healthy === true);
  assert.equal(await chat(router, 'hello again'), `${NS}/b2-rank-0`);
});

test('InferencePool: each target port is its own endpoint <pod>-rank-<i>; llm-d.ai/active-ports limits them; a pool change re-watches; the role label sets the role', async (t) => {
  const api = new FakeKubeApi();
  await api.start();
  const port = await freePort('127.0.0.7');
  const pod = await startPod('127.0.0.7', port, 2);
  api.apply('inferencepools', makeInferencePool('vllm-pool', NS, { app: 'vllm-dp' }, [port, port + 1]));
  api.apply('pods', makePod({ name: 'dp', namespace: NS, ip: '127.0.0.7', labels: { app: 'vllm-dp', 'llm-d.ai/role': 'decode' } }));
  const router = await startRouter({
    endpoints: [],
    discovery: new K8sDiscovery({ namespace: NS, poolName: 'vllm-pool', connection: conn(api.url) }),
    scheduler: buildScheduler({ preset: 'default' }),
    port: 0,
    adminPort: 0,
    processMetrics: false,
  });
  t.after(async () => {
    await router.close();
    await Promise.all([pod.close(), api.close()]);
  });
  const ids = () => router.pool.all().map((e) => e.id).sort();
  assert.deepEqual(ids(), [`${NS}/dp-rank-0`, `${NS}/dp-rank-1`]);
  assert.equal(router.pool.get(`${NS}/dp-rank-1`)!.url, `http://127.0.0.7:${port + 1}`);
  assert.equal(router.pool.get(`${NS}/dp-rank-0`)!.role, 'decode');
  await waitFor('both ranks healthy', () => router.pool.all().every((e) => e.healthy));

  api.modify('pods', NS, 'dp', (p) => void (p.metadata.annotations = { 'llm-d.ai/active-ports': String(port + 1) }));
  await waitFor('only the active port stays', () => ids().join() === `${NS}/dp-rank-1`);
  for (let i = 0; i < 3; i++) assert.equal(await chat(router, `q${i}`), `${NS}/dp-rank-1`);

  api.modify('pods', NS, 'dp', (p) => void (p.metadata.annotations = {}));
  api.apply('inferencepools', makeInferencePool('vllm-pool', NS, { app: 'vllm-dp' }, [port]));
  await waitFor('pool narrowed to one port', () => ids().join() === `${NS}/dp-rank-0`);
});

test('pool discovery fails loudly when the InferencePool does not exist', async (t) => {
  const api = new FakeKubeApi();
  await api.start();
  t.after(() => api.close());
  const d = new K8sDiscovery({ namespace: NS, poolName: 'missing', connection: conn(api.url) });
  await assert.rejects(d.start(() => undefined), /InferencePool llm\/missing not found/);
  const bad = new K8sDiscovery({ namespace: NS, selector: { app: 'x' }, targetPorts: [8000], connection: { server: api.url, token: 'wrong' } });
  await assert.rejects(bad.start(() => undefined), /answered 401.*RBAC/);
});
