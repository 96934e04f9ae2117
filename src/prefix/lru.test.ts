import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lru } from './lru.js';

test('Lru evicts the least recently used first and reports evictions', () => {
  const evicted: string[] = [];
  const lru = new Lru<string, number>(3, (k) => evicted.push(k));
  lru.set('a', 1);
  lru.set('b', 2);
  lru.set('c', 3);
  assert.equal(lru.get('a'), 1); // a becomes most recent
  lru.set('d', 4); // evicts b
  assert.deepEqual(evicted, ['b']);
  assert.deepEqual([...lru.keys()], ['c', 'a', 'd']);
  assert.equal(lru.has('b'), false);
});

test('Lru peek does not touch; set of an existing key refreshes and does not evict', () => {
  const evicted: string[] = [];
  const lru = new Lru<string, number>(2, (k) => evicted.push(k));
  lru.set('a', 1);
  lru.set('b', 2);
  assert.equal(lru.peek('a'), 1);
  assert.equal(lru.set('a', 10), false);
  lru.set('c', 3);
  assert.deepEqual(evicted, ['b']);
  assert.equal(lru.peek('a'), 10);
  assert.equal(lru.size, 2);
});

test('Lru resize shrinks by evicting the oldest and grows without loss', () => {
  const evicted: number[] = [];
  const lru = new Lru<number, true>(5, (k) => evicted.push(k));
  for (let i = 0; i < 5; i++) lru.set(i, true);
  lru.resize(2);
  assert.deepEqual(evicted, [0, 1, 2]);
  assert.equal(lru.capacity, 2);
  lru.resize(4);
  lru.set(7, true);
  lru.set(8, true);
  assert.equal(lru.size, 4);
  assert.deepEqual(evicted, [0, 1, 2]);
});

test('Lru capacity 0 keeps nothing; bad capacity throws', () => {
  const lru = new Lru<string, number>(0);
  lru.set('a', 1);
  assert.equal(lru.size, 0);
  assert.throws(() => new Lru(-1), RangeError);
  assert.throws(() => new Lru(1.5), RangeError);
});

test('Lru delete and clear do not report evictions', () => {
  const evicted: string[] = [];
  const lru = new Lru<string, number>(2, (k) => evicted.push(k));
  lru.set('a', 1);
  assert.equal(lru.delete('a'), true);
  assert.equal(lru.delete('a'), false);
  lru.set('b', 1);
  lru.clear();
  assert.equal(lru.size, 0);
  assert.deepEqual(evicted, []);
});
