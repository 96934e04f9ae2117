import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../core/clock.js';
import { loadMallocTrim } from './malloc-trim.js';
import { IdleGc, inspectorGc, startIdleGc } from './idle-gc.js';

function harness(afterMs: number) {
  const clock = new ManualClock(0);
  let elu = 0;
  let runs = 0;
  const seconds: number[] = [];
  const g = new IdleGc({ clock, afterMs, checkMs: 1000, utilization: () => elu, gc: () => void runs++, onCollect: (s) => seconds.push(s) }).start();
  const windows = (n: number, u: number) => {
    elu = u;
    clock.advance(n * 1000);
  };
  return { g, windows, runs: () => runs, seconds };
}

test('one collection after a busy period turns idle for afterMs, none while busy or never busy', async () => {
  const h = harness(5000);
  h.windows(10, 0.01);
  assert.equal(h.runs(), 0, 'idle since the start: nothing to give back, no collection');
  h.windows(3, 0.6);
  assert.equal(h.runs(), 0, 'busy: no collection while serving');
  h.windows(4, 0.01);
  assert.equal(h.runs(), 0, '4 s idle < 5 s');
  h.windows(1, 0.01);
  assert.equal(h.runs(), 1, '5 s idle after the busy period: one collection');
  await new Promise((r) => setImmediate(r));
  assert.equal(h.seconds.length, 1, 'its duration reported');
  h.windows(30, 0.01);
  assert.equal(h.runs(), 1, 'once per busy -> idle transition, not every 5 s');
  h.g.stop();
});

test('light traffic between the thresholds neither arms nor counts as idle', () => {
  const h = harness(3000);
  h.windows(2, 0.5); // armed
  h.windows(2, 0.01);
  h.windows(1, 0.1); // a light window resets the idle run
  h.windows(2, 0.01);
  assert.equal(h.runs(), 0, 'the idle run restarted after the light window: 2 s < 3 s');
  h.windows(1, 0.01);
  assert.equal(h.runs(), 1);
  h.windows(10, 0.1);
  assert.equal(h.runs(), 1, 'steady light traffic never arms it again');
  h.g.stop();
  h.windows(2, 0.9);
  h.windows(10, 0.0);
  assert.equal(h.runs(), 1, 'stopped: no more sampling');
});

test('bad settings are refused with a message; 0 turns it off; a failed collection is reported, not thrown', async () => {
  const clock = new ManualClock(0);
  assert.throws(() => new IdleGc({ clock, afterMs: 0, utilization: () => 0, gc: () => {} }), /idle time must be > 0/);
  assert.throws(() => new IdleGc({ clock, afterMs: 10, busyElu: 0.1, idleElu: 0.5, utilization: () => 0, gc: () => {} }), /idleElu <= busyElu/);
  const metrics = { idleGcRuns: { inc() {} }, idleGcSeconds: { inc() {} }, idleReleasedBytes: { inc() {} } };
  assert.equal(startIdleGc(0, clock, metrics, { debug() {}, info() {}, warn() {} }), undefined, '--idle-gc-after 0: nothing runs');
  let u = 0.9;
  const errors: string[] = [];
  const g = new IdleGc({ clock, afterMs: 1000, utilization: () => u, gc: () => Promise.reject(new Error('no inspector')), onError: (e) => errors.push(e.message) });
  await g.check();
  u = 0;
  clock.advance(2000);
  await g.check();
  assert.deepEqual(errors, ['no inspector']);
  assert.equal(g.collections, 0);
});

test('the default collection (inspector HeapProfiler.collectGarbage) frees garbage and shrinks the young generation', async () => {
  let junk: unknown[] | undefined = Array.from({ length: 300_000 }, (_, i) => ({ i, s: `x${i}`, a: [i, i + 1] }));
  const before = process.memoryUsage();
  assert.ok(junk.length > 0);
  junk = undefined;
  await inspectorGc();
  const after = process.memoryUsage();
  assert.ok(after.heapUsed < before.heapUsed, `heap used ${before.heapUsed} -> ${after.heapUsed}`);
  assert.ok(after.heapTotal < before.heapTotal, `heap total ${before.heapTotal} -> ${after.heapTotal}: pages given back`);
});

test('malloc_trim(0) after the collection gives back the free pages between live malloc chunks', async () => {
  const t = await loadMallocTrim();
  assert.ok('trim' in t, `malloc_trim must load on a glibc Linux (CI runs Debian): ${'unavailable' in t ? t.unavailable : ''}`);
  // 80 MiB of 4 KiB ArrayBuffers (malloc'd by Node, below the mmap threshold), every 10th kept:
  // the freed ones sit between live chunks, where glibc's own top-of-heap trimming cannot reach.
  let bufs: ArrayBuffer[] | undefined = Array.from({ length: 20_000 }, () => new ArrayBuffer(4096));
  const keep = bufs.filter((_, i) => i % 10 === 0);
  bufs = undefined;
  await inspectorGc();
  await new Promise((r) => setTimeout(r, 200)); // backing stores are freed by V8's sweeper
  const before = process.memoryUsage.rss();
  assert.equal(t.trim(), true, 'malloc_trim reports memory released');
  const after = process.memoryUsage.rss();
  assert.ok(before - after > 20 * 2 ** 20, `RSS ${before >> 20} -> ${after >> 20} MiB`);
  assert.equal(keep.length, 2000);
});
