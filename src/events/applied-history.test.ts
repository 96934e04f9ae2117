import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppliedHistory, RECENT_DIGESTS } from './applied-history.js';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

test('a repeat of an applied batch is told from a different batch under the same number', () => {
  const h = new AppliedHistory();
  assert.equal(h.anchored, false);
  h.record(5n, bytes(1, 2, 3));
  assert.equal(h.anchored, true);
  assert.equal(h.differs(5n, bytes(1, 2, 3)), false, 'a byte-identical repeat');
  assert.equal(h.differs(5n, bytes(1, 2, 4)), true, 'another payload under seq 5');
  assert.equal(h.differs(4n, bytes(1, 2, 3)), true, 'never applied: cannot be vouched for');
  for (let s = 6n; s < 6n + BigInt(RECENT_DIGESTS); s++) h.record(s, bytes(Number(s % 256n)));
  assert.equal(h.differs(5n, bytes(1, 2, 3)), true, 'older than the digest window');
});

test('a replay vouches for the process followed only when it starts with the last batch as applied', () => {
  const h = new AppliedHistory();
  h.record(7n, bytes(9, 9));
  assert.equal(h.replayHoldsLast([{ seq: 7n, payload: bytes(9, 9) }, { seq: 8n, payload: bytes(1) }], 7n), true);
  assert.equal(h.replayHoldsLast([{ seq: 7n, payload: bytes(9, 8) }], 7n), false, 'other bytes: a new process');
  assert.equal(h.replayHoldsLast([{ seq: 8n, payload: bytes(9, 9) }], 7n), false, 'does not reach back to 7');
  assert.equal(h.replayHoldsLast([], 7n), false, 'empty');
  assert.equal(h.replayHoldsLast([{ seq: 6n, payload: bytes(9, 9) }], 6n), false, '6 is not the last recorded batch');
  // Over the byte cap the payload is not kept: its length stands in.
  h.recordUnread(8n, 5000);
  assert.equal(h.anchored, true);
  assert.equal(h.replayHoldsLast([{ seq: 8n, payload: new Uint8Array(5000) }], 8n), true);
  assert.equal(h.replayHoldsLast([{ seq: 8n, payload: new Uint8Array(4999) }], 8n), false);
  h.clear();
  assert.equal(h.anchored, false);
  assert.equal(h.replayHoldsLast([{ seq: 8n, payload: new Uint8Array(5000) }], 8n), false, 'forgotten');
});
