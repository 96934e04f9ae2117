import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressAllowed, parseAllowList } from './zap-allow-list.js';

test('addresses and CIDRs, IPv4 and IPv6; IPv4-mapped IPv6 peers are read as IPv4', () => {
  const l = parseAllowList(['10.0.0.0/8', '192.168.1.7', 'fd00::/8', ' ::1 ']);
  assert.equal(addressAllowed(l, '10.200.3.4'), true);
  assert.equal(addressAllowed(l, '11.0.0.1'), false);
  assert.equal(addressAllowed(l, '192.168.1.7'), true);
  assert.equal(addressAllowed(l, '192.168.1.8'), false);
  assert.equal(addressAllowed(l, 'fd12::5'), true);
  assert.equal(addressAllowed(l, 'fe80::1'), false);
  assert.equal(addressAllowed(l, '::1'), true);
  assert.equal(addressAllowed(l, '::ffff:10.1.2.3'), true);
  assert.equal(addressAllowed(l, '::ffff:11.1.2.3'), false);
  assert.equal(addressAllowed(l, ''), false, 'no address: refused');
  assert.equal(addressAllowed(l, 'not-an-ip'), false);
});

test('bad entries are refused with the entry named', () => {
  assert.throws(() => parseAllowList(['10.0.0.0/8', 'pod-a']), /"pod-a" is not an IP address or CIDR/);
  assert.throws(() => parseAllowList(['10.0.0.0/x']), /bad prefix length/);
  assert.throws(() => parseAllowList(['fd00::/129']), /bad prefix length \(0-128\)/);
  assert.throws(() => parseAllowList([]), /empty/);
});
