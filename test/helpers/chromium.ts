/**
 * The headless Chromium the browser tests drive (dashboard, HTML bench report). A missing
 * browser FAILS the test with a message naming the program and how to install it; it never
 * skips (a skipped browser test would leave the suite green without checking the pages).
 *
 * Path: `KVROUTE_TEST_CHROMIUM`, else the first of `chromium`, `chromium-browser`,
 * `google-chrome` found on PATH or in /usr/bin.
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/** Where Chromium is, or undefined. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.KVROUTE_TEST_CHROMIUM) return existsSync(env.KVROUTE_TEST_CHROMIUM) ? env.KVROUTE_TEST_CHROMIUM : undefined;
  const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin'];
  for (const name of NAMES) for (const d of dirs) if (existsSync(join(d, name))) return join(d, name);
  return undefined;
}

/** Chromium's path; throws a clear error naming the missing program when there is none. */
export function requireChromium(env: NodeJS.ProcessEnv = process.env): string {
  const p = findChromium(env);
  if (p !== undefined) return p;
  const where = env.KVROUTE_TEST_CHROMIUM ? `KVROUTE_TEST_CHROMIUM=${env.KVROUTE_TEST_CHROMIUM} does not exist` : `none of ${NAMES.join(', ')} is on PATH`;
  throw new Error(
    `Chromium is not installed (${where}): the dashboard and HTML-report tests drive a real headless browser. ` +
      'Install it (Debian: sudo apt-get install -y chromium; Ubuntu: a chromium snap or google-chrome) or set KVROUTE_TEST_CHROMIUM to its path.',
  );
}
