import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { KvrError } from '../core/errors.js';
import { loadEncoder } from './encoder.js';
import { TokenizeWorkerPool } from './worker-pool.js';

test('worker pool: queued batches come back in order and equal inline encoding', async () => {
  const pool = new TokenizeWorkerPool({ kind: 'builtin' }, 2);
  const enc = loadEncoder({ kind: 'builtin' });
  try {
    const batches = Array.from({ length: 6 }, (_, i) => [`batch ${i}: the cache of replica ${i}`, ' '.repeat(i) + 'x y z', '']);
    const results = await Promise.all(batches.map((b) => pool.encodeBatch(b)));
    results.forEach((r, i) => assert.deepEqual(r.map((a) => Array.from(a)), batches[i].map((t) => enc.encodePlain(t))));
    const s = pool.stats();
    assert.equal(s.done, 6);
    assert.ok(s.workers >= 1 && s.workers <= 2);
    assert.equal(s.queued, 0);
  } finally {
    await pool.close();
  }
  await assert.rejects(pool.encodeBatch(['late']), (e: unknown) => e instanceof KvrError && /closed/.test(e.message));
});

test('worker pool: a worker that cannot load its tokenizer fails jobs with a KvrError', async () => {
  const pool = new TokenizeWorkerPool({ kind: 'dir', dir: 'no-such-tokenizer-folder' }, 1);
  try {
    await assert.rejects(pool.encodeBatch(['x']), (e: unknown) => e instanceof KvrError && /does not exist/.test(e.message));
    assert.equal(pool.stats().failed, 1);
  } finally {
    await pool.close();
  }
});

test('worker pool: close() rejects queued work and terminates workers', async () => {
  const pool = new TokenizeWorkerPool({ kind: 'builtin' }, 1);
  const jobs = [pool.encodeBatch(['a']), pool.encodeBatch(['b']), pool.encodeBatch(['c'])];
  const settled = Promise.allSettled(jobs);
  await pool.close();
  const out = await settled;
  assert.ok(out.every((o) => o.status === 'rejected' || o.status === 'fulfilled'));
  assert.ok(out.some((o) => o.status === 'rejected'), 'queued jobs are failed, not left hanging');
  assert.equal(pool.stats().workers, 0);
});

/** Settles `p` to its rejection's KvrError code, or 'ok'. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof KvrError ? e.code : `not a KvrError: ${String(e)}`;
  }
}

test('worker pool: beyond maxQueued waiting jobs, a job is refused with KVR_ERR_OVERLOADED and counted', async () => {
  const pool = new TokenizeWorkerPool({ kind: 'builtin' }, 1, { maxQueued: 2 });
  try {
    // Same tick: the first job takes the only worker, two wait, the fourth finds the queue full.
    const jobs = ['a b', 'c d', 'e f', 'g h'].map((t) => outcome(pool.encodeBatch([t])));
    assert.equal(pool.stats().queued, 2);
    assert.deepEqual(await Promise.all(jobs), ['ok', 'ok', 'ok', 'KVR_ERR_OVERLOADED']);
    const s = pool.stats();
    assert.equal(s.rejectedQueueFull, 1);
    assert.equal(s.started, 3, 'the refused job never reached a worker');
    assert.deepEqual([s.queued, s.running, s.done], [0, 0, 3]);
    // The queue drained: a new job is accepted again.
    assert.equal(await outcome(pool.encodeBatch(['again'])), 'ok');
  } finally {
    await pool.close();
  }
  assert.throws(() => new TokenizeWorkerPool({ kind: 'builtin' }, 1, { maxQueued: -1 }), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_CONFIG');
});

test('worker pool: an aborted queued job leaves the queue and never runs; its listener is removed', async () => {
  const { getEventListeners } = EventEmitter;
  const pool = new TokenizeWorkerPool({ kind: 'builtin' }, 1, { maxQueued: 8 });
  try {
    const ac = new AbortController();
    const first = outcome(pool.encodeBatch(['running first']));
    const aborted = outcome(pool.encodeBatch(['never tokenized'], ac.signal));
    const third = outcome(pool.encodeBatch(['runs after the aborted one']));
    assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
    ac.abort();
    assert.equal(pool.stats().queued, 1, 'the aborted job is out of the queue at once');
    assert.deepEqual(await Promise.all([first, aborted, third]), ['ok', 'KVR_ERR_CLIENT_CLOSED', 'ok']);
    const s = pool.stats();
    assert.equal(s.started, 2, 'only the two live jobs reached the worker');
    assert.deepEqual([s.cancelledQueued, s.cancelledRunning, s.done, s.queued, s.running], [1, 0, 2, 0, 0]);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0, 'no listener left on the signal');
    // A signal that already fired: refused before queueing.
    assert.equal(await outcome(pool.encodeBatch(['x'], ac.signal)), 'KVR_ERR_CLIENT_CLOSED');
    assert.equal(pool.stats().started, 2);
    // Settled jobs leave no listener behind either.
    const live = new AbortController();
    assert.equal(await outcome(pool.encodeBatch(['y'], live.signal)), 'ok');
    assert.equal(getEventListeners(live.signal, 'abort').length, 0);
  } finally {
    await pool.close();
  }
});

test('worker pool: a job aborted while running rejects at once, its result is dropped, the worker goes on', async () => {
  const pool = new TokenizeWorkerPool({ kind: 'builtin' }, 1);
  try {
    const ac = new AbortController();
    const running = outcome(pool.encodeBatch(['x '.repeat(200_000)], ac.signal));
    assert.equal(pool.stats().running, 1);
    ac.abort();
    assert.equal(await running, 'KVR_ERR_CLIENT_CLOSED');
    assert.equal(pool.stats().cancelledRunning, 1);
    const next = await pool.encodeBatch(['after the abort']);
    assert.deepEqual(Array.from(next[0]), loadEncoder({ kind: 'builtin' }).encodePlain('after the abort'));
    const s = pool.stats();
    assert.deepEqual([s.done, s.failed, s.queued, s.running], [1, 0, 0, 0], 'the dropped answer is neither done nor failed; nothing pending');
  } finally {
    await pool.close();
  }
});
