/**
 * The `--html` report in a real headless Chromium: it loads with no network, the three charts
 * draw (non-zero size, one mark per strategy / replica), and the numbers on the page are the
 * numbers of the JSON report.
 */
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser } from 'puppeteer-core';
import { runBench } from '../../src/bench/run-bench.js';
import { renderHtmlReport } from '../../src/bench/html-report.js';
import { fmtMs } from '../../src/bench/report.js';
import { requireChromium } from '../helpers/chromium.js';


let browser: Browser | undefined;
const dir = mkdtempSync(join(tmpdir(), 'kvr-bench-html-'));

after(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface View {
  rendered: string | undefined;
  ttft: { w: number; h: number; lines: number };
  hit: { w: number; h: number; bars: { name: string; value: number; height: number }[]; bound: number };
  loadPanels: number;
  loadLines: number;
  cells: Record<string, string>;
  oracle: string;
}

const READ_VIEW = `(() => {
  const box = (id) => { const r = document.getElementById(id).getBoundingClientRect(); return { w: r.width, h: r.height }; };
  const cells = {};
  for (const td of document.querySelectorAll('#summary td[data-field]')) cells[td.dataset.strategy + '/' + td.dataset.field] = td.textContent;
  return {
    rendered: document.body.dataset.rendered,
    ttft: { ...box('chart-ttft'), lines: document.querySelectorAll('#chart-ttft .ttft-line').length },
    hit: {
      ...box('chart-hit'),
      bars: [...document.querySelectorAll('#chart-hit .hit-bar')].map((b) => ({ name: b.dataset.strategy, value: Number(b.dataset.value), height: b.getBoundingClientRect().height })),
      bound: Number(document.querySelector('#chart-hit .bound-line').dataset.value),
    },
    loadPanels: document.querySelectorAll('#chart-load svg.load-panel').length,
    loadLines: document.querySelectorAll('#chart-load .load-line').length,
    cells,
    oracle: document.getElementById('oracle').textContent,
  };
})()`;

test('HTML report: self-contained, charts drawn, numbers equal to the JSON', async () => {
  const chromium = requireChromium();
  const report = await runBench({
    workload: 'shared-prefix',
    workloadOptions: { groups: 3, promptsPerGroup: 4, systemTokens: 400, questionTokens: 32, outputTokens: 6, rate: 20 },
    strategies: ['round-robin', 'llm-d-approx', 'kvroute'],
    engine: 'virtual',
    replicas: 3,
    seed: 4,
  });
  const file = join(dir, 'report.html');
  writeFileSync(file, renderHtmlReport(report));

  browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--headless=new', '--disable-gpu'] });
  const page = await browser.newPage();
  const errors: string[] = [];
  const external: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    if (r.url().startsWith('file:')) void r.continue();
    else {
      external.push(r.url());
      void r.abort();
    }
  });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  await page.waitForFunction('document.body.dataset.rendered === "true"');
  const v = (await page.evaluate(READ_VIEW)) as View;
  assert.deepEqual(errors, []);
  assert.deepEqual(external, [], 'no network requests');

  const n = report.strategies.length;
  assert.ok(v.ttft.w > 0 && v.ttft.h > 0);
  assert.equal(v.ttft.lines, n, 'one TTFT line per strategy');
  assert.ok(v.hit.w > 0 && v.hit.h > 0);
  assert.deepEqual(v.hit.bars.map((b) => b.name), report.strategies.map((s) => s.name));
  for (const b of v.hit.bars) {
    const s = report.strategies.find((x) => x.name === b.name)!;
    assert.equal(b.value, s.hitRate);
    if (s.hitRate > 0.05) assert.ok(b.height > 1, `${b.name} bar has height`);
  }
  const hr = v.hit.bars.map((b) => b.height);
  const rates = report.strategies.map((s) => s.hitRate);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (rates[i] > rates[j] + 0.01) assert.ok(hr[i] > hr[j], 'taller bar = higher hit rate');
  assert.equal(v.hit.bound, report.oracle.hitRate);
  assert.equal(v.loadPanels, n);
  assert.equal(v.loadLines, n * report.fleet.replicas, 'one load line per replica per strategy');

  for (const s of report.strategies) {
    assert.equal(v.cells[`${s.name}/hitRate`], `${(s.hitRate * 100).toFixed(1)} %`);
    assert.equal(v.cells[`${s.name}/requests`], String(s.requests));
    assert.equal(v.cells[`${s.name}/ttftP90`], fmtMs(s.ttftMs.p90));
    assert.equal(v.cells[`${s.name}/outputTokensPerSecond`], s.outputTokensPerSecond.toFixed(0));
    assert.equal(v.cells[`${s.name}/balance`], s.balance.toFixed(2));
  }
  assert.equal(v.oracle, `${(report.oracle.hitRate * 100).toFixed(1)} %`);
});
