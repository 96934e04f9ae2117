/**
 * `kvroute doctor` against simulated fleets broken on purpose, one fault at a time: prefix
 * caching off, block size mismatch, KV events missing, pod-id mismatch (events on a topic that
 * names another address), hot-spotting, routing that ignores the prefix, and requests bypassing
 * the router. A healthy fleet passes. Real HTTP servers, real ZeroMQ sockets, the real event
 * ingestor and block index.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startFleet, type SimFleet, type SimFleetOptions } from '../../src/sim/index.js';
import { startRouter, type RunningRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { loadConfig } from '../../src/config/load-config.js';
import { createScheduler } from '../../src/scheduling/scheduler.js';
import { topicDocument } from '../../src/demo/demo-workload.js';
import { EventIngestor } from '../../src/events/event-ingestor.js';
import { KvIndexer } from '../../src/kv-index/kv-indexer.js';
import { MemoryBlockIndex } from '../../src/kv-index/memory-index.js';
import { runDoctor, runChecks, formatDoctorReport, type CheckId, type DoctorReport, type FindingLevel } from '../../src/doctor/index.js';
import { sampleEndpoint } from '../../src/doctor/collect.js';
import type { Scheduler } from '../../src/scheduling/types.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

const sim = (o: SimFleetOptions = {}) =>
  startFleet({ replicas: 2, basePort: 0, model: MODEL, profile: 'llama-3.2-1b', timeScale: 0.02, seed: 21, maxModelLen: 4096, enablePromptTokensDetails: true, ...o });
const addr = (f: SimFleet, i: number) => f.replicas[i].url.replace('http://', '');
const urls = (f: SimFleet) => f.replicas.map((r) => r.url);

function routerFor(fleet: SimFleet, scheduler: Scheduler, extra: { blockSize?: number; kvEventsExpected?: boolean } = {}): Promise<RunningRouter> {
  return startRouter({ endpoints: fleet.replicas.map((r) => ({ url: r.url })), scheduler, port: 0, adminPort: 0, processMetrics: false, ...extra });
}

async function send(baseUrl: string, n: number, prompt: (i: number) => string): Promise<string[]> {
  const served: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await request(`${baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: prompt(i), max_tokens: 1 }),
    });
    await res.body.text();
    assert.equal(res.statusCode, 200);
    served.push(String(res.headers['x-kvroute-endpoint'] ?? res.headers['x-kvroute-sim-replica']));
  }
  return served;
}

const doc = (topic: string) => topicDocument(topic, 300);
const of = (r: DoctorReport, check: CheckId, level?: FindingLevel) => r.findings.filter((f) => f.check === check && (level === undefined || f.level === level));

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, tries = 100): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`gave up waiting for ${what}`);
}

test('a healthy fleet behind the router passes, probes included', async () => {
  const fleet = await sim({ replicas: 3 });
  const router = await routerFor(fleet, buildScheduler({ preset: 'default' }));
  try {
    await send(router.url, 6, (i) => `${doc(`healthy topic ${i % 3}`)} question ${i}`);
    const r = await runDoctor({ routerAdmin: router.adminUrl, probe: true });
    const bad = r.findings.filter((f) => f.level === 'fail' || f.level === 'warn');
    assert.deepEqual(bad, [], formatDoctorReport(r));
    assert.equal(r.ok, true);
    assert.equal(r.endpoints.length, 3, 'endpoints taken from the router');
    assert.equal(of(r, 'prefix-caching', 'ok').length, 3);
    assert.equal(of(r, 'probe-hit', 'ok').length, 4, 'each endpoint and the router');
    assert.equal(of(r, 'routing-locality', 'ok').length, 1);
    assert.equal(of(r, 'router-traffic', 'ok').length, 1);
    assert.equal(of(r, 'block-size', 'ok').length, 1);
    assert.equal(of(r, 'load-concentration').length, 1);
  } finally {
    await router.close();
    await fleet.close();
  }
});

test('prefix caching off: named per endpoint (config label, counters that never move, probe), CLI exits 1', async () => {
  const fleet = await sim({ enablePrefixCaching: false });
  try {
    await send(fleet.replicas[0].url, 2, () => doc('no cache'));
    const r = await runDoctor({ endpoints: urls(fleet).map((u) => u.replace('http://', '')), probe: true });
    assert.equal(r.ok, false);
    const off = of(r, 'prefix-caching', 'fail');
    assert.deepEqual(off.map((f) => f.endpoint).sort(), [addr(fleet, 0), addr(fleet, 1)].sort());
    assert.match(off[0].message, /prefix caching is OFF/);
    assert.match(off[0].fix, /enable-prefix-caching/);
    assert.equal(of(r, 'probe-hit', 'fail').length, 2, 'the repeated prompt never hits');

    // An engine without the config label: the counters check names it from the counters alone.
    const s = await sampleEndpoint(fleet.replicas[0].url, 2000);
    delete s.cacheConfig;
    const f = runChecks({ after: [s], router: null, probes: [], directProbes: new Map() });
    const counters = f.filter((x) => x.check === 'prefix-counters');
    assert.equal(counters.length, 1);
    assert.equal(counters[0].level, 'fail');
    assert.match(counters[0].message, /did not move/);

    // The CLI prints JSON and exits non-zero.
    const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
    const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(process.execPath, [main, 'doctor', '--endpoints', urls(fleet).join(','), '--json'], { timeout: 20_000 }, (err, stdout) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
      );
    });
    assert.equal(out.code, 1);
    const j = JSON.parse(out.stdout) as DoctorReport;
    assert.equal(j.ok, false);
    assert.ok(j.findings.some((x) => x.check === 'prefix-caching' && x.level === 'fail'));
  } finally {
    await fleet.close();
  }
});

test('block size: router and engines disagree, and engines disagree among themselves', async () => {
  const big = await sim({ blockSize: 32 });
  const std = await sim({ replicas: 1 });
  const router = await routerFor(big, buildScheduler({ preset: 'default' }), { blockSize: 16 });
  try {
    const viaRouter = await runDoctor({ routerAdmin: router.adminUrl });
    const f = of(viaRouter, 'block-size', 'fail');
    assert.equal(f.length, 1, formatDoctorReport(viaRouter));
    assert.match(f[0].message, /16 tokens but the engines use 32/);
    const viaFlag = await runDoctor({ endpoints: urls(big), blockSize: 16 });
    assert.equal(of(viaFlag, 'block-size', 'fail').length, 1);
    assert.equal((await runDoctor({ endpoints: urls(big), blockSize: 32 })).ok, true);
    const mixed = await runDoctor({ endpoints: [...urls(big), ...urls(std)] });
    assert.match(of(mixed, 'block-size', 'fail')[0]?.message ?? '', /engines disagree/);
  } finally {
    await router.close();
    await big.close();
    await std.close();
  }
});

test('KV events: precise routing without ingestion, and a subscriber that receives nothing, are failures; flowing events pass', async () => {
  // Pods publish nothing here.
  const quiet = await sim();
  const precise = () => buildScheduler({ preset: 'llm-d-precise' });
  // Configured for precise routing (as `serve` does when it sets up event ingestion), but no ingestion runs.
  const r1 = await routerFor(quiet, precise(), { kvEventsExpected: true });
  const indexer = new KvIndexer({ index: new MemoryBlockIndex() });
  const silent = new EventIngestor({ sink: indexer, mode: 'connect', replayOnJoin: false });
  // A publishing fleet whose events reach the router.
  const loud = await sim({ kvEvents: {} });
  const r2 = await routerFor(loud, precise(), { kvEventsExpected: true });
  const index2 = new MemoryBlockIndex();
  const flowing = new EventIngestor({ sink: new KvIndexer({ index: index2 }), mode: 'connect' });
  try {
    await send(r1.url, 2, (i) => doc(`events ${i}`));
    let r = await runDoctor({ routerAdmin: r1.adminUrl });
    let f = of(r, 'kv-events', 'fail');
    assert.equal(f.length, 1);
    assert.match(f[0].message, /no KV-event ingestion/);

    // Attach a subscriber pointed at ports where nothing publishes: events never arrive.
    for (const ep of r1.pool.all()) silent.add({ id: ep.id, address: ep.address, events: 'tcp://127.0.0.1:9' });
    r1.metrics.attachEventStats(() => silent.stats());
    r = await runDoctor({ routerAdmin: r1.adminUrl });
    f = of(r, 'kv-events', 'fail');
    const served = new Set(r.router!.endpoints.filter((e) => e.routed > 0).map((e) => e.id));
    assert.deepEqual(new Set(f.map((x) => x.endpoint)), served);
    assert.match(f[0].message, /no KV events received/);
    assert.match(f[0].fix, /--kv-events-config/);

    // Events flowing: kv-events and pod-id pass.
    for (const [i, ep] of r2.pool.all().entries()) flowing.add({ id: ep.id, address: ep.address, events: loud.kvEvents[i].endpoint, replay: loud.kvEvents[i].replayEndpoint });
    r2.metrics.attachEventStats(() => flowing.stats());
    r2.metrics.attachIndexStats(() => index2.stats());
    await waitFor(async () => {
      for (const rep of loud.replicas) await send(rep.url, 1, () => `${Math.random()} ${doc('flowing')}`);
      const st = flowing.stats();
      return r2.pool.all().every((ep) => (st.endpoints[ep.id]?.batches ?? 0) > 0);
    }, 'events from every pod');
    r = await runDoctor({ routerAdmin: r2.adminUrl });
    assert.equal(of(r, 'kv-events', 'fail').length, 0, formatDoctorReport(r));
    assert.equal(of(r, 'kv-events', 'ok').length, 2);
    assert.equal(of(r, 'pod-id', 'ok').length, 1);
  } finally {
    await silent.close();
    await flowing.close();
    await r1.close();
    await r2.close();
    await quiet.close();
    await loud.close();
  }
});

test('pod-id mismatch: events arrive on a topic naming another address', async () => {
  const indexer = new KvIndexer({ index: new MemoryBlockIndex() });
  const ingestor = new EventIngestor({ sink: indexer, mode: 'bind', bindAddress: 'tcp://127.0.0.1:*' });
  await ingestor.start();
  const fleet = await sim({ kvEvents: { connect: ingestor.boundEndpoint!, replay: false, topic: (r) => `kv@10.77.0.${r.index + 1}:8000@${r.model}` } });
  const router = await routerFor(fleet, buildScheduler({ preset: 'llm-d-precise' }), { kvEventsExpected: true });
  try {
    for (const ep of router.pool.all()) ingestor.add({ id: ep.id, address: ep.address });
    router.metrics.attachEventStats(() => ingestor.stats());
    await waitFor(async () => {
      await send(router.url, 1, (i) => doc(`podid ${i}`) + Math.random());
      return Object.keys(ingestor.stats().unknownTopics).length > 0;
    }, 'events on an unknown topic');
    const r = await runDoctor({ routerAdmin: router.adminUrl });
    const f = of(r, 'pod-id', 'fail');
    assert.ok(f.length >= 1, formatDoctorReport(r));
    assert.match(f[0].message, /topic "kv@10\.77\.0\.\d:8000@/);
    assert.match(f[0].fix, /same IP/);
    assert.ok(of(r, 'kv-events', 'fail').length >= 1, 'and the real endpoints get no events');
  } finally {
    await router.close();
    await fleet.close();
    await ingestor.close();
  }
});

test('hot-spotting: a prefix-only profile sends every request of a shared prefix to one endpoint', async () => {
  const fleet = await sim({ replicas: 3 });
  const config = loadConfig({
    text: [
      'apiVersion: llm-d.ai/v1alpha1',
      'kind: EndpointPickerConfig',
      'plugins:',
      '- type: prefix-cache-scorer',
      '- type: max-score-picker',
      'schedulingProfiles:',
      '- name: default',
      '  plugins:',
      '  - {pluginRef: prefix-cache-scorer, weight: 1}',
      '  - {pluginRef: max-score-picker}',
    ].join('\n'),
  });
  const router = await routerFor(fleet, createScheduler(config));
  try {
    const system = doc('one popular system prompt');
    await send(router.url, 1, () => system + ' first');
    const served = await send(router.url, 11, (i) => `${system} question ${i}`);
    const r = await runDoctor({ routerAdmin: router.adminUrl });
    const f = of(r, 'load-concentration', 'warn');
    assert.equal(f.length, 1, formatDoctorReport(r));
    assert.equal(f[0].endpoint, served[0]);
    assert.match(f[0].message, /hot-spotting: .* received 100\.0 % of 12 routed requests.*no load scorer/);
  } finally {
    await router.close();
    await fleet.close();
  }
});

test('routing that ignores the prefix: round robin sends the repeated probe elsewhere', async () => {
  const fleet = await sim();
  const router = await routerFor(fleet, buildScheduler({ preset: 'round-robin' }));
  try {
    const r = await runDoctor({ routerAdmin: router.adminUrl, probe: true });
    const fails = of(r, 'routing-locality', 'fail');
    assert.equal(fails.length, 1, formatDoctorReport(r));
    assert.match(fails[0].message, /routing ignores where the prefix is cached/);
    assert.equal(of(r, 'routing-locality', 'warn').length, 1, 'no prefix scorer in the profile');
    assert.equal(of(r, 'probe-hit', 'fail').length, 0, 'direct probes hit: the engines are fine');
  } finally {
    await router.close();
    await fleet.close();
  }
});

test('requests bypassing the router: none through it is a failure, some straight to a pod a warning', async () => {
  const fleet = await sim();
  const router = await routerFor(fleet, buildScheduler({ preset: 'default' }));
  try {
    await send(fleet.replicas[0].url, 4, (i) => `direct ${i}`);
    let r = await runDoctor({ routerAdmin: router.adminUrl });
    const none = of(r, 'router-traffic', 'fail');
    assert.equal(none.length, 1, formatDoctorReport(r));
    assert.match(none[0].message, /none came through the router/);

    await send(router.url, 4, (i) => `${doc('via router')} ${i}`);
    await send(fleet.replicas[1].url, 6, (i) => `direct again ${i}`);
    r = await runDoctor({ routerAdmin: router.adminUrl });
    const warns = of(r, 'router-traffic', 'warn');
    assert.ok(warns.some((f) => f.endpoint === addr(fleet, 1)), formatDoctorReport(r));
    assert.match(warns.find((f) => f.endpoint === addr(fleet, 1))!.message, /requests bypass the router/);
    assert.equal(of(r, 'router-traffic', 'fail').length, 0);
  } finally {
    await router.close();
    await fleet.close();
  }
});
