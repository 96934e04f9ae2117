/**
 * Metric name maps from each engine's Prometheus metrics to an {@link EndpointMetrics} snapshot
 * (protocols.md section 2). The maps now live in the engine adapters (src/engines); this module
 * keeps the datalayer's entry points. For every field the first name present wins, so current
 * and older names both work.
 */
import type { EndpointMetrics, EngineKind } from '../core/endpoint.js';
import { mapNames } from '../engines/common.js';
import { adapterFor, ENGINE_ADAPTERS } from '../engines/registry.js';
import type { EngineMetricMap } from '../engines/types.js';
import type { PromSample } from './prom-text.js';

/** Each engine's metric map (from its adapter). */
export const ENGINE_MAPS: Readonly<Record<EngineKind, EngineMetricMap>> = Object.fromEntries(
  ENGINE_ADAPTERS.map((a) => [a.kind, a.metrics]),
) as Record<EngineKind, EngineMetricMap>;

/** Every metric name an engine map reads (to skip the rest while parsing). */
export function namesFor(engine: EngineKind): Set<string> {
  return mapNames(adapterFor(engine).metrics);
}

/**
 * Builds a snapshot from parsed samples. Returns undefined when none of the engine's
 * load gauges is present (the endpoint is not serving the expected engine's metrics).
 */
export function toEndpointMetrics(engine: EngineKind, samples: readonly PromSample[], now: number): EndpointMetrics | undefined {
  return adapterFor(engine).snapshot(samples, now);
}
