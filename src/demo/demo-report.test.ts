import { test } from 'node:test';
import assert from 'node:assert/strict';
import { comparisonLine, relativeWording } from './demo-report.js';
import type { DemoStrategyResult } from './demo-summary.js';

test('relativeWording never reads backwards: lower only when lower, higher when higher', () => {
  assert.equal(relativeWording(50, 100), '2.00x lower');
  assert.equal(relativeWording(100, 78), '1.28x higher');
  assert.equal(relativeWording(60.4, 66.6), '1.10x lower');
  assert.equal(relativeWording(42, 42), 'the same');
  assert.equal(relativeWording(NaN, 5), undefined);
  assert.equal(relativeWording(0, 5), undefined);
});

const result = (strategy: string, hit: number, mean: number, p50: number): DemoStrategyResult => ({
  strategy, requests: 36, failed: 0, fleetHitRate: hit, ttftMeanMs: mean, ttftP50Ms: p50, ttftP90Ms: mean * 2,
  outputTokensPerSecond: 100, wallSeconds: 1, concentration: 0.4, replicas: [],
});

test('the comparison line says "higher" when kvroute is slower (the old "0.78x lower")', () => {
  const line = comparisonLine(result('kvroute (default)', 0.8, 85, 20), result('round-robin', 0.5, 66.6, 50));
  assert.match(line, /mean TTFT 85\.0 ms vs 66\.6 ms \(1\.28x higher\)/);
  assert.match(line, /median TTFT 2\.50x lower/);
  assert.doesNotMatch(line, /0\.\d+x/);
});
