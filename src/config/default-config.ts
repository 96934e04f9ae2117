/**
 * kvroute's default scheduling configuration (used with no file and no seed environment
 * variables). docs/configuration.md explains the weights; examples/default.yaml writes it out.
 *
 * - precise-prefix-cache-scorer 3: locality is the point of the router. Precise when KV events
 *   flow (block-exact, from the engines), else it routes with its embedded approximate scorer.
 * - prefill-cost-scorer 4: locality and load in one unit (work): the prompt tokens this request
 *   would prefill on each endpoint plus the work already in flight there. A long cached prefix
 *   keeps its request home until the home endpoint's extra work exceeds the prefill it would cost
 *   elsewhere; a short one spreads at once. Measured with `kvroute bench` (docs/benchmarks.md):
 *   it replaced an in-flight-load term that sent a quarter of a shared prefix's requests away.
 * - queue-scorer 1, kv-cache-utilization-scorer 1: the engines' own view (scraped, so late),
 *   which also sees traffic from other router replicas.
 * - session-affinity-scorer 2: explicit sessions only (x-session-token, x-session-id); client-IP
 *   affinity off, since many users behind one IP hot-spot one replica.
 * - no-hit-lru-scorer 1: when no endpoint holds any of the prompt, prefer the endpoint least
 *   recently given a cold prompt, so new prefixes seed different endpoints; neutral otherwise.
 * - max-score-picker: top total, ties at random.
 */
import type { EndpointPickerConfigDoc } from './config-schema.js';

/** The default document (a fresh copy per call, so callers may edit it). */
export function defaultConfigDoc(): EndpointPickerConfigDoc {
  return {
    apiVersion: 'llm-d.ai/v1alpha1',
    kind: 'EndpointPickerConfig',
    plugins: [
      { type: 'precise-prefix-cache-scorer' },
      { type: 'prefill-cost-scorer' },
      { type: 'queue-scorer' },
      { type: 'kv-cache-utilization-scorer' },
      { type: 'session-affinity-scorer', parameters: { clientIp: false } },
      { type: 'no-hit-lru-scorer' },
      { type: 'max-score-picker' },
    ],
    schedulingProfiles: [
      {
        name: 'default',
        plugins: [
          { pluginRef: 'precise-prefix-cache-scorer', weight: 3 },
          { pluginRef: 'prefill-cost-scorer', weight: 4 },
          { pluginRef: 'queue-scorer', weight: 1 },
          { pluginRef: 'kv-cache-utilization-scorer', weight: 1 },
          { pluginRef: 'session-affinity-scorer', weight: 2 },
          { pluginRef: 'no-hit-lru-scorer', weight: 1 },
          { pluginRef: 'max-score-picker' },
        ],
      },
    ],
  };
}
