/**
 * Writes the virtual bench's golden reports (test/helpers/virtual-golden.ts) with a given build's
 * runBench, so a faster engine can be checked against the figures of the build before it:
 *
 *   node dist/bench/virtual-golden-gen.js --run-bench <old build>/dist/src/bench/run-bench.js --out test/fixtures/virtual-golden.json
 *
 * Without --run-bench it uses this build's (to see what the current code gives).
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { golden } from '../test/helpers/virtual-golden.js';
import type { runBench as RunBench } from '../src/bench/run-bench.js';

const { values } = parseArgs({ options: { 'run-bench': { type: 'string' }, out: { type: 'string' } } });
const mod = (await import(values['run-bench'] !== undefined ? pathToFileURL(resolve(values['run-bench'])).href : '../src/bench/run-bench.js')) as { runBench: typeof RunBench };
const text = `${JSON.stringify(await golden(mod.runBench), null, 1)}\n`;
if (values.out !== undefined) writeFileSync(values.out, text);
else process.stdout.write(text);
