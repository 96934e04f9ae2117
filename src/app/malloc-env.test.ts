import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MALLOC_ENV } from './malloc-env.js';

test('the container image sets exactly the malloc settings of MALLOC_ENV', () => {
  const docker = readFileSync(join(process.cwd(), 'deploy/Dockerfile'), 'utf8');
  const runtime = docker.slice(docker.indexOf('AS runtime'));
  const set = new Map<string, string>();
  for (const m of runtime.matchAll(/^ENV (.+)$/gm)) for (const kv of m[1].trim().split(/\s+/)) {
    const [k, v] = kv.split('=');
    if (k.startsWith('MALLOC_')) set.set(k, v);
  }
  assert.deepEqual(Object.fromEntries(set), { ...MALLOC_ENV });
});
