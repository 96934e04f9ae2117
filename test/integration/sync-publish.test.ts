/**
 * Router sync publishing on a real redis-server (src/sync/sync-publisher.ts), the stream read back
 * with a plain Redis client, time from a ManualClock: leading-edge batching (the default) sends a
 * pick after a quiet spell at once and holds what follows within `flushMs` of the last send until
 * then; `flushMs` 0 sends at once unless an XADD is in flight and batches what is picked
 * meanwhile; `flushLeading: false` (the behaviour before) always waits for its timer.
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ManualClock } from '../../src/core/clock.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { createWorkload } from '../../src/bench/workloads.js';
import { toInferenceRequest } from '../../src/bench/prompt.js';
import { EndpointPool } from '../../src/datalayer/endpoint-pool.js';
import type { KvrouteScheduler } from '../../src/scheduling/scheduler.js';
import { RouterSync } from '../../src/sync/router-sync.js';
import { parseBatch } from '../../src/sync/sync-records.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/sync-fleet.js';

let redis: RedisServer;
let client: Redis;
before(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
});
after(async () => {
  client?.disconnect();
  await redis?.stop();
});

const w = createWorkload('shared-prefix', { seed: 3, requests: 40, groups: 4, promptsPerGroup: 10, systemTokens: 512, questionTokens: 64, outputTokens: 8, rate: 10 });
const pool = new EndpointPool([{ url: 'http://127.0.0.1:20001' }, { url: 'http://127.0.0.1:20002' }]);

/** Schedules requests `from`..`to` (exclusive) back to back, as picks of router `tag`. */
async function pick(sched: KvrouteScheduler, tag: string, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const r = w.requests[i];
    const req = toInferenceRequest(w.model, r, r.prompt(), 0);
    (req as { id: string }).id = `${tag}-${i}`;
    await sched.schedule(req, pool.all());
  }
}

/** Pick records of `stream`, in stream order. */
async function picksIn(stream: string): Promise<string[]> {
  const entries = (await client.xrange(stream, '-', '+')) as [string, string[]][];
  return entries.flatMap(([, f]) => parseBatch(f[f.indexOf('b') + 1]).records).flatMap((r) => (r.t === 'p' ? [r.q] : []));
}

test('leading edge (default): a pick after a quiet spell goes at once; one within flushMs of the last send waits for it', async () => {
  const clock = new ManualClock(Date.now());
  const sched = buildScheduler({ preset: 'default' });
  const stream = 'test:publish:leading';
  const sync = await RouterSync.start({ url: redis.url, stream, routerId: 'L', scheduler: sched, endpoints: pool, clock });
  try {
    await waitFor('the start-up heartbeat', () => sync.stats().sent === 1, 3_000);
    clock.advance(5); // a quiet spell: no timer is pending, nothing moves
    await pick(sched, 'L', 0, 1);
    await waitFor('the pick in the stream with no timer firing', () => sync.stats().sent === 2, 3_000);
    await pick(sched, 'L', 1, 3); // within 5 ms of the last send
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await picksIn(stream), ['L-0'], 'picks within flushMs of the last send wait');
    clock.advance(5);
    await waitFor('the held picks in the stream', () => sync.stats().sent === 4, 3_000);
    assert.deepEqual(await picksIn(stream), ['L-0', 'L-1', 'L-2']);
    assert.equal(sync.stats().batches, 3, 'heartbeat, L-0, then L-1 and L-2 together');
  } finally {
    await sync.close();
  }
});

test('flushMs 0: a pick is sent at once without any timer; picks made while an XADD is in flight go as one batch', async () => {
  const clock = new ManualClock(Date.now()); // never advanced: a timer-driven flush would never fire
  const sched = buildScheduler({ preset: 'default' });
  const stream = 'test:publish:adaptive';
  const sync = await RouterSync.start({ url: redis.url, stream, routerId: 'A', scheduler: sched, endpoints: pool, clock, flushMs: 0 });
  try {
    await pick(sched, 'A', 0, 1);
    await waitFor('the single pick in the stream', () => sync.stats().sent >= 2, 3_000); // heartbeat + pick
    assert.deepEqual(await picksIn(stream), ['A-0']);
    const b0 = sync.stats().batches;
    await pick(sched, 'A', 1, 21); // 20 picks back to back, no I/O turn in between
    await waitFor('the 20 picks in the stream', () => sync.stats().sent >= 22, 3_000);
    const batches = sync.stats().batches - b0;
    assert.ok(batches >= 1 && batches <= 3, `20 picks went in ${batches} XADDs (one in flight at a time)`);
    assert.deepEqual(await picksIn(stream), Array.from({ length: 21 }, (_, i) => `A-${i}`), 'every pick, in order');
    assert.equal(sync.stats().dropped, 0);
  } finally {
    await sync.close();
  }
});

test('flushLeading false (before): records wait for the timer, then go as one batch', async () => {
  const clock = new ManualClock(Date.now());
  const sched = buildScheduler({ preset: 'default' });
  const stream = 'test:publish:timer';
  const sync = await RouterSync.start({ url: redis.url, stream, routerId: 'T', scheduler: sched, endpoints: pool, clock, flushMs: 5, flushLeading: false });
  try {
    await pick(sched, 'T', 0, 5);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await client.xlen(stream), 0, 'nothing sent before the 5 ms timer fires');
    clock.advance(5);
    await waitFor('the batch in the stream', () => sync.stats().sent >= 6, 3_000);
    assert.equal(sync.stats().batches, 1, 'heartbeat and 5 picks in one XADD');
    assert.deepEqual(await picksIn(stream), ['T-0', 'T-1', 'T-2', 'T-3', 'T-4']);
  } finally {
    await sync.close();
  }
});
