import test from 'node:test';
import assert from 'node:assert/strict';
import { RemoteLoad } from './remote-load.js';

function tracked() {
  const sums = new Map<string, { p: number; n: number }>();
  const rl = new RemoteLoad((id, p, n) => {
    if (n === 0 && p === 0) sums.delete(id);
    else sums.set(id, { p, n });
  }, 3);
  return { rl, sums };
}

test('pick, first token and completion move one endpoint\'s sums; a repeated record is idempotent', () => {
  const { rl, sums } = tracked();
  rl.pick('A', 'q1', 'e1', 500, 1_000);
  rl.pick('A', 'q1', 'e1', 500, 1_000);
  rl.pick('B', 'q1', 'e1', 100, 1_000);
  assert.deepEqual(sums.get('e1'), { p: 600, n: 2 });
  rl.firstToken('A', 'q1', 'e1');
  rl.firstToken('A', 'q1', 'e1');
  assert.deepEqual(sums.get('e1'), { p: 100, n: 2 });
  rl.complete('A', 'q1', 'e1');
  rl.complete('A', 'q1', 'e1');
  rl.complete('A', 'unknown', 'e1');
  assert.deepEqual(sums.get('e1'), { p: 100, n: 1 });
  rl.complete('B', 'q1', 'e1');
  assert.equal(sums.has('e1'), false);
  assert.equal(rl.size, 0);
});

test('entries expire after their TTL; a router\'s entries go with it; the cap drops the oldest', () => {
  const { rl, sums } = tracked();
  rl.pick('A', 'q1', 'e1', 10, 100);
  rl.pick('A', 'q2', 'e2', 10, 300);
  rl.pick('B', 'q3', 'e2', 10, 300);
  assert.equal(rl.expire(200), 1);
  assert.equal(sums.has('e1'), false);
  assert.equal(rl.dropRouter('A'), 1);
  assert.deepEqual(sums.get('e2'), { p: 10, n: 1 });
  rl.pick('C', 'a', 'e3', 1, 999);
  rl.pick('C', 'b', 'e3', 1, 999);
  rl.pick('C', 'c', 'e3', 1, 999);
  assert.equal(rl.size, 3);
  assert.equal(rl.capped, 1);
  assert.equal(sums.has('e2'), false, 'the oldest entry (B/q3) made room');
});

test('reconcile trims a router\'s entries to its heartbeat\'s counts, oldest first, and leaves others alone', () => {
  const { rl, sums } = (() => {
    const sums = new Map<string, { p: number; n: number }>();
    const rl = new RemoteLoad((id, p, n) => {
      if (n === 0 && p === 0) sums.delete(id);
      else sums.set(id, { p, n });
    });
    return { rl, sums };
  })();
  rl.pick('A', 'old', 'e1', 100, 9_999);
  rl.pick('A', 'mid', 'e1', 20, 9_999);
  rl.pick('A', 'new', 'e1', 3, 9_999);
  rl.pick('A', 'x', 'e2', 7, 9_999);
  rl.pick('B', 'y', 'e1', 1_000, 9_999);
  assert.equal(rl.reconcile('A', { e1: 3, e2: 1 }), 0, 'counts match: nothing goes');
  assert.equal(rl.reconcile('A', { e1: 1, e9: 4 }), 3, 'two of e1 (the oldest) and e2 (absent: none in flight)');
  assert.deepEqual(sums.get('e1'), { p: 1_003, n: 2 }, 'A keeps only its newest e1 entry; B untouched');
  assert.equal(sums.has('e2'), false);
  assert.equal(rl.reconcile('A', { e1: 5 }), 0, 'fewer entries than reported: nothing to add, nothing goes');
  assert.equal(rl.reconcile('A', {}), 1, 'A reports nothing in flight (restarted): all its entries go');
  assert.deepEqual(sums.get('e1'), { p: 1_000, n: 1 });
  assert.equal(rl.size, 1);
});
