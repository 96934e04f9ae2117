import test from 'node:test';
import assert from 'node:assert/strict';
import { describeTarget, parseRedisTarget } from './redis-client.js';
import { KvrError } from '../core/errors.js';

test('single-node forms: host:port, [v6]:port, redis:// and rediss:// URLs with a database number', () => {
  assert.deepEqual(parseRedisTarget('10.0.0.9:6379'), { kind: 'node', url: 'redis://10.0.0.9:6379' });
  assert.deepEqual(parseRedisTarget(' redis-master.svc:6380 '), { kind: 'node', url: 'redis://redis-master.svc:6380' });
  assert.deepEqual(parseRedisTarget('[::1]:6379'), { kind: 'node', url: 'redis://[::1]:6379' });
  assert.deepEqual(parseRedisTarget('redis://u:p@h:1/2'), { kind: 'node', url: 'redis://u:p@h:1/2' });
  assert.deepEqual(parseRedisTarget('rediss://h:6380'), { kind: 'node', url: 'rediss://h:6380' });
  assert.equal(describeTarget(parseRedisTarget('redis://u:secret@h:1/2')), 'redis://h:1/2');
});

test('cluster forms: seed nodes, credentials, TLS', () => {
  assert.deepEqual(parseRedisTarget('redis-cluster://127.0.0.1:7000,127.0.0.1:7001'), { kind: 'cluster', nodes: [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 7001 }], tls: false });
  assert.deepEqual(parseRedisTarget('rediss-cluster://app:p%40ss@a.svc:6379/'), { kind: 'cluster', nodes: [{ host: 'a.svc', port: 6379 }], username: 'app', password: 'p@ss', tls: true });
  assert.deepEqual(parseRedisTarget('redis-cluster://:pw@[::1]:7000'), { kind: 'cluster', nodes: [{ host: '::1', port: 7000 }], password: 'pw', tls: false });
  assert.equal(describeTarget(parseRedisTarget('redis-cluster://:pw@h:1,g:2')), 'redis-cluster://h:1,g:2');
});

test('anything else is refused with the accepted forms', () => {
  for (const bad of ['', 'localhost', 'memcached://h:1', 'redis-cluster://', 'redis-cluster://h', 'redis-cluster://h:1,,g:2', 'redis-cluster://h:99999', 'redis://h:1/x', 'valkey:/x', 'http://h:1']) {
    assert.throws(() => parseRedisTarget(bad), (e: unknown) => e instanceof KvrError && e.code === 'KVR_ERR_USAGE' && /redis-cluster:\/\/host1:port1,host2:port2/.test(e.message), bad);
  }
});
