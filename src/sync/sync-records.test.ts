import test from 'node:test';
import assert from 'node:assert/strict';
import { decodeKeys, encodeKeys, parseBatch, streamIdMs } from './sync-records.js';

test('block keys round-trip through base64 exactly (any float64, incl. huge hash values)', () => {
  const keys = new Float64Array([0, 1.5, -3, 2 ** 63, 1.8e19, Number.MIN_VALUE]);
  assert.deepEqual([...decodeKeys(encodeKeys(keys))!], [...keys]);
  const view = new Float64Array(keys.buffer, 8, 2);
  assert.deepEqual([...decodeKeys(encodeKeys(view))!], [1.5, -3], 'a subarray view encodes only its own bytes');
  assert.equal(decodeKeys('AAAA'), undefined, 'not a multiple of 8 bytes');
});

test('a batch keeps valid records and counts malformed ones without throwing', () => {
  const { records, bad } = parseBatch(JSON.stringify([
    { t: 'p', q: 'r1', e: '127.0.0.1:1', w: 12, c: 1, s: 'text/64/256', k: encodeKeys(new Float64Array([7])) },
    { t: 'p', q: 'r2', e: '127.0.0.1:1', w: -1, c: 0 },
    { t: 'p', q: '', e: 'x', w: 1, c: 0 },
    { t: 'f', q: 'r1', e: '127.0.0.1:1' },
    { t: 'c', q: 'r1' },
    { t: 'h' },
    { t: 'zzz' },
    null,
    'p',
  ]));
  assert.deepEqual(records.map((r) => r.t), ['p', 'f', 'h']);
  assert.equal(bad, 6);
  assert.deepEqual(parseBatch('{not json'), { records: [], bad: 1 });
  assert.deepEqual(parseBatch('{"t":"h"}'), { records: [], bad: 1 });
});

test('stream id milliseconds', () => {
  assert.equal(streamIdMs('1764750000123-4'), 1764750000123);
  assert.ok(Number.isNaN(streamIdMs('abc-1')));
});

test('a heartbeat\'s in-flight counts are validated; a plain heartbeat (older replicas) still parses', () => {
  const { records, bad } = parseBatch(JSON.stringify([
    { t: 'h' },
    { t: 'h', n: { '127.0.0.1:1': 3, '127.0.0.1:2': 0 } },
    { t: 'h', n: { '127.0.0.1:1': -1 } },
    { t: 'h', n: { '127.0.0.1:1': 1.5 } },
    { t: 'h', n: [1, 2] },
    { t: 'h', n: { '': 1 } },
  ]));
  assert.deepEqual(records.map((r) => (r.t === 'h' && r.n !== undefined ? { ...r, n: { ...r.n } } : r)), [{ t: 'h' }, { t: 'h', n: { '127.0.0.1:1': 3, '127.0.0.1:2': 0 } }]);
  assert.equal(bad, 4);
  const proto = parseBatch('[{"t":"h","n":{"__proto__":2}}]').records[0] as { n: Record<string, number> };
  assert.equal(Object.getPrototypeOf(proto.n), null, 'no prototype to pollute');
  assert.equal(proto.n['__proto__'], 2, 'an endpoint named __proto__ is just a key');
});
