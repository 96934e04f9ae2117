import { test } from 'node:test';
import assert from 'node:assert/strict';
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
