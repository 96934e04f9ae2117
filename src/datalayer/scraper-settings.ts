/** Defaults of the {@link EndpointScraper}'s timing options, applied for every option left undefined. */
import { KvrError } from '../core/errors.js';
import type { ScraperOptions } from './endpoint-scraper.js';

/** Default probe intervals, timeouts and bounds (ms); docs/engines.md explains each. */
export const SCRAPER_DEFAULTS = {
  intervalMs: 50,
  staleAfterMs: 2000,
  timeoutMs: 1000,
  modelsIntervalMs: 5000,
  healthIntervalMs: 250,
  healthTimeoutMs: 750,
  deadAfterMs: 2000,
};

/** The scraper's effective timing settings. */
export type ScraperSettings = typeof SCRAPER_DEFAULTS;

/** Applies defaults for every option left undefined. */
export function scraperSettings(opts: ScraperOptions): ScraperSettings {
  const out = { ...SCRAPER_DEFAULTS };
  for (const k of Object.keys(SCRAPER_DEFAULTS) as (keyof ScraperSettings)[]) {
    const v = opts[k];
    if (v !== undefined) {
      if (!(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw new KvrError('KVR_ERR_CONFIG', `scraper option ${k} must be a positive number of milliseconds; got ${String(v)}`);
      out[k] = v;
    }
  }
  return out;
}

