/**
 * `--html <file>`: a self-contained HTML report (no network). The report JSON is embedded in a
 * `<script type="application/json" id="bench-data">`; inline JavaScript draws, as inline SVG:
 *
 * - `#summary`: the figures table (cells carry `data-strategy` / `data-field`);
 * - `#chart-ttft`: TTFT distribution per strategy (CDF lines, `.ttft-line`);
 * - `#chart-hit`: fleet hit rate per strategy (`.hit-bar`) against the oracle bound (`.bound-line`);
 * - `#chart-load`: requests in flight per replica over time, one panel per strategy (`.load-line`).
 *
 * After drawing, `document.body.dataset.rendered` is `"true"` (tests wait for it).
 */
import type { BenchReport } from './run-bench.js';

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}
.meta{color:#555}.panel{display:inline-block;margin:0 12px 12px 0;vertical-align:top}
svg text{font-size:11px;fill:#444}.legend span{display:inline-block;margin-right:12px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
`;

const JS = String.raw`
(function () {
  var data = JSON.parse(document.getElementById('bench-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  var COLORS = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf'];
  function color(i) { return COLORS[i % COLORS.length]; }
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, anchor) {
    var t = el('text', { x: x, y: y, 'text-anchor': anchor || 'start' }, parent);
    t.textContent = s;
    return t;
  }
  function pct(x) { return (x * 100).toFixed(1) + ' %'; }
  function ms(x) { if (x === null || x === undefined) return '-'; return x < 1000 ? x.toFixed(x < 10 ? 1 : 0) + ' ms' : (x / 1000).toFixed(x < 10000 ? 2 : 1) + ' s'; }
  var S = data.strategies;

  // Summary table
  var cols = [
    ['requests', function (s) { return String(s.requests); }],
    ['failed', function (s) { return String(s.failed); }],
    ['hitRate', function (s) { return pct(s.hitRate); }],
    ['vsOracle', function (s) { return pct(s.vsOracle); }],
    ['ttftP50', function (s) { return ms(s.ttftMs.p50); }],
    ['ttftP90', function (s) { return ms(s.ttftMs.p90); }],
    ['ttftP99', function (s) { return ms(s.ttftMs.p99); }],
    ['itlMean', function (s) { return ms(s.itlMs.mean); }],
    ['e2eP90', function (s) { return ms(s.e2eMs.p90); }],
    ['outputTokensPerSecond', function (s) { return s.outputTokensPerSecond.toFixed(0); }],
    ['requestsPerSecond', function (s) { return s.requestsPerSecond.toFixed(2); }],
    ['balance', function (s) { return s.balance.toFixed(2); }],
    ['stickiness', function (s) { return pct(s.stickiness); }],
    ['concentration', function (s) { return pct(s.concentration); }]
  ];
  var heads = ['strategy','requests','failed','hit rate','vs bound','TTFT p50','TTFT p90','TTFT p99','ITL mean','E2E p90','out tok/s','req/s','balance','stickiness','concentration'];
  var table = document.getElementById('summary');
  var tr = document.createElement('tr');
  heads.forEach(function (h) { var th = document.createElement('th'); th.textContent = h; tr.appendChild(th); });
  table.appendChild(tr);
  S.forEach(function (s, i) {
    var row = document.createElement('tr');
    var td = document.createElement('td');
    td.innerHTML = '<i style="display:inline-block;width:10px;height:10px;margin-right:6px;background:' + color(i) + '"></i>';
    td.appendChild(document.createTextNode(s.name));
    row.appendChild(td);
    cols.forEach(function (c) {
      var cell = document.createElement('td');
      cell.dataset.strategy = s.name;
      cell.dataset.field = c[0];
      cell.textContent = c[1](s);
      row.appendChild(cell);
    });
    table.appendChild(row);
  });

  // TTFT CDF
  (function () {
    var svg = document.getElementById('chart-ttft');
    var W = 640, H = 300, L = 50, R = 10, T = 10, B = 40;
    var max = 0;
    S.forEach(function (s) { if (s.ttftCdfMs.length) max = Math.max(max, s.ttftCdfMs[s.ttftCdfMs.length - 1]); });
    if (!(max > 0)) max = 1;
    var lmax = Math.log10(max + 1);
    function x(v) { return L + (Math.log10(v + 1) / lmax) * (W - L - R); }
    function y(q) { return T + (1 - q) * (H - T - B); }
    el('line', { x1: L, y1: y(0), x2: W - R, y2: y(0), stroke: '#999' }, svg);
    el('line', { x1: L, y1: y(0), x2: L, y2: y(1), stroke: '#999' }, svg);
    [0, 0.5, 0.9, 1].forEach(function (q) { text(svg, L - 6, y(q) + 4, String(q), 'end'); });
    for (var e = 0; Math.pow(10, e) <= max * 10; e++) {
      var v = Math.pow(10, e);
      if (v > max * 1.0001 && e > 0) break;
      text(svg, x(v), H - B + 16, ms(v), 'middle');
    }
    text(svg, (L + W) / 2, H - 6, 'time to first token (log scale)', 'middle');
    S.forEach(function (s, i) {
      if (!s.ttftCdfMs.length) return;
      var pts = s.ttftCdfMs.map(function (v, k) { return x(v).toFixed(1) + ',' + y(k / 100).toFixed(1); }).join(' ');
      el('polyline', { points: pts, fill: 'none', stroke: color(i), 'stroke-width': 2, 'class': 'mark ttft-line', 'data-strategy': s.name }, svg);
    });
  })();

  // Hit rate vs bound
  (function () {
    var svg = document.getElementById('chart-hit');
    var W = 640, H = 260, L = 50, R = 10, T = 10, B = 50;
    var n = Math.max(1, S.length), bw = (W - L - R) / n;
    function y(v) { return T + (1 - v) * (H - T - B); }
    el('line', { x1: L, y1: y(0), x2: W - R, y2: y(0), stroke: '#999' }, svg);
    [0, 0.5, 1].forEach(function (v) { text(svg, L - 6, y(v) + 4, pct(v), 'end'); });
    S.forEach(function (s, i) {
      el('rect', { x: L + i * bw + bw * 0.15, y: y(s.hitRate), width: bw * 0.7, height: Math.max(0.5, y(0) - y(s.hitRate)), fill: color(i), 'class': 'mark hit-bar', 'data-strategy': s.name, 'data-value': s.hitRate }, svg);
      text(svg, L + i * bw + bw / 2, y(s.hitRate) - 4, pct(s.hitRate), 'middle');
      text(svg, L + i * bw + bw / 2, H - B + 16, s.name, 'middle');
    });
    el('line', { x1: L, y1: y(data.oracle.hitRate), x2: W - R, y2: y(data.oracle.hitRate), stroke: '#000', 'stroke-dasharray': '6 4', 'class': 'mark bound-line', 'data-value': data.oracle.hitRate }, svg);
    text(svg, W - R, y(data.oracle.hitRate) - 4, 'pooled-LRU reference ' + pct(data.oracle.hitRate), 'end');
  })();

  // Load per replica over time
  (function () {
    var host = document.getElementById('chart-load');
    S.forEach(function (s, si) {
      var div = document.createElement('div');
      div.className = 'panel';
      var title = document.createElement('div');
      title.textContent = s.name + ' (balance ' + s.balance.toFixed(2) + ')';
      div.appendChild(title);
      var W = 360, H = 150, L = 34, R = 6, T = 6, B = 20;
      var svg = el('svg', { width: W, height: H, 'class': 'load-panel', 'data-strategy': s.name }, div);
      var series = s.timeline.inflight, nb = series.length ? series[0].length : 0, max = 1;
      series.forEach(function (row) { row.forEach(function (v) { if (v > max) max = v; }); });
      function x(k) { return L + (nb > 1 ? k / (nb - 1) : 0) * (W - L - R); }
      function y(v) { return T + (1 - v / max) * (H - T - B); }
      el('line', { x1: L, y1: y(0), x2: W - R, y2: y(0), stroke: '#999' }, svg);
      text(svg, L - 4, y(max) + 8, String(max), 'end');
      text(svg, L - 4, y(0), '0', 'end');
      text(svg, (L + W) / 2, H - 4, 'time (' + ms(s.timeline.bucketMs * nb) + '); in-flight per replica', 'middle');
      series.forEach(function (row, r) {
        var pts = row.map(function (v, k) { return x(k).toFixed(1) + ',' + y(v).toFixed(1); }).join(' ');
        el('polyline', { points: pts, fill: 'none', stroke: color(r), 'stroke-width': 1.2, 'class': 'mark load-line', 'data-replica': s.replicas[r] ? s.replicas[r].name : String(r) }, svg);
      });
      host.appendChild(div);
    });
  })();

  document.body.dataset.rendered = 'true';
})();
`;

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Renders the self-contained HTML report. */
export function renderHtmlReport(r: BenchReport): string {
  const json = JSON.stringify(r).replace(/</g, '\\u003c');
  const f = r.fleet;
  const skipped = r.skipped.map((s) => `<li>${esc(s.name)}: skipped (${esc(s.reason)})</li>`).join('');
  const notes = [...r.notes, ...r.strategies.flatMap((s) => s.notes.map((n) => `${s.name}: ${n}`))].map((n) => `<li>${esc(n)}</li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kvroute bench: ${esc(r.workload.name)}</title>
<style>${CSS}</style></head>
<body>
<h1>kvroute bench: ${esc(r.workload.description)}</h1>
<p class="meta">engine <b>${esc(r.engine)}</b>, ${f.replicas} replicas, KV capacity ${f.numGpuBlocksPerReplica} blocks of ${f.blockSize} tokens per replica
(${f.capacityTokens} tokens in the fleet), seed ${r.seed}. Pooled-LRU reference: <b id="oracle">${(r.oracle.hitRate * 100).toFixed(1)} %</b>.</p>
<h2>Figures</h2>
<table id="summary"></table>
<ul>${skipped}</ul>
<h2>Time to first token</h2>
<svg id="chart-ttft" width="640" height="300" role="img" aria-label="TTFT distribution per strategy"></svg>
<h2>Fleet hit rate vs the pooled-cache bound</h2>
<svg id="chart-hit" width="640" height="260" role="img" aria-label="hit rate per strategy"></svg>
<h2>Load per replica over time</h2>
<div id="chart-load"></div>
<h2>Notes</h2>
<ul>${notes}</ul>
<script type="application/json" id="bench-data">${json}</script>
<script>${JS}</script>
</body></html>
`;
}
