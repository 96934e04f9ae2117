import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { golden } from '../../test/helpers/virtual-golden.js';
import { runBench } from './run-bench.js';

// dist/src/bench/x.test.js -> <root>/test/fixtures/virtual/golden.json
const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/virtual/golden.json', import.meta.url));

test('virtual bench reports equal, figure for figure, those of the build before the fleet-scale rewrite', async () => {
  // The fixture was written by the build of commit 115af38 (before the engine, block manager and
  // runner were rewritten for speed) with bench/virtual-golden-gen.ts; every field must match.
  const want = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, unknown>;
  const got = await golden(runBench);
  assert.deepEqual(Object.keys(got), Object.keys(want));
  for (const name of Object.keys(want)) assert.deepEqual(got[name], want[name], `case ${name}`);
});
