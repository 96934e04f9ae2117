import test from 'node:test';
import assert from 'node:assert/strict';
import { computeFigures } from './figures.js';
import type { EngineRun, RequestRecord } from './types.js';

const rec = (index: number, over: Partial<RequestRecord>): RequestRecord => ({ index, phase: 'measured', session: `s${index}`, replica: 0, arrivalMs: index * 100, promptTokens: 10, cachedTokens: 0, outputTokens: 11, ok: true, ...over });

test('goodput: a non-streaming request (no TTFT observed) counts when its whole answer meets TTFT + TPOT x (n - 1)', () => {
  // Targets 1000 ms / 50 ms and 11 output tokens: the whole answer must come within 1000 + 50 x 10 = 1500 ms.
  const records = [
    rec(0, { ttftMs: 900, e2eMs: 1300 }), // streamed, meets both
    rec(1, { ttftMs: 1100, e2eMs: 1200 }), // streamed, TTFT missed
    rec(2, { streamed: false, e2eMs: 1500 }), // non-streaming, on the deadline
    rec(3, { streamed: false, e2eMs: 1501 }), // non-streaming, late
    rec(4, { e2eMs: 100 }), // streamed but no first token seen: never good
  ];
  const run: EngineRun = { records, measured: [{ queries: 50, hits: 0 }], phases: [], total: [{ queries: 50, hits: 0 }], durationMs: 2000, replicaNames: ['a'], notes: [] };
  const f = computeFigures(run, 0, 4, { slo: { ttftMs: 1000, tpotMs: 50 } });
  assert.equal(f.goodput.requestsPerSecond, 2 / 2);
  assert.equal(f.goodput.share, 2 / 5);
  // TTFT only over requests whose first token was observed (900, 1100).
  assert.equal(f.ttftMs.mean, 1000);
});
