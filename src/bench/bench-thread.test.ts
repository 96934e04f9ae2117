import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { KvrError } from '../core/errors.js';
import { runBenchCommand, runBenchCommandHere, type BenchCliOptions } from './bench-command.js';

function sink(isTTY = false): NodeJS.WriteStream & { text: string } {
  const w = new Writable({
    write(chunk, _enc, cb) {
      w.text += String(chunk);
      cb();
    },
  }) as unknown as NodeJS.WriteStream & { text: string };
  w.text = '';
  (w as { isTTY: boolean }).isTTY = isTTY;
  return w;
}

const opts: BenchCliOptions = { workload: 'shared-prefix', preset: 'sglang-default', strategies: 'round-robin,kvroute', engine: 'virtual', replicas: 3, requests: 150, rate: '20', seed: 4, json: true, profile: 'llama-3.1-8b' };
const noWall = (text: string): string => text.replace(/"wallSeconds": [0-9.e-]+/g, '"wallSeconds": 0');

test('the virtual bench on its worker thread prints and returns what it does in process', async () => {
  const [outW, errW, outH, errH] = [sink(), sink(true), sink(), sink(true)];
  const viaWorker = await runBenchCommand(opts, outW, errW);
  const here = await runBenchCommandHere(opts, outH, errH);
  assert.ok(outW.text.length > 1000 && outW.text.includes('"kvroute"'), 'a JSON report came back through the worker');
  assert.equal(noWall(outW.text), noWall(outH.text));
  assert.deepEqual({ ...viaWorker, wallSeconds: 0 }, { ...here, wallSeconds: 0 });
  // The progress bar is drawn on a terminal only; the worker is told that the caller's stream is one.
  assert.match(errW.text, /\r\[#+\] kvroute \(2\/2\) 150\/150/);
  assert.match(errH.text, /\r\[#+\] kvroute \(2\/2\) 150\/150/);
  const quiet = sink(false);
  await runBenchCommand({ ...opts, strategies: 'round-robin' }, sink(), quiet);
  assert.equal(quiet.text, '', 'no progress bar when the caller\'s stream is not a terminal');
});

test('an error in the worker reaches the caller with its KvrError code and message', async () => {
  await assert.rejects(runBenchCommand({ ...opts, strategies: 'nope' }, sink(), sink()), (err: unknown) => err instanceof KvrError && err.code === 'KVR_ERR_USAGE' && /unknown strategy "nope"/.test(err.message));
  await assert.rejects(runBenchCommand({ ...opts, rate: '-3' }, sink(), sink()), (err: unknown) => err instanceof KvrError && err.code === 'KVR_ERR_USAGE' && /--rate must be a positive number/.test(err.message));
});
