/**
 * The live dashboard in a real headless Chromium (puppeteer-core): a simulated fleet behind the
 * router, requests sent, the admin page loaded; it must show real values (endpoint ids, routed
 * counts that add up to what was sent, decisions with per-scorer scores) and follow new traffic.
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import puppeteer, { type Browser } from 'puppeteer-core';
import { request } from 'undici';
import type { SimFleet } from '../../src/sim/index.js';
import { SIM_MODEL, startSimRouter, type SimRouter } from '../helpers/sim-router.js';
import type { RunningRouter } from '../../src/server/router.js';
import { topicDocument } from '../../src/demo/demo-workload.js';
import type { DashboardData } from '../../src/server/admin/dashboard-state.js';
import { requireChromium } from '../helpers/chromium.js';

// The page.evaluate callbacks run in Chromium; this file is compiled without the DOM lib.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const document: any;

const MODEL = SIM_MODEL;

let fleet: SimFleet;
let router: RunningRouter;
let sim: SimRouter | undefined;
let browser: Browser | undefined;

before(async () => {
  ({ fleet, router } = (sim = await startSimRouter(11)));
});

after(async () => {
  await browser?.close();
  await sim?.close();
});

async function send(n: number, topic: string): Promise<string[]> {
  const served: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await request(`${router.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: `${topicDocument(`${topic} ${i % 3}`, 200)} question ${i}`, max_tokens: 2 }),
    });
    await res.body.text();
    assert.equal(res.statusCode, 200);
    served.push(String(res.headers['x-kvroute-endpoint']));
  }
  return served;
}

test('the JSON API counts what was routed', async () => {
  const served = await send(6, 'api');
  const d = (await (await request(`${router.adminUrl}/api/dashboard`)).body.json()) as DashboardData;
  assert.equal(d.totals.requests, 6);
  assert.equal(d.totals.byStatus['200'], 6);
  assert.deepEqual(d.endpoints.map((e) => e.id).sort(), fleet.replicas.map((r) => r.url.replace('http://', '')).sort());
  for (const e of d.endpoints) assert.equal(e.routed, served.filter((s) => s === e.id).length);
  assert.equal(d.series.counts.flat().reduce((a, b) => a + b, 0), 6);
  assert.equal(d.decisions.length, 6);
  assert.ok(d.decisions[0].candidates.length > 0);
  assert.ok(d.router?.scorers.some((s) => s.type === 'precise-prefix-cache-scorer'));
  assert.ok(d.endpoints.every((e) => e.healthy && e.prefixQueries !== null && e.prefixQueries > 0));
});

test('the page renders real values in headless Chromium and updates after more requests', async () => {
  browser = await puppeteer.launch({ executablePath: requireChromium(), headless: true, args: ['--no-sandbox', '--headless=new', '--disable-gpu'] });
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  await page.goto(`${router.adminUrl}/?interval=200`, { waitUntil: 'load' });
  await page.waitForFunction(() => Number(document.body.dataset.updates) >= 1);
  const view = await page.evaluate(() => ({
    total: document.getElementById('total-requests')!.textContent,
    rows: [...document.querySelectorAll('#endpoints tbody tr')].map((tr: any) => ({
      id: tr.getAttribute('data-endpoint'),
      routed: Number(tr.querySelector('.routed')!.textContent),
      health: tr.querySelector('.health')!.textContent,
      hitRate: tr.querySelector('.hit-rate')!.textContent,
    })),
    decisions: document.querySelectorAll('#decisions tr.decision').length,
    scores: document.querySelector('#decisions tr.decision .scores')!.textContent,
    bars: document.querySelectorAll('#chart rect').length,
    profile: document.getElementById('profile')!.textContent,
  }));
  assert.equal(view.total, '6');
  assert.deepEqual(view.rows.map((r) => r.id).sort(), fleet.replicas.map((r) => r.url.replace('http://', '')).sort());
  assert.equal(view.rows.reduce((a, r) => a + r.routed, 0), 6);
  assert.ok(view.rows.every((r) => r.health === 'healthy'));
  assert.ok(view.rows.some((r) => /%$/.test(r.hitRate ?? '')), 'hit rates shown');
  assert.equal(view.decisions, 6);
  assert.match(view.scores ?? '', /prefix-cache-scorer \d\.\d\d/);
  assert.ok(view.bars >= 1, 'routing distribution drawn');
  assert.match(view.profile ?? '', /prefix-cache-scorer x\d/);

  const served = await send(3, 'more');
  await page.waitForFunction(() => document.getElementById('total-requests')!.textContent === '9');
  const counts = await page.evaluate(() =>
    Object.fromEntries([...document.querySelectorAll('#endpoints tbody tr')].map((tr: any) => [tr.getAttribute('data-endpoint'), Number(tr.querySelector('.routed')!.textContent)])),
  );
  assert.equal((Object.values(counts) as number[]).reduce((a, b) => a + b, 0), 9);
  const top = await page.evaluate(() => document.querySelector('#decisions tr.decision .served-by')!.textContent);
  assert.equal(top, served.at(-1), 'newest decision first');
  assert.deepEqual(errors, []);
});
