/**
 * Wires an {@link EndpointPool}'s panic routing to a front end: the threshold (validated), the
 * `kvroute_panic_routing_total` counter and one log line when a model enters or leaves panic mode.
 */
import { KvrError } from '../core/errors.js';
import { DEFAULT_PANIC_THRESHOLD_PERCENT, type EndpointPool } from './endpoint-pool.js';

export function wirePanicRouting(
  pool: EndpointPool,
  thresholdPercent: number | undefined,
  metrics: { panicRouted: { inc(): void } },
  logger: { warn(o: object, msg: string): void; info(o: object, msg: string): void },
): void {
  const t = thresholdPercent ?? DEFAULT_PANIC_THRESHOLD_PERCENT;
  if (!(Number.isFinite(t) && t >= 0 && t <= 100)) throw new KvrError('KVR_ERR_CONFIG', `--panic-threshold-percent must be between 0 and 100, got ${String(thresholdPercent)} (0 turns panic routing off)`);
  pool.panicThresholdPercent = t;
  pool.onPanic = (event, healthy, serving, model) => {
    if (event === 'routed') metrics.panicRouted.inc();
    else if (event === 'entered') logger.warn({ model, healthy, serving, thresholdPercent: t }, 'panic routing: too few healthy endpoints; endpoints whose probes time out are candidates again');
    else logger.info({ model, healthy, serving }, 'panic routing over');
  };
}
