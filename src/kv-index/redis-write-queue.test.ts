import test from 'node:test';
import assert from 'node:assert/strict';
import { RedisWriteQueue, type SectionReply, type WriteSection } from './redis-write-queue.js';

const section = (endpointId: string, blocks: number, tag = ''): WriteSection => ({ endpointId, verified: false, refresh: false, fence: [tag, '0', 'next', '0', '0'], ops: [], blocks });

/** A send that records each call and resolves when released. */
function recorder() {
  const calls: { sections: WriteSection[]; release(fail?: Error): void }[] = [];
  const send = (sections: WriteSection[]) =>
    new Promise<SectionReply[]>((resolve, reject) => {
      calls.push({ sections, release: (fail) => (fail ? reject(fail) : resolve(sections.map((s) => [1, s.blocks, 0, 0]))) });
    });
  return { calls, send };
}

test('writes issued while a call is in flight go out together in the next call, one section per endpoint, in order', async () => {
  const r = recorder();
  const q = new RedisWriteQueue({ send: r.send, groupOf: () => '', maxBlocks: 100, maxInFlight: 1 });
  const first = q.submit(section('a', 4, '1'));
  const rest = [q.submit(section('b', 4, '1')), q.submit(section('a', 4, '2')), q.submit(section('c', 4, '1')), q.submit(section('a', 4, '3'))];
  assert.equal(r.calls.length, 1);
  r.calls[0].release();
  assert.deepEqual(await first, [1, 4, 0, 0]);
  await new Promise((res) => setImmediate(res));
  assert.equal(r.calls.length, 2);
  assert.deepEqual(r.calls[1].sections.map((s) => `${s.endpointId}${s.fence[0]}`), ['b1', 'a2', 'c1'], 'a3 waits for a2');
  r.calls[1].release();
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(r.calls[2].sections.map((s) => `${s.endpointId}${s.fence[0]}`), ['a3']);
  r.calls[2].release();
  assert.deepEqual((await Promise.all(rest)).map((x) => x[1]), [4, 4, 4, 4]);
  assert.deepEqual({ calls: q.calls, sections: q.sections }, { calls: 3, sections: 5 });
});

test('a call carries at most maxBlocks blocks (a larger section goes alone); groups do not wait for each other', async () => {
  const r = recorder();
  const q = new RedisWriteQueue({ send: r.send, groupOf: (ep) => ep, maxBlocks: 10, maxInFlight: 1 });
  const all = [q.submit(section('a', 30)), q.submit(section('b', 6)), q.submit(section('c', 6))];
  assert.equal(r.calls.length, 3, 'cluster-style groups: one call per endpoint at once');
  const single = new RedisWriteQueue({ send: r.send, groupOf: () => '', maxBlocks: 10, maxInFlight: 1 });
  const more = [single.submit(section('x', 1)), single.submit(section('a', 30)), single.submit(section('b', 6)), single.submit(section('c', 6))];
  r.calls[3].release();
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(r.calls[4].sections.map((s) => s.endpointId), ['a'], 'an oversized section goes alone');
  r.calls[4].release();
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(r.calls[5].sections.map((s) => s.endpointId), ['b'], '6 + 6 > 10');
  for (const c of r.calls.slice(0, 3)) c.release();
  r.calls[5].release();
  await new Promise((res) => setImmediate(res));
  r.calls[6].release();
  await Promise.all([...all, ...more]);
});

test('a failed call rejects each of its sections; the queue goes on', async () => {
  const r = recorder();
  const q = new RedisWriteQueue({ send: r.send, groupOf: () => '', maxBlocks: 100, maxInFlight: 1 });
  const a = q.submit(section('a', 1));
  const b = q.submit(section('b', 1));
  r.calls[0].release(new Error('boom'));
  await assert.rejects(a, /boom/);
  await new Promise((res) => setImmediate(res));
  r.calls[1].release();
  assert.deepEqual(await b, [1, 1, 0, 0]);
});
