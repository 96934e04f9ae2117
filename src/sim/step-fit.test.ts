import { test } from 'node:test';
import assert from 'node:assert/strict';
import { H200_CALIBRATION } from './calibration-data.js';
import { fitStepCoefficients, predictRow } from './step-fit.js';
import { EAGER_FITS, PROFILES, type ProfileId } from './profiles.js';
import { StepModel } from './step-model.js';

const MODELS: ProfileId[] = ['llama-3.2-1b', 'llama-3.2-3b', 'llama-3.1-8b'];
/** Stated tolerance: every calibration row within 35 % (worst rows are ~30 %, see docs/simulator.md). */
const TOLERANCE = 0.35;

for (const m of MODELS) {
  test(`eager fit of ${m} reproduces the embedded coefficients and each row within ${TOLERANCE * 100} %`, () => {
    const rows = H200_CALIBRATION.filter((r) => r.model === m);
    assert.equal(rows.length, 17);
    const k = fitStepCoefficients(rows);
    for (const key of ['t0', 'a', 'b', 'c', 'd'] as const) {
      assert.ok(Math.abs(k[key] - EAGER_FITS[m][key]) <= 1e-9 * Math.max(1, Math.abs(k[key])) + 1e-12, `${key} drifted`);
    }
    for (const r of rows) {
      const err = Math.abs(predictRow(k, r) - r.ms) / r.ms;
      assert.ok(err <= TOLERANCE, `${JSON.stringify(r)} off by ${(err * 100).toFixed(1)} %`);
    }
  });
}

test('vLLM-adjusted profiles: 8B decode at batch 8 ctx 1024 takes 6.5 ms; big prefill tracks the measurement', () => {
  const m8 = new StepModel(PROFILES['llama-3.1-8b'].step);
  assert.ok(Math.abs(m8.stepMs(0, 0, 8, 8 * 1024) - 6.5) < 1e-9);
  const cold8k = H200_CALIBRATION.find((r) => r.model === 'llama-3.1-8b' && r.tokens === 8192)!;
  const p = m8.stepMs(8192, (8192 * 8193) / 2, 0, 0);
  assert.ok(Math.abs(p - cold8k.ms) / cold8k.ms < 0.15, `8k prefill ${p}`);
  // smaller models are faster
  const m1 = new StepModel(PROFILES['llama-3.2-1b'].step);
  assert.ok(m1.stepMs(0, 0, 8, 8192) < m8.stepMs(0, 0, 8, 8192));
  assert.equal(PROFILES['llama-3.1-8b'].numGpuBlocks, 26_300);
  assert.equal(PROFILES['llama-3.1-8b'].kvBytesPerToken, 131072);
  assert.ok(PROFILES['llama-3.2-1b'].numGpuBlocks > PROFILES['llama-3.2-3b'].numGpuBlocks);
});
