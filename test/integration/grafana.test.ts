/**
 * The Grafana dashboard (deploy/grafana/kvroute-dashboard.json) is importable and every query
 * names metrics that exist: kvroute's in a live RouterMetrics registry (with the labels the
 * query groups or filters by), vLLM's on a simulated replica's /metrics.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { RouterMetrics } from '../../src/metrics/router-metrics.js';
import { SimReplica } from '../../src/sim/replica-server.js';

interface Panel {
  type: string;
  id: number;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Array<{ expr: string; refId: string }>;
}

const file = new URL('../../../deploy/grafana/kvroute-dashboard.json', import.meta.url);
const dash = JSON.parse(readFileSync(file, 'utf8')) as { title: string; uid: string; panels: Panel[]; templating: { list: Array<{ name: string; type: string; query: string }> } };
const HIST_SUFFIX = /_(bucket|sum|count)$/;

test('dashboard JSON is importable: datasource variable, unique ids, a grid position and queries per panel', () => {
  assert.ok(dash.title && dash.uid);
  const ds = dash.templating.list.find((v) => v.type === 'datasource');
  assert.equal(ds?.query, 'prometheus');
  const ids = new Set<number>();
  for (const p of dash.panels) {
    assert.ok(!ids.has(p.id), `duplicate panel id ${p.id}`);
    ids.add(p.id);
    assert.ok(p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title}: grid`);
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, '${' + ds!.name + '}', `${p.title}: datasource must be the variable`);
    assert.ok((p.targets ?? []).length > 0, `${p.title}: no queries`);
  }
  const titles = dash.panels.map((p) => p.title.toLowerCase()).join(' | ');
  for (const topic of ['hit rate per pod', 'routing distribution', 'cache status', 'score', 'kv events']) assert.ok(titles.includes(topic), `missing a panel about ${topic}`);
});

test('every metric a query names exists: kvroute in a live registry (with its labels), vLLM on a simulated replica', async () => {
  const metrics = new RouterMetrics();
  const kv = new Map<string, { type: string; labels: Set<string> }>();
  for (const m of metrics.registry.getMetricsAsArray()) {
    const metric = m as unknown as { get(): Promise<{ name: string; type: string }>; labelNames?: string[] };
    const json = await metric.get();
    kv.set(json.name, { type: String(json.type), labels: new Set(metric.labelNames ?? []) });
  }
  const replica = new SimReplica({ id: 'grafana-test', modelName: 'm', port: 0 });
  await replica.start();
  let vllmText: string;
  try {
    vllmText = await (await request(`${replica.url}/metrics`)).body.text();
  } finally {
    await replica.close();
  }
  const vllm = new Map<string, string>();
  for (const m of vllmText.matchAll(/^# TYPE (\S+) (\S+)$/gm)) vllm.set(m[1], m[2]);

  let checked = 0;
  for (const p of dash.panels) {
    for (const t of p.targets ?? []) {
      const names = [...t.expr.matchAll(/\b(kvroute_[a-zA-Z0-9_]+|vllm:[a-zA-Z0-9_:]+)/g)].map((m) => m[1]);
      assert.ok(names.length > 0, `${p.title}: query names no metric: ${t.expr}`);
      const kvUsed: Array<{ labels: Set<string> }> = [];
      for (const n of names) {
        const base = n.replace(HIST_SUFFIX, '');
        if (n.startsWith('kvroute_')) {
          const m = kv.get(n) ?? (kv.get(base)?.type === 'histogram' ? kv.get(base) : undefined);
          assert.ok(m, `${p.title}: ${n} is not a kvroute metric`);
          kvUsed.push(m);
        } else {
          const ok = vllm.has(n) || vllm.get(base) === 'histogram' || (n.endsWith('_total') && vllm.get(n.slice(0, -6)) === 'counter');
          assert.ok(ok, `${p.title}: ${n} is not on the simulator's /metrics`);
        }
        checked++;
      }
      // Labels grouped by or matched on must exist on some kvroute metric of the query.
      if (kvUsed.length > 0 && !names.some((n) => n.startsWith('vllm:'))) {
        const labels = new Set<string>();
        for (const m of t.expr.matchAll(/by \(([^)]*)\)/g)) for (const l of m[1].split(',')) labels.add(l.trim());
        for (const m of t.expr.matchAll(/\{([^}]*)\}/g)) for (const l of m[1].matchAll(/([a-zA-Z_]+)\s*=/g)) labels.add(l[1]);
        for (const l of labels) {
          if (l === 'le' || l === '') continue;
          assert.ok(kvUsed.some((m) => m.labels.has(l)), `${p.title}: label "${l}" is on none of the metrics in ${t.expr}`);
        }
      }
    }
  }
  assert.ok(checked >= 40, `only ${checked} metric references checked`);
});
