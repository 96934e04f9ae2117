/**
 * kvroute's version, read from its package.json (one source of truth for `kvroute --version`).
 * Compiled to dist/src/app/version.js, three folders below the package root.
 */
import { readFileSync } from 'node:fs';

/** The `version` field of kvroute's package.json ("unknown" if it cannot be read). */
export function kvrouteVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name?: string; version?: string };
    return pkg.name === 'kvroute' && typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
