/**
 * Active-active replicas as deployed: a `kvroute serve --sync-redis` gateway in its own process,
 * killed with SIGKILL while a request is in flight through it (no completion record, no bye), next
 * to an in-process synced router B, a real redis-server and a simulated fleet over HTTP. The
 * killed gateway's in-flight request must not stay counted on B: restarted under the same
 * `--router-id` (a StatefulSet pod), its first heartbeat reports nothing in flight and B drops the
 * entry at once (the liveness window never fires: the id is heartbeating again); not restarted,
 * B drops it when the liveness window passes.
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import type { SimFleet } from '../../src/sim/index.js';
import { topicDocument } from '../../src/demo/demo-workload.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { complete, remoteInflight, startSyncFleet, startTestRouter, waitFor, type TestRouter } from '../helpers/sync-fleet.js';
import { SIM_MODEL } from '../helpers/sim-router.js';

let redis: RedisServer;
let fleet: SimFleet;
const routers: TestRouter[] = [];
const gateways: ChildGateway[] = [];
let streamSeq = 0;

before(async () => {
  redis = await startRedisServer();
  fleet = await startSyncFleet(2, 1, 11);
});

after(async () => {
  for (const g of gateways) await g.stop('SIGKILL');
  for (const r of routers) await r.router.close();
  await fleet?.close();
  await redis?.stop();
});

const endpoints = () => fleet.replicas.map((r) => r.url.replace(/^http:\/\//, '')).join(',');

async function gateway(id: string, stream: string): Promise<ChildGateway> {
  const g = await startChildGateway(endpoints(), ['--sync-redis', redis.url, '--sync-stream', stream, '--router-id', id]);
  gateways.push(g);
  return g;
}

/** Starts a long request through `g` and leaves it in flight; its rejection (the kill) is swallowed. */
function longRequest(g: ChildGateway, tag: string): Promise<unknown> {
  return request(`${g.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: SIM_MODEL, prompt: topicDocument(tag, 200), max_tokens: 3000, ignore_eos: true, stream: true }),
  }).then((r) => r.body.text()).catch((err: unknown) => err);
}

test('a gateway killed mid-request and restarted under the same id: the others drop its in-flight request at its first heartbeat', async () => {
  const stream = `test:killed:${++streamSeq}`;
  // B's liveness window is long on purpose: only the restarted gateway's heartbeat can clear the entry.
  const b = await startTestRouter(fleet, { url: redis.url, routerId: 'B', stream, heartbeatMs: 200, deadAfterMs: 60_000 });
  routers.push(b);
  const g = await gateway('G', stream);
  const pending = longRequest(g, 'Killed gateway, restarted');
  await waitFor('G\'s pick to reach B', () => remoteInflight(b) === 1, 10_000);
  await g.stop('SIGKILL');
  await pending;
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(remoteInflight(b), 1, 'killed without a bye: B still counts G\'s request (no completion will come)');
  const g2 = await gateway('G', stream);
  await waitFor('B to drop the killed gateway\'s request', () => remoteInflight(b) === 0, 5_000);
  assert.equal(b.router.sync!.stats().reconciled, 1, 'dropped by reconciliation with G\'s heartbeat');
  assert.equal(b.router.sync!.stats().remoteRouters, 1, 'G (restarted) is alive for B');
  // The restarted gateway's own traffic is counted again, and released on completion.
  const before = b.router.sync!.stats().picksApplied;
  const res = await request(`${g2.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: SIM_MODEL, prompt: topicDocument('after restart', 100), max_tokens: 4 }) });
  assert.equal(res.statusCode, 200, await res.body.text());
  await waitFor('G2\'s pick to reach B', () => b.router.sync!.stats().picksApplied > before);
  await waitFor('G2\'s completion to reach B', () => remoteInflight(b) === 0);
  assert.equal((await complete(b.router, topicDocument('B after', 100))).status, 200);
});

test('a gateway killed mid-request and not restarted: the others drop its in-flight request after the liveness window', async () => {
  const stream = `test:killed:${++streamSeq}`;
  const b = await startTestRouter(fleet, { url: redis.url, routerId: 'B', stream, heartbeatMs: 200, deadAfterMs: 2_500 });
  routers.push(b);
  const g = await gateway('G', stream);
  const pending = longRequest(g, 'Killed gateway, gone');
  await waitFor('G\'s pick to reach B', () => remoteInflight(b) === 1, 10_000);
  assert.equal(b.router.sync!.stats().remoteRouters, 1);
  await g.stop('SIGKILL');
  await pending;
  assert.equal(remoteInflight(b), 1, 'right after the kill, within the liveness window, it is still counted');
  await waitFor('B to drop the dead gateway\'s request', () => remoteInflight(b) === 0, 6_000);
  assert.equal(b.router.sync!.stats().remoteRouters, 0, 'G is dead for B');
  assert.equal(b.router.sync!.stats().reconciled, 0, 'dropped by the liveness window, not by a heartbeat');
});
