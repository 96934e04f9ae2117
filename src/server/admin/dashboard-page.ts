/**
 * The live dashboard page served on the admin port at `/` and `/dashboard`: one self-contained
 * HTML document (inline CSS and script, no external assets) that polls `GET /api/dashboard`
 * every second (`?interval=ms` to change) and renders, with textContent only (no HTML injection
 * from endpoint ids or scorer names):
 *
 * - totals (requests, by status, by predicted cache status, by decision reason);
 * - endpoints: health, waiting / running, KV usage, in flight, routed, engine hit rate (since the
 *   engine started, and over the last minute);
 * - routing distribution over time (stacked SVG bars, one colour per endpoint);
 * - KV events and block index (when the router has them);
 * - the last decisions: chosen and serving endpoint, reason, predicted vs engine-reported cached
 *   tokens, TTFT, and every explained candidate's per-scorer scores.
 *
 * Stable hooks for tests and scripts: `#total-requests`, `tr[data-endpoint="<id>"]` with cells
 * `.routed`, `.hit-rate`, `.waiting`, `.running`, `.kv`, `.inflight`; `#decisions tr.decision`;
 * `body[data-updates]` counts successful polls.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kvroute dashboard</title>
<style>
  :root { --bg:#0f1419; --panel:#1a2129; --fg:#e6e6e6; --dim:#8a96a3; --ok:#3fb950; --bad:#f85149; --warn:#d29922; --acc:#58a6ff; }
  * { box-sizing: border-box; }
  body { margin:0; font:13px/1.4 system-ui, -apple-system, Segoe UI, Roboto, sans-serif; background:var(--bg); color:var(--fg); }
  header { padding:10px 16px; background:var(--panel); display:flex; gap:24px; align-items:baseline; flex-wrap:wrap; }
  header h1 { font-size:16px; margin:0; }
  .kpi { color:var(--dim); } .kpi b { color:var(--fg); font-size:15px; }
  main { padding:12px 16px; display:grid; gap:14px; grid-template-columns: 1fr; }
  section { background:var(--panel); border-radius:6px; padding:10px 12px; overflow-x:auto; }
  h2 { font-size:13px; margin:0 0 8px; color:var(--dim); text-transform:uppercase; letter-spacing:.05em; }
  table { border-collapse:collapse; width:100%; }
  th, td { text-align:left; padding:3px 8px; border-bottom:1px solid #2a333d; white-space:nowrap; }
  th { color:var(--dim); font-weight:normal; }
  td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
  .ok { color:var(--ok); } .bad { color:var(--bad); } .warn { color:var(--warn); } .dim { color:var(--dim); }
  .bar { display:inline-block; height:8px; background:#2a333d; width:80px; vertical-align:middle; margin-right:6px; }
  .bar > span { display:block; height:100%; background:var(--acc); }
  .swatch { display:inline-block; width:10px; height:10px; margin-right:4px; vertical-align:middle; }
  .scores { font-size:12px; color:var(--dim); }
  .scores b { color:var(--fg); font-weight:normal; }
  #status { margin-left:auto; }
  svg text { fill: var(--dim); font-size:10px; }
</style>
</head>
<body data-updates="0">
<header>
  <h1>kvroute</h1>
  <span class="kpi">requests <b id="total-requests">-</b></span>
  <span class="kpi">by status <b id="by-status">-</b></span>
  <span class="kpi">predicted cache <b id="by-cache">-</b></span>
  <span class="kpi">reasons <b id="by-reason">-</b></span>
  <span class="kpi">profile <b id="profile">-</b></span>
  <span id="status" class="dim">connecting...</span>
</header>
<main>
  <section>
    <h2>Endpoints</h2>
    <table id="endpoints">
      <thead><tr><th>endpoint</th><th>health</th><th class="num">waiting</th><th class="num">running</th><th>KV usage</th><th class="num">in flight</th><th class="num">routed</th><th class="num">hit rate</th><th class="num">hit rate (1 min)</th><th class="num">metrics age</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Routing distribution (requests per <span id="bucket-s">5</span> s)</h2>
    <div id="legend"></div>
    <svg id="chart" width="100%" height="140" preserveAspectRatio="none"></svg>
  </section>
  <section id="events-section">
    <h2>KV events and block index</h2>
    <div id="events">no KV-event ingestion attached</div>
  </section>
  <section>
    <h2>Last decisions</h2>
    <table id="decisions">
      <thead><tr><th>time</th><th>request</th><th>chosen</th><th>served by</th><th class="num">status</th><th>reason</th><th>cache</th><th class="num">predicted / engine cached</th><th class="num">TTFT ms</th><th>candidates (total: per-scorer scores)</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
<script>
(function () {
  'use strict';
  var COLORS = ['#58a6ff', '#3fb950', '#d29922', '#f778ba', '#a371f7', '#39c5cf', '#ff7b72', '#e3b341', '#79c0ff', '#56d364'];
  var params = new URLSearchParams(location.search);
  var interval = Math.max(200, Number(params.get('interval')) || 1000);
  var base = location.pathname.replace(/\\/(dashboard)?$/, '');
  var updates = 0;
  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; }
  function pct(x) { return x === null || x === undefined ? '-' : (x * 100).toFixed(1) + ' %'; }
  function fmt(o) { var k = Object.keys(o || {}); return k.length ? k.map(function (x) { return x + ' ' + o[x]; }).join(', ') : '-'; }
  function color(i) { return COLORS[i % COLORS.length]; }

  function renderEndpoints(eps, colorOf) {
    var tb = $('endpoints').tBodies[0];
    tb.textContent = '';
    eps.forEach(function (e) {
      var tr = el('tr'); tr.setAttribute('data-endpoint', e.id);
      var idc = el('td'); var sw = el('span', null, 'swatch'); sw.style.background = colorOf(e.id); idc.appendChild(sw); idc.appendChild(document.createTextNode(e.id)); tr.appendChild(idc);
      tr.appendChild(el('td', e.healthy ? 'healthy' : 'down', e.healthy ? 'ok health' : 'bad health'));
      tr.appendChild(el('td', e.waiting, 'num waiting'));
      tr.appendChild(el('td', e.running, 'num running'));
      var kv = el('td', null, 'kv'); var bar = el('span', null, 'bar'); var fill = el('span'); fill.style.width = Math.round(Math.min(1, e.kvUsage) * 100) + '%'; bar.appendChild(fill); kv.appendChild(bar); kv.appendChild(document.createTextNode(pct(e.kvUsage))); tr.appendChild(kv);
      tr.appendChild(el('td', e.inflight, 'num inflight'));
      tr.appendChild(el('td', e.routed, 'num routed'));
      tr.appendChild(el('td', pct(e.hitRate), 'num hit-rate'));
      tr.appendChild(el('td', pct(e.recentHitRate), 'num recent-hit-rate'));
      tr.appendChild(el('td', e.metricsAgeS < 0 ? 'never' : e.metricsAgeS.toFixed(2) + ' s', 'num age' + (e.metricsAgeS > 2 || e.metricsAgeS < 0 ? ' warn' : '')));
      tb.appendChild(tr);
    });
  }

  function renderChart(series, colorOf) {
    var svg = $('chart'); var NS = 'http://www.w3.org/2000/svg';
    svg.textContent = '';
    var W = 600, H = 130, n = series.counts.length;
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + (H + 10));
    var max = 1;
    series.counts.forEach(function (row) { var s = row.reduce(function (a, b) { return a + b; }, 0); if (s > max) max = s; });
    var bw = W / Math.max(1, n);
    series.counts.forEach(function (row, b) {
      var y = H;
      row.forEach(function (c, e) {
        if (!c) return;
        var h = c / max * (H - 10);
        var r = document.createElementNS(NS, 'rect');
        r.setAttribute('x', String(b * bw + 0.5)); r.setAttribute('width', String(Math.max(1, bw - 1)));
        r.setAttribute('y', String(y - h)); r.setAttribute('height', String(h));
        r.setAttribute('fill', colorOf(series.endpoints[e]));
        var t = document.createElementNS(NS, 'title'); t.textContent = series.endpoints[e] + ': ' + c; r.appendChild(t);
        svg.appendChild(r); y -= h;
      });
    });
    var lbl = document.createElementNS(NS, 'text'); lbl.setAttribute('x', '2'); lbl.setAttribute('y', '10'); lbl.textContent = 'max ' + max + ' / bucket'; svg.appendChild(lbl);
    $('bucket-s').textContent = String(series.bucketMs / 1000);
    var lg = $('legend'); lg.textContent = '';
    series.endpoints.forEach(function (id) { var s = el('span', null, 'swatch'); s.style.background = colorOf(id); lg.appendChild(s); lg.appendChild(el('span', id + '  ')); });
  }

  function renderEvents(d) {
    var box = $('events');
    if (!d.events && !d.index) { box.textContent = d.router && d.router.kvEventsExpected ? 'KV events expected (precise scorer) but no ingestion is attached' : 'no KV-event ingestion attached (approximate prefix routing)'; return; }
    box.textContent = '';
    if (d.index) box.appendChild(el('div', 'index (' + d.index.backend + (d.index.available ? '' : ', UNAVAILABLE') + '): ' + d.index.entries + ' entries, ' + d.index.added + ' added, ' + d.index.removed + ' removed, ' + d.index.errors + ' errors'));
    if (d.events) {
      var t = el('table'); var h = el('tr');
      ['endpoint', 'topic', 'connected', 'batches', 'events', 'malformed', 'gaps', 'replays', 'last event'].forEach(function (x) { h.appendChild(el('th', x)); });
      t.appendChild(h);
      Object.keys(d.events.endpoints).forEach(function (id) {
        var s = d.events.endpoints[id]; var tr = el('tr');
        tr.appendChild(el('td', id)); tr.appendChild(el('td', s.topic || '-'));
        tr.appendChild(el('td', s.connected ? 'yes' : 'no', s.connected ? 'ok' : 'bad'));
        tr.appendChild(el('td', s.batches, 'num')); tr.appendChild(el('td', s.events, 'num'));
        tr.appendChild(el('td', s.malformedMessages + s.malformedEvents, 'num')); tr.appendChild(el('td', s.gaps, 'num')); tr.appendChild(el('td', s.replays, 'num'));
        tr.appendChild(el('td', s.lastEventAt > 0 ? ((d.now - s.lastEventAt) / 1000).toFixed(1) + ' s ago' : 'never', s.lastEventAt > 0 ? '' : 'warn'));
        t.appendChild(tr);
      });
      box.appendChild(t);
      var unknown = Object.keys(d.events.unknownTopics || {});
      if (unknown.length) box.appendChild(el('div', 'messages on unknown topics (pod-id mismatch?): ' + unknown.join(', '), 'bad'));
    }
  }

  function renderDecisions(list, now) {
    var tb = $('decisions').tBodies[0];
    tb.textContent = '';
    list.forEach(function (d) {
      var tr = el('tr', null, 'decision'); tr.setAttribute('data-request-id', d.requestId);
      tr.appendChild(el('td', ((now - d.at) / 1000).toFixed(1) + ' s ago'));
      tr.appendChild(el('td', d.requestId.slice(0, 12)));
      tr.appendChild(el('td', d.chosen, 'chosen'));
      tr.appendChild(el('td', d.servedBy, 'served-by'));
      tr.appendChild(el('td', d.status, 'num ' + (d.status >= 200 && d.status < 300 ? 'ok' : 'bad')));
      tr.appendChild(el('td', d.reason, 'reason'));
      tr.appendChild(el('td', d.cacheStatus, 'cache'));
      tr.appendChild(el('td', (d.predictedCachedTokens === null ? '-' : d.predictedCachedTokens) + ' / ' + (d.cachedTokens === null ? '-' : d.cachedTokens), 'num'));
      tr.appendChild(el('td', d.ttftMs === null ? '-' : d.ttftMs.toFixed(1), 'num'));
      var c = el('td', null, 'scores');
      d.candidates.forEach(function (k, i) {
        var line = el('div'); var b = el('b', k.endpointId + ' ' + k.total.toFixed(2)); line.appendChild(b);
        line.appendChild(document.createTextNode(': ' + Object.keys(k.scores).map(function (s) { return s + ' ' + Number(k.scores[s]).toFixed(2); }).join(', ')));
        if (i === 0) line.className = 'top';
        c.appendChild(line);
      });
      tr.appendChild(c);
      tb.appendChild(tr);
    });
  }

  function render(d) {
    var order = {};
    d.series.endpoints.forEach(function (id, i) { order[id] = i; });
    var colorOf = function (id) { return color(order[id] === undefined ? 0 : order[id]); };
    $('total-requests').textContent = String(d.totals.requests);
    $('by-status').textContent = fmt(d.totals.byStatus);
    $('by-cache').textContent = fmt(d.totals.byCache);
    $('by-reason').textContent = fmt(d.totals.byReason);
    $('profile').textContent = d.router ? (d.router.profile || '-') + ' (' + d.router.scorers.map(function (s) { return s.name + ' x' + s.weight; }).join(', ') + ')' : '-';
    renderEndpoints(d.endpoints, colorOf);
    renderChart(d.series, colorOf);
    renderEvents(d);
    renderDecisions(d.decisions, d.now);
  }

  function poll() {
    fetch(base + '/api/dashboard', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (d) {
        render(d);
        updates++;
        document.body.setAttribute('data-updates', String(updates));
        var s = $('status'); s.textContent = 'updated ' + new Date().toLocaleTimeString(); s.className = 'dim';
      })
      .catch(function (e) { var s = $('status'); s.textContent = 'update failed: ' + e.message; s.className = 'bad'; })
      .then(function () { setTimeout(poll, interval); });
  }
  poll();
})();
</script>
</body>
</html>
`;
