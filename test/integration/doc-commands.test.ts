/**
 * The docs cannot name a kvroute flag or subcommand that does not exist: every `kvroute` command
 * in README.md and docs/*.md shell blocks is checked against `kvroute <sub> --help`. (Running the
 * offline ones is `npm run check:docs`, bench/check-doc-commands.ts.)
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkFlags, docCommands, extractCommands, kvrouteCalls, stripComment } from '../../bench/doc-commands.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

test('doc command extraction: blocks, continuations, comments outside quotes', () => {
  const md = ['text', '```bash', 'npx kvroute bench --workload x \\', '  --replicas 3   # comment', "echo '# not a comment'", '```', '```json', '{"a": 1}', '```'].join('\n');
  const cmds = extractCommands(md, 'x.md');
  assert.deepEqual(cmds.map((c) => [c.line, c.text]), [[3, 'npx kvroute bench --workload x --replicas 3'], [5, "echo '# not a comment'"]]);
  assert.equal(stripComment('a "b # c" # d'), 'a "b # c"');
  assert.deepEqual(kvrouteCalls('npm ci && npx kvroute demo --json > x'), [{ subcommand: 'demo', flags: ['--json'] }]);
});

test('a renamed flag in the docs is caught', () => {
  const problems = checkFlags({ file: 'x.md', line: 1, text: 'npx kvroute bench --workload shared-prefix --no-such-flag 3' }, CLI);
  assert.equal(problems.length, 1);
  assert.match(problems[0], /has no flag --no-such-flag/);
  assert.match(checkFlags({ file: 'x.md', line: 1, text: 'kvroute frobnicate' }, CLI)[0], /not a kvroute command/);
});

test('every kvroute command in README.md and docs/*.md uses existing subcommands and flags', () => {
  const cmds = docCommands(ROOT);
  assert.ok(cmds.filter((c) => kvrouteCalls(c.text).length > 0).length >= 10, 'the docs show kvroute commands');
  const cache = new Map<string, Set<string>>();
  const problems = cmds.flatMap((c) => checkFlags(c, CLI, cache));
  assert.deepEqual(problems, []);
});
