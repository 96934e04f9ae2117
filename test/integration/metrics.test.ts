/**
 * Router metrics and structured logs over real HTTP: a simulated fleet, the gateway, the admin
 * port's /metrics, and pino lines captured from the gateway's logger.
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import type { SimFleet } from '../../src/sim/index.js';
import { SIM_MODEL, startSimRouter, type SimRouter } from '../helpers/sim-router.js';
import { startRouter, type RunningRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { RouterMetrics } from '../../src/metrics/router-metrics.js';
import { topicDocument } from '../../src/demo/demo-workload.js';
import type { EventIngestStats } from '../../src/events/types.js';
import type { IndexStats } from '../../src/kv-index/types.js';

const MODEL = SIM_MODEL;
let fleet: SimFleet;
let router: RunningRouter;
let sim: SimRouter | undefined;
const lines: Array<Record<string, unknown>> = [];

before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  ({ fleet, router } = (sim = await startSimRouter(3, { logger: pino({ level: 'info' }, sink) })));
});

after(async () => {
  await sim?.close();
});

async function chat(system: string, question: string, headers: Record<string, string> = {}) {
  const res = await request(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'system', content: system }, { role: 'user', content: question }], max_tokens: 2 }),
  });
  const body = (await res.body.json()) as { usage?: { prompt_tokens_details?: { cached_tokens?: number } } };
  return { status: res.statusCode, headers: res.headers, body };
}

const scrape = async () => (await request(`${router.adminUrl}/metrics`)).body.text();

test('latency by predicted cache status, predicted vs engine cached tokens, per-scorer scores', async () => {
  const system = topicDocument('Metrics test topic', 500);
  const first = await chat(system, 'First question?');
  const second = await chat(system, 'Second question?');
  assert.equal(first.status, 200);
  assert.equal(second.status, 200);
  assert.equal(second.headers['x-kvroute-endpoint'], first.headers['x-kvroute-endpoint']);
  const ep = String(second.headers['x-kvroute-endpoint']);
  const text = await scrape();
  // The first request had no cached prefix anywhere (miss), the second one was predicted a hit.
  assert.match(text, new RegExp(`kvroute_request_ttft_seconds_count\\{endpoint="${ep}",cache_status="miss"\\} 1`));
  assert.match(text, new RegExp(`kvroute_request_ttft_seconds_count\\{endpoint="${ep}",cache_status="hit"\\} 1`));
  assert.match(text, new RegExp(`kvroute_request_duration_seconds_count\\{endpoint="${ep}",cache_status="hit"\\} 1`));
  assert.match(text, /kvroute_decisions_total\{cache_status="hit",reason="[a-z-]+"\} 1/);
  const predicted = Number(new RegExp(`kvroute_predicted_cached_tokens_total\\{endpoint="${ep}"\\} (\\d+)`).exec(text)?.[1]);
  const engine = Number(new RegExp(`kvroute_engine_cached_tokens_total\\{endpoint="${ep}"\\} (\\d+)`).exec(text)?.[1]);
  assert.ok(predicted > 0, `predicted cached tokens ${predicted}`);
  assert.equal(engine, second.body.usage?.prompt_tokens_details?.cached_tokens);
  assert.ok(engine > 0);
  // vLLM reports cached_tokens only on a hit (> 0, with --enable-prompt-tokens-details), so only
  // the second request gives an engine figure to compare the prediction with.
  assert.match(text, /kvroute_cache_prediction_error_ratio_count 1/);
  assert.match(text, /kvroute_scorer_score_count\{scorer="precise-prefix-cache-scorer",type="precise-prefix-cache-scorer",candidate="chosen"\} 2/);
  assert.match(text, /kvroute_scorer_score_count\{scorer="precise-prefix-cache-scorer",type="precise-prefix-cache-scorer",candidate="other"\} 4/);
  assert.match(text, /kvroute_session_bindings \d+/);
});

test('one info line per request, carrying the client request id (rejected requests too)', async () => {
  lines.length = 0;
  const res = await chat('Short system prompt.', 'Logged question', { 'x-request-id': 'req-obs-42' });
  assert.equal(res.headers['x-request-id'], 'req-obs-42');
  const mine = lines.filter((l) => l.reqId === 'req-obs-42');
  const perRequest = mine.filter((l) => l.msg === 'request');
  assert.equal(perRequest.length, 1);
  const l = perRequest[0];
  assert.equal(l.level, 30);
  assert.equal(l.endpoint, res.headers['x-kvroute-endpoint']);
  assert.equal(l.status, 200);
  assert.equal(l.model, MODEL);
  assert.equal(typeof l.reason, 'string');
  assert.equal(typeof l.durationMs, 'number');
  assert.equal(typeof l.ttftMs, 'number');
  assert.equal(typeof l.schedulingMs, 'number');
  assert.equal(typeof l.overheadMs, 'number');
  assert.ok(['hit', 'partial', 'miss', 'unknown'].includes(String(l.cache)));
  // A rejected request also gets its one line, with the error code, and an id.
  lines.length = 0;
  const bad = await request(`${router.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'bad-1' }, body: '{not json' });
  await bad.body.text();
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.headers['x-request-id'], 'bad-1');
  const failed = lines.filter((x) => x.reqId === 'bad-1' && x.msg === 'request failed');
  assert.equal(failed.length, 1);
  assert.equal(failed[0].code, 'KVR_ERR_BAD_JSON');
  // A request id with characters that do not belong in a header is replaced.
  const odd = await chat('Short system prompt.', 'x', { 'x-request-id': 'a b' });
  assert.notEqual(odd.headers['x-request-id'], 'a b');
});

test('a logger at warn (the default) writes nothing for a good request', async () => {
  const quiet: string[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { quiet.push(c.toString()); cb(); } });
  const r = await startRouter({
    endpoints: fleet.replicas.map((x) => ({ url: x.url })),
    scheduler: buildScheduler({ preset: 'default' }),
    port: 0,
    adminPort: 0,
    processMetrics: false,
    logger: pino({ level: 'warn' }, sink),
  });
  try {
    const res = await request(`${r.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'hi', max_tokens: 1 }) });
    await res.body.text();
    assert.equal(res.statusCode, 200);
    assert.deepEqual(quiet, []);
  } finally {
    await r.close();
  }
});

test('event, index, session and tokenizer metrics are read from attached providers at scrape time', async () => {
  const m = new RouterMetrics();
  const before = await m.registry.metrics();
  assert.doesNotMatch(before, /kvroute_kv_events_total\{/);
  const ev: EventIngestStats = {
    mode: 'bind',
    endpoints: {
      '10.0.0.1:8000': { batches: 5, events: 42, malformedMessages: 1, malformedEvents: 2, gaps: 3, replays: 2, replayFailures: 1, resets: 1, lastSeq: 9, lastEventAt: 1000, topic: 'kv@10.0.0.1:8000@m', connected: true },
    },
    unknownTopics: { 'kv@10.9.9.9:8000@m': 7 },
  };
  const idx: IndexStats = { backend: 'memory', available: true, entries: 100, bytes: 4096, endpoints: { '10.0.0.1:8000': 100 }, added: 120, removed: 20, evicted: 0, lookups: 9, errors: 0, unknownParents: 4 };
  m.attachEventStats(() => ev);
  m.attachIndexStats(() => idx);
  let sessions = 3;
  m.attachSessionCount(() => sessions);
  m.observeTokenization(0.002);
  m.observeTokenization(Number.NaN);
  const text = await m.registry.metrics();
  assert.match(text, /kvroute_kv_events_total\{endpoint="10\.0\.0\.1:8000"\} 42/);
  assert.match(text, /kvroute_kv_event_batches_total\{endpoint="10\.0\.0\.1:8000"\} 5/);
  assert.match(text, /kvroute_kv_event_malformed_total\{endpoint="10\.0\.0\.1:8000",kind="event"\} 2/);
  assert.match(text, /kvroute_kv_event_gaps_total\{endpoint="10\.0\.0\.1:8000"\} 3/);
  assert.match(text, /kvroute_kv_event_replays_total\{endpoint="10\.0\.0\.1:8000",result="failed"\} 1/);
  assert.match(text, /kvroute_kv_event_unknown_topic_messages_total\{topic="kv@10\.9\.9\.9:8000@m"\} 7/);
  assert.match(text, /kvroute_kv_event_subscriber_connected\{endpoint="10\.0\.0\.1:8000"\} 1/);
  assert.match(text, /kvroute_index_entries\{backend="memory"\} 100/);
  assert.match(text, /kvroute_index_endpoint_entries\{endpoint="10\.0\.0\.1:8000"\} 100/);
  assert.match(text, /kvroute_index_unknown_parents_total\{backend="memory"\} 4/);
  assert.match(text, /kvroute_session_bindings 3/);
  assert.match(text, /kvroute_tokenization_duration_seconds_count 1/);
  // Values are read again at the next scrape; a provider that throws does not break the scrape.
  ev.endpoints['10.0.0.1:8000'].events = 50;
  sessions = 4;
  m.attachIndexStats(() => {
    throw new Error('index gone');
  });
  const again = await m.registry.metrics();
  assert.match(again, /kvroute_kv_events_total\{endpoint="10\.0\.0\.1:8000"\} 50/);
  assert.match(again, /kvroute_session_bindings 4/);
  assert.doesNotMatch(again, /kvroute_index_entries\{/);
  assert.equal(m.indexStats(), undefined);
});
