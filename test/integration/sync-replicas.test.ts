/**
 * Active-active router replicas (src/sync, docs/active-active.md) on real parts: a real
 * redis-server, a simulated vLLM fleet over HTTP and kvroute gateways with the default profile.
 * Replicas share picks (approximate prefix keys, cold picks) and in-flight load through one Redis
 * stream; a replica that starts late replays it; a dead replica's load goes away; Redis down
 * degrades to local routing.
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { SimFleet } from '../../src/sim/index.js';
import { topicDocument } from '../../src/demo/demo-workload.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { complete, remoteInflight, startSyncFleet, startTestRouter, waitFor, type TestRouter } from '../helpers/sync-fleet.js';
import type { RouterSyncFlags } from '../../src/sync/start-router-sync.js';

let redis: RedisServer;
let fleet: SimFleet;
const open: TestRouter[] = [];
let streamSeq = 0;

before(async () => {
  redis = await startRedisServer();
  fleet = await startSyncFleet(3, 1, 7);
});

after(async () => {
  for (const r of open) await r.router.close();
  await fleet?.close();
  await redis?.stop();
});

function flags(routerId: string, stream: string): RouterSyncFlags {
  return { url: redis.url, routerId, stream, heartbeatMs: 200, flushMs: 1, retryMs: 100 };
}

async function routers(ids: string[], sync = true): Promise<TestRouter[]> {
  const stream = `test:sync:${++streamSeq}`;
  const out: TestRouter[] = [];
  for (const id of ids) {
    const r = await startTestRouter(fleet, sync ? flags(id, stream) : undefined);
    open.push(r);
    out.push(r);
  }
  return out;
}

function picksApplied(r: TestRouter): number {
  return r.router.sync!.stats().picksApplied;
}

/** Sends `prompt` through `from` and waits until every router in `others` applied that pick. */
async function sendSynced(from: TestRouter, others: TestRouter[], prompt: string, maxTokens = 4) {
  const before = others.map(picksApplied);
  const res = await complete(from.router, prompt, maxTokens);
  await waitFor('the pick to reach the other replicas', () => others.every((o, i) => picksApplied(o) > before[i]));
  return res;
}

/**
 * Unrelated traffic (distinct documents) through `rs`, alternating, each pick applied everywhere:
 * keeps a test's conversation from being most of the recent requests, which the default
 * profile's common-prefix rule would (rightly) treat as a prefix all traffic shares.
 */
async function otherTraffic(rs: TestRouter[], n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const from = rs[i % rs.length];
    const res = await sendSynced(from, rs.filter((r) => r !== from), topicDocument(`${tag} other ${i}`, 120));
    assert.equal(res.status, 200);
  }
}

function counts(endpoints: string[]): number[] {
  const m = new Map<string, number>();
  for (const e of endpoints) m.set(e, (m.get(e) ?? 0) + 1);
  const out = [...m.values()];
  while (out.length < 3) out.push(0);
  return out.sort((a, b) => a - b);
}

test('a conversation sent alternately to router A and B stays on the replica holding its prefix', async () => {
  const [a, b] = await routers(['A', 'B']);
  let prompt = topicDocument('Alternating conversation', 300);
  const served: string[] = [];
  for (let turn = 0; turn < 6; turn++) {
    await otherTraffic([a, b], 2, `conversation turn ${turn}`);
    prompt += `\nUser: question number ${turn} about the document?\nAssistant:`;
    const [from, other] = turn % 2 === 0 ? [a, b] : [b, a];
    const res = await sendSynced(from, [other], prompt);
    assert.equal(res.status, 200, res.text);
    if (turn > 0) assert.equal(res.cache, 'hit', `turn ${turn} (router ${turn % 2 === 0 ? 'A' : 'B'}) predicts a prefix hit`);
    served.push(res.endpoint);
    prompt += ` answer ${turn}.`;
  }
  assert.deepEqual(new Set(served).size, 1, `every turn on one replica: ${served.join(', ')}`);

  // Control: the same alternation without sync; B has never seen the prefix.
  const [c, d] = await routers(['C', 'D'], false);
  const doc = topicDocument('Alternating conversation, no sync', 300);
  assert.equal((await complete(c.router, `${doc}\nUser: first?`)).status, 200);
  const second = await complete(d.router, `${doc}\nUser: first? answer.\nUser: second?`);
  assert.equal(second.cache, 'miss', 'without sync the other router cannot know the prefix');
});

test('a burst split between two synced routers lands like one router\'s burst; remote load is tracked and released', async () => {
  const order = ['A', 'A', 'B', 'A', 'A', 'B'];
  const [solo] = await routers(['S'], false);
  const soloFired: Promise<{ endpoint: string; status: number }>[] = [];
  for (let i = 0; i < order.length; i++) {
    soloFired.push(complete(solo.router, topicDocument(`Solo burst ${i}`, 200), 300));
    await waitFor('the solo pick', () => solo.scheduler.load.load(solo.router.pool.all()[0]).inflight + solo.scheduler.load.load(solo.router.pool.all()[1]).inflight + solo.scheduler.load.load(solo.router.pool.all()[2]).inflight === i + 1);
  }
  const soloRes = await Promise.all(soloFired);
  assert.ok(soloRes.every((r) => r.status === 200));

  const [a, b] = await routers(['A', 'B']);
  const fired: Promise<{ endpoint: string; status: number }>[] = [];
  for (let i = 0; i < order.length; i++) {
    const [from, other] = order[i] === 'A' ? [a, b] : [b, a];
    const before = picksApplied(other);
    fired.push(complete(from.router, topicDocument(`Synced burst ${i}`, 200), 300));
    await waitFor('the pick to reach the other replica', () => picksApplied(other) > before);
  }
  // Still in flight: each router carries the other's requests as remote load.
  assert.equal(remoteInflight(a), 2, 'A sees B\'s 2 in-flight requests');
  assert.equal(remoteInflight(b), 4, 'B sees A\'s 4 in-flight requests');
  const res = await Promise.all(fired);
  assert.ok(res.every((r) => r.status === 200));
  assert.deepEqual(counts(res.map((r) => r.endpoint)), counts(soloRes.map((r) => r.endpoint)), 'same spread as one router');
  assert.deepEqual(counts(res.map((r) => r.endpoint)), [2, 2, 2], 'no double stacking');
  await waitFor('remote load to drain', () => remoteInflight(a) === 0 && remoteInflight(b) === 0);
});

test('a router started late routes a known prefix to its holder from its first request, and knows what is in flight', async () => {
  const [a, b] = await routers(['A', 'B']);
  await otherTraffic([a, b], 4, 'late starter');
  const doc = topicDocument('Late starter', 300);
  const first = await sendSynced(a, [b], `${doc}\nUser: one?`);
  const second = await sendSynced(b, [a], `${doc}\nUser: two?`);
  assert.equal(second.endpoint, first.endpoint);
  // A long request in flight on A while C starts.
  const long = complete(a.router, topicDocument('Late starter, long one', 200), 800);
  await waitFor('A\'s long pick to reach B', () => remoteInflight(b) === 1);
  const stream = `test:sync:${streamSeq}`;
  const c = await startTestRouter(fleet, flags('C', stream));
  open.push(c);
  assert.equal(c.router.sync!.stats().replayed, true);
  assert.equal(remoteInflight(c), 1, 'C replayed A\'s in-flight request');
  const late = await complete(c.router, `${doc}\nUser: three?`);
  assert.equal(late.status, 200);
  assert.equal(late.cache, 'hit', 'C predicts the hit on its very first request');
  assert.equal(late.endpoint, first.endpoint, 'C routes to the prefix holder');
  assert.equal((await long).status, 200);
  await waitFor('remote load to drain on C', () => remoteInflight(c) === 0);
});

test('a router that dies takes its remote load with it (no heartbeat); one that stops says bye', async () => {
  const [a, b, c] = await routers(['A', 'B', 'C']);
  const long = complete(a.router, topicDocument('Dying router', 200), 1200);
  await waitFor('A\'s pick to reach B', () => remoteInflight(b) === 1);
  await a.router.sync!.abandon(); // A's sync dies like a crashed process: no bye, no heartbeats
  await waitFor('B to drop the dead router\'s load', () => remoteInflight(b) === 0, 5_000);
  assert.equal(b.router.sync!.stats().remoteRouters, 1, 'only C is still alive for B');
  // A clean stop: C's in-flight load is dropped at once by its bye.
  const long2 = complete(c.router, topicDocument('Stopping router', 200), 1200);
  await waitFor('C\'s pick to reach B', () => remoteInflight(b) === 1);
  await c.router.sync!.close();
  await waitFor('B to drop the stopped router\'s load', () => remoteInflight(b) === 0, 1_000);
  assert.equal((await long).status, 200);
  assert.equal((await long2).status, 200);
});

test('Redis down: routing continues on local state (records dropped, counted); when it is back, sync resumes', async () => {
  const [a, b] = await routers(['A', 'B']);
  await sendSynced(a, [b], topicDocument('Before the outage', 100));
  await redis.kill();
  for (let i = 0; i < 4; i++) {
    const r = await complete((i % 2 === 0 ? a : b).router, topicDocument(`During the outage ${i}`, 100));
    assert.equal(r.status, 200, `request ${i} served during the outage`);
  }
  await waitFor('dropped records to be counted', () => a.router.sync!.stats().dropped > 0 && b.router.sync!.stats().dropped > 0);
  assert.equal(a.router.sync!.stats().connected, false);
  await redis.restart();
  await waitFor('both replicas to reconnect', () => a.router.sync!.stats().connected && b.router.sync!.stats().connected, 10_000);
  const doc = topicDocument('After the outage', 300);
  const first = await sendSynced(a, [b], `${doc}\nUser: one?`);
  const second = await complete(b.router, `${doc}\nUser: two?`);
  assert.equal(second.cache, 'hit', 'B learned A\'s pick again');
  assert.equal(second.endpoint, first.endpoint);
});
