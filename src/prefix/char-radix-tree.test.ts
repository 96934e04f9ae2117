import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CharRadixTree } from './char-radix-tree.js';

test('insert, split, match and per-tenant character counts like sgl-router tree.rs', () => {
  const t = new CharRadixTree();
  t.insert('hello world', 'a', 1);
  t.insert('hello there', 'b', 2);
  assert.deepEqual(t.match('hello world!'), { chars: 11, tenant: 'a' });
  assert.deepEqual(t.match('hello thx'), { chars: 8, tenant: 'b' });
  assert.equal(t.match('hello ').chars, 6);
  assert.equal(t.match('hello ').tenant, 'b', 'the most recent tenant of the deepest node');
  assert.equal(t.match('zzz').chars, 0);
  assert.equal(t.size('a'), 11);
  assert.equal(t.size('b'), 11);
  t.insert('hi', 'c', 3);
  assert.equal(t.size('c'), 2);
});

test('eviction drops a tenant from its least recently used leaves down to the bound', () => {
  const t = new CharRadixTree();
  t.insert('aaaa-old', 'x', 1);
  t.insert('aaaa-new', 'x', 5);
  assert.equal(t.size('x'), 11, 'aaaa- shared, old and new 3 each');
  t.evictTenant('x', 8);
  assert.equal(t.size('x'), 8);
  assert.equal(t.match('aaaa-new').chars, 8);
  assert.equal(t.match('aaaa-old').chars, 5, 'the old leaf is gone, the shared part stays');
  t.removeTenant('x');
  assert.equal(t.match('aaaa-new').chars, 0);
});
