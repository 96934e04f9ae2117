/**
 * The command line from a fresh clone's point of view (issue 11 item 9): `--version` comes from
 * package.json, `serve --help` documents the `;events=` / `;replay=` endpoint options, `sim` can
 * turn prefix caching off, and `bench --preset` is a deprecated alias of `--workload-preset`
 * that warns (serve --preset names a scheduling profile).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });

test('kvroute --version prints package.json\'s version', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const r = run('--version');
  assert.equal(r.status, 0);
  assert.equal(r.stdout.trim(), pkg.version);
});

test('serve --help documents the events= and replay= endpoint options; sim --help the prefix-caching switch', () => {
  const serve = run('serve', '--help').stdout.replace(/\s+/g, ' ');
  assert.match(serve, /;events=tcp:\/\/host:5557/);
  assert.match(serve, /;replay=tcp:\/\/host:5558/);
  assert.match(serve, /--admin-host/);
  assert.match(run('sim', '--help').stdout, /--no-enable-prefix-caching/);
});

test('bench --preset still works but warns; --workload-preset gives the same run silently', () => {
  const args = ['--workload', 'shared-prefix', '--requests', '6', '--strategies', 'round-robin', '--replicas', '2', '--json'];
  const old = run('bench', ...args, '--preset', 'llm-d-shared-prefix-synthetic');
  const now = run('bench', ...args, '--workload-preset', 'llm-d-shared-prefix-synthetic');
  assert.equal(old.status, 0, old.stderr);
  assert.equal(now.status, 0, now.stderr);
  assert.match(old.stderr, /--preset is deprecated .* use --workload-preset/);
  assert.doesNotMatch(now.stderr, /deprecated/);
  const a = JSON.parse(old.stdout) as { workload: { description: string }; strategies: { hitRate: number }[] };
  const b = JSON.parse(now.stdout) as typeof a;
  assert.match(b.workload.description, /llm-d-shared-prefix-synthetic/);
  assert.equal(a.workload.description, b.workload.description);
  assert.equal(a.strategies[0].hitRate, b.strategies[0].hitRate);
  const both = run('bench', ...args, '--preset', 'sglang-default', '--workload-preset', 'llm-d-shared-prefix-synthetic');
  assert.notEqual(both.status, 0, 'two different presets are refused');
});
