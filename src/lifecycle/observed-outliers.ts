/**
 * The outlier detector as a front end runs it (the OpenAI gateway and the ext_proc endpoint
 * picker alike): sized to the pool, each ejection counted, shown as a gauge until it ends, and
 * logged.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { RouterMetrics } from '../metrics/router-metrics.js';
import { OutlierDetector, type OutlierOptions } from './outlier-detector.js';

/** A detector for `hostCount` endpoints whose ejections reach `metrics` and `logger`. */
export function createObservedOutlierDetector(clock: Clock, options: OutlierOptions | undefined, hostCount: number, metrics: RouterMetrics, logger: Logger): OutlierDetector {
  const outliers = new OutlierDetector(clock, options);
  outliers.setHostCount(hostCount);
  outliers.onEject((id, until) => {
    metrics.outlierEjections.inc({ endpoint: id });
    metrics.endpointEjected.set({ endpoint: id }, 1);
    clock.setTimeout(() => metrics.endpointEjected.set({ endpoint: id }, outliers.isEjected(id) ? 1 : 0), Math.max(0, until - clock.now()));
    logger.warn({ endpoint: id, ejectedForMs: Math.round(until - clock.now()) }, 'endpoint ejected by outlier detection (consecutive failures)');
  });
  return outliers;
}
