import test from 'node:test';
import assert from 'node:assert/strict';
import { checkPrefix, endpointKeys, endpointTag, engineParts, epochKey, holdingsKey } from './redis-keys.js';
import { KvrError } from '../core/errors.js';

test('an endpoint\'s five keys share one hash tag, then name the endpoint (golden)', () => {
  assert.equal(endpointTag('pod-a'), '61bc');
  // Layout version 2 (recency log instead of a per-block zset, generations in holdings values):
  // every key carries `v2:` after the prefix, so a version-1 router never reads these keys.
  assert.deepEqual(endpointKeys('kvroute:', 'pod-a'), ['kvroute:v2:h:{61bc}pod-a', 'kvroute:v2:e:{61bc}pod-a', 'kvroute:v2:m:{61bc}pod-a', 'kvroute:v2:n:{61bc}pod-a', 'kvroute:v2:f:{61bc}pod-a']);
  assert.equal(holdingsKey('kvroute:', 'pod-a'), endpointKeys('kvroute:', 'pod-a')[0]);
  assert.equal(epochKey('kvroute:'), 'kvroute:v2:epoch');
  // Braces in an id come after the tag, so they cannot change it.
  assert.match(endpointKeys('p:', 'a}b{c')[0], /^p:v2:h:\{[0-9a-f]{4}\}a\}b\{c$/);
});

test('ids that differ in one digit get unrelated tags (CRC16 alone would group them)', () => {
  const tags = new Set<string>();
  for (let i = 0; i < 256; i++) tags.add(endpointTag(`10.0.0.${i}:8000`));
  assert.ok(tags.size >= 250, `${tags.size} distinct tags for 256 ids`);
  const firstDigits = new Set([...tags].map((t) => t[0]));
  assert.equal(firstDigits.size, 16);
});

test('a prefix with braces is refused; engine batches are cut into parts of at most max blocks', () => {
  assert.throws(() => checkPrefix('kv{x}:'), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_CONFIG');
  const parts = engineParts({ endpointId: 'a', seq: 0, ts: 1, mode: 'next', ops: [{ kind: 'store', tier: 'gpu', engineHashes: [1n, 2n, 3n, 255n, 5n], keys: [1, 2, 3, 4, 5] }, { kind: 'clear' }, { kind: 'remove', tier: 'gpu', engineHashes: [7n] }] }, 2);
  assert.deepEqual(parts.map((p) => p.blocks), [2, 2, 2, 1]);
  assert.deepEqual([parts[1].ops[0], parts[1].ops[2], parts[1].ops[3], parts[1].ops[5]], ['S', '2', '3', 'ff'], 'engine hashes in hex');
  assert.deepEqual(parts[2].ops.slice(0, 4), ['S', 'gpu', '1', '5']);
  assert.equal(parts[2].ops.at(-1), 'C');
  assert.deepEqual(parts[3].ops, ['R', 'gpu', '1', '7']);
});
