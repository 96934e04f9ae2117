/**
 * `bench --engine live` and `doctor` against the simulator's llama.cpp dialect (real HTTP):
 * `;engine=` accepted, caches reset the engine's way, hit rates from llama.cpp's own numbers
 * (response timings; no counters), no false alarms from doctor, and the real faults caught
 * (wrong --engine, 0/2 healthy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBench } from '../../src/bench/run-bench.js';
import { runDoctor } from '../../src/doctor/run-doctor.js';
import { startFleet } from '../../src/sim/index.js';
import { startRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const llama = { model: MODEL, basePort: 0, profile: 'llama-3.2-1b' as const, timeScale: 0.02, maxModelLen: 8192, slowMetrics: false, dialect: { engine: 'llamacpp' as const, parallel: 2, llamacppBuild: 'old' as const } };

test('bench --engine live drives llama.cpp: ;engine= accepted, slots erased, hit rates from its responses', async () => {
  const fleet = await startFleet({ ...llama, replicas: 2 });
  try {
    const [a, b] = fleet.replicas.map((r) => `${r.host}:${r.port}`);
    const report = await runBench({
      workload: 'shared-prefix',
      workloadOptions: { groups: 2, promptsPerGroup: 4, systemTokens: 600, questionTokens: 32, outputTokens: 4, rate: 10 },
      strategies: ['round-robin', 'kvroute'],
      engine: 'live',
      endpoints: [`${a};engine=llamacpp`, b],
      replicas: 2,
      seed: 3,
    });
    const notes = report.notes.join(' | ') + ' | ' + report.strategies.flatMap((s) => s.notes ?? []).join(' | ');
    for (const s of report.strategies) {
      assert.equal(s.failed, 0, `${s.name}: ${s.errors.join('; ')}`);
      assert.ok(s.hitRate > 0, `${s.name}: hit rate read as ${s.hitRate} (llama.cpp reports cached tokens only in its responses)`);
    }
    const kv = report.strategies.find((s) => s.name === 'kvroute')!;
    const rr = report.strategies.find((s) => s.name === 'round-robin')!;
    assert.ok(kv.hitRate >= rr.hitRate, `kvroute ${kv.hitRate} vs round robin ${rr.hitRate}`);
    assert.match(notes, /llama\.cpp/);
    assert.match(notes, /no prefix-cache counters: its hit rate comes from the cached tokens its responses report/);
    assert.doesNotMatch(notes, /NOT every cache could be cleared/, 'the slot erase works on this llama-server');
  } finally {
    await fleet.close();
  }
});

test('doctor on llama.cpp: no false alarms after traffic; wrong --engine and 0/2 healthy caught', async () => {
  const fleet = await startFleet({ ...llama, replicas: 2 });
  const good = await startRouter({ endpoints: fleet.replicas.map((r) => ({ url: r.url })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
  const wrong = await startRouter({ endpoints: fleet.replicas.map((r) => ({ url: r.url, engine: 'vllm' as const })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
  try {
    for (let i = 0; i < 12; i++) {
      const r = await fetch(`${good.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: `conversation ${i % 3} `.repeat(80) + ` turn ${i}`, max_tokens: 2 }) });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    }
    const endpoints = fleet.replicas.map((r) => r.url);
    const report = await runDoctor({ endpoints, routerAdmin: good.adminUrl, probe: true });
    const bad = report.findings.filter((f) => f.level === 'fail' || f.level === 'warn');
    assert.deepEqual(bad.map((f) => `${f.check}: ${f.message}`), [], 'no false alarms on a healthy llama.cpp fleet');
    const by = (check: string) => report.findings.filter((f) => f.check === check);
    assert.ok(by('engine').every((f) => /llama\.cpp/.test(f.message) && /cannot measure here/.test(f.message)));
    assert.ok(by('prefix-caching').every((f) => f.level === 'skip'));
    assert.ok(by('probe-hit').some((f) => f.level === 'ok' && /from usage\.prompt_tokens - timings\.prompt_n/.test(f.message)), JSON.stringify(by('probe-hit')));
    assert.doesNotMatch(by('router-traffic').map((f) => f.message).join(' '), /served no requests/);
    assert.doesNotMatch(by('kv-events').map((f) => f.message).join(' '), /no precise-prefix-cache-scorer/);

    const faulty = await runDoctor({ endpoints, routerAdmin: wrong.adminUrl });
    assert.equal(faulty.ok, false);
    const health = faulty.findings.filter((f) => f.check === 'endpoint-health' && f.level === 'fail').map((f) => f.message).join(' | ');
    assert.match(health, /0\/2 endpoints healthy/);
    assert.match(health, /treats .* as vllm .* but it serves llamacpp metrics/);
  } finally {
    await good.close();
    await wrong.close();
    await fleet.close();
  }
});
