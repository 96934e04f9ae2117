/**
 * Defect 1 (issue 10): a client that goes away before the upstream call must end its request at
 * once and leak nothing: no upstream request, load tracker and `kvroute_inflight_requests` back
 * to 0, counted as a 499 client abort. One case per pre-upstream stage: body read, tokenization,
 * index lookup, burst wait; plus an abort mid-stream, which is logged and counted as 499 (not as
 * 200 or 502). Real HTTP, the real simulator, a precise scorer whose services we can hold.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { request } from 'undici';
import type { KvCacheServices, PrefixRun } from '../../src/scheduling/kv-cache-services.js';
import { FAULT_MODEL, schedulerFrom, startFaultRig, until, type FaultRig } from '../helpers/fault-fleet.js';

/** A gate a service call waits on: `entered` resolves when a call arrives, `open()` lets it go on. */
function gate() {
  let open!: () => void;
  let entered!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const arrived = new Promise<void>((r) => (entered = r));
  return { opened, arrived, open, entered };
}

/** Precise-scorer services whose tokenize / lookup wait on gates when the prompt says so. */
function slowServices(gates: { tokenize?: ReturnType<typeof gate>; lookup?: ReturnType<typeof gate> }): KvCacheServices {
  return {
    blockSize: 16,
    async tokenize(req) {
      if (req.promptText.includes('hold-tokenize') && gates.tokenize) {
        gates.tokenize.entered();
        await gates.tokenize.opened;
      }
      return Array.from({ length: 64 }, (_, i) => (i * 7 + req.promptText.length) % 1000);
    },
    requestKeys: (_model, tokens) => Array.from({ length: Math.floor(tokens.length / 16) }, (_, i) => i + 1),
    async lookup(_keys, ids): Promise<PrefixRun[]> {
      if (gates.lookup) {
        gates.lookup.entered();
        await gates.lookup.opened;
      }
      return ids.map(() => ({ blocks: 0, weighted: 0 }));
    },
  };
}

const PRECISE_PROFILE = (burstWaitMs: number) => `
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
  - type: precise-prefix-cache-scorer
    parameters: { burstWaitMs: ${burstWaitMs} }
  - type: max-score-picker
schedulingProfiles:
  - name: default
    plugins:
      - pluginRef: precise-prefix-cache-scorer
        weight: 1
      - pluginRef: max-score-picker
`;

/** Nothing in flight anywhere: load tracker, gauge, engines. */
async function assertNothingLeaked(rig: FaultRig, what: string, o: { enginesUntouched?: boolean } = {}): Promise<void> {
  const clean = await until(async () => {
    const load = rig.router.pool.all().every((ep) => rig.scheduler.load.load(ep).inflight === 0 && rig.scheduler.load.load(ep).prefillTokens === 0);
    return load && (await rig.metric('kvroute_inflight_requests')) === 0;
  }, 3000);
  assert.ok(clean, `${what}: load tracker / kvroute_inflight_requests went back to 0 (load ${JSON.stringify(rig.router.pool.all().map((ep) => rig.scheduler.load.load(ep)))})`);
  if (o.enginesUntouched === false) return;
  for (const r of rig.fleet.replicas) {
    const s = r.engine.stats();
    assert.equal(s.promptTokens + s.running + s.waiting, 0, `${what}: replica ${r.id} never saw the aborted request`);
  }
}

async function abortAfter(rig: FaultRig, prompt: string, stageReached: Promise<void>): Promise<void> {
  const ac = new AbortController();
  const pending = request(`${rig.router.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: FAULT_MODEL, prompt, max_tokens: 4 }),
    signal: ac.signal,
  }).catch(() => undefined);
  await stageReached;
  ac.abort();
  await pending;
}

test('abort during the body read: nothing sent upstream, counted as a 499 at stage body', async () => {
  const rig = await startFaultRig();
  try {
    const { port } = new URL(rig.router.url);
    const sock = connect(Number(port), '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(`POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{"model":"${FAULT_MODEL}","prompt":"`);
    assert.ok(await until(() => rig.router.lifecycles.active === 1), 'the request is being read');
    sock.destroy();
    assert.ok(await until(async () => (await rig.metric('kvroute_client_aborts_total', { stage: 'body' })) === 1), 'counted as a client abort at stage body');
    await assertNothingLeaked(rig, 'body');
    assert.equal(rig.router.lifecycles.active, 0);
  } finally {
    await rig.close();
  }
});

for (const stage of ['tokenize', 'lookup'] as const) {
  test(`abort during ${stage === 'tokenize' ? 'tokenization' : 'the index lookup'}: the request ends at once, nothing is sent upstream or leaked`, async () => {
    const g = gate();
    const scheduler = schedulerFrom(PRECISE_PROFILE(50), { kvCache: slowServices(stage === 'tokenize' ? { tokenize: g } : { lookup: g }) });
    const rig = await startFaultRig({ scheduler });
    try {
      await abortAfter(rig, 'hold-tokenize please', g.arrived);
      assert.ok(await until(async () => (await rig.metric('kvroute_client_aborts_total', { stage: 'schedule' })) === 1), 'ended as a client abort while scheduling, before the service answered');
      assert.equal(rig.router.lifecycles.active, 0);
      g.open(); // the service answers late: the late pick is completed at once
      await new Promise((r) => setTimeout(r, 100));
      await assertNothingLeaked(rig, stage);
      assert.equal(await rig.metric('kvroute_upstream_errors_total'), 0, 'a client abort is not an upstream error');
      // The router still serves.
      const ok = await rig.complete({ prompt: 'after the abort' });
      assert.equal(ok.status, 200);
    } finally {
      g.open();
      await rig.close();
    }
  });
}

test('abort during the burst wait behind a slow sibling: ends at once, the sibling is unaffected', async () => {
  const slow = gate();
  const services = slowServices({});
  const lookups: number[] = [];
  const svc: KvCacheServices = {
    ...services,
    async lookup(keys, ids) {
      lookups.push(lookups.length);
      if (lookups.length === 1) {
        slow.entered();
        await slow.opened; // the first request's lookup is slow (a Redis round trip)
      }
      return services.lookup(keys, ids);
    },
  };
  const rig = await startFaultRig({ scheduler: schedulerFrom(PRECISE_PROFILE(10_000), { kvCache: svc }) });
  try {
    const first = rig.complete({ prompt: 'first sibling' });
    await slow.arrived;
    // The second request's lookup returns at once; it then waits its turn behind the first.
    const second = gate();
    void until(() => lookups.length === 2).then(() => setTimeout(() => second.entered(), 20));
    await abortAfter(rig, 'second sibling', second.arrived);
    assert.ok(await until(async () => (await rig.metric('kvroute_client_aborts_total', { stage: 'schedule' })) === 1), 'the waiting sibling ended as a client abort');
    slow.open();
    const r = await first;
    assert.equal(r.status, 200, 'the slow sibling completes normally');
    await assertNothingLeaked(rig, 'burst wait', { enginesUntouched: false });
    const total = rig.fleet.replicas.reduce((n, x) => n + x.engine.stats().requestSuccess, 0);
    assert.equal(total, 1, 'exactly one request (the first sibling) reached a replica');
  } finally {
    slow.open();
    await rig.close();
  }
});

test('a client aborting mid-stream is logged and counted as 499, apart from errors, and frees the replica', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { for (const l of c.toString().split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  const rig = await startFaultRig({ fleet: { timeScale: 1 }, router: { logger: pino({ level: 'info' }, sink) } });
  try {
    const ac = new AbortController();
    const res = await request(`${rig.router.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'abort-me', ...rig.pin(0) },
      body: JSON.stringify({ model: FAULT_MODEL, prompt: 'a long story', max_tokens: 2000, ignore_eos: true, stream: true }),
      signal: ac.signal,
    });
    assert.equal(res.statusCode, 200);
    for await (const chunk of res.body) if (String(chunk).includes('"text"')) break;
    ac.abort();
    assert.ok(await until(async () => (await rig.metric('kvroute_client_aborts_total', { stage: 'streaming' })) === 1), 'counted as a client abort while streaming');
    assert.equal(await rig.metric('kvroute_requests_total', { status: '499' }), 1, 'kvroute_requests_total says 499');
    assert.equal(await rig.metric('kvroute_requests_total', { status: '200' }), 0);
    assert.equal(await rig.metric('kvroute_upstream_errors_total'), 0, 'not an upstream error');
    const line = lines.find((l) => l.reqId === 'abort-me' && l.msg === 'request');
    assert.equal(line?.status, 499);
    assert.equal(line?.outcome, 'aborted');
    assert.ok(await until(() => rig.fleet.replicas[0].engine.stats().running === 0), 'the replica stopped generating');
    assert.equal(rig.scheduler.load.load(rig.router.pool.all()[0]).inflight, 0);
    assert.equal(await rig.metric('kvroute_inflight_requests'), 0);
  } finally {
    await rig.close();
  }
});

