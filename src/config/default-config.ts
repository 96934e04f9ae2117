/**
 * kvroute's default scheduling configuration (used with no file and no seed environment
 * variables). docs/configuration.md explains the weights; examples/default.yaml writes it out.
 *
 * - prefix-cache-scorer 3: locality is the point of the router.
 * - inflight-load-scorer 4: larger than the prefix weight so that, once the endpoint holding a
 *   hot prefix has ~12 work units (requests, or ~3k uncomputed prompt tokens) more in flight than
 *   the least loaded one, the request spills and the prefix spreads (with min-max load scores
 *   bounded in [0,1], a load weight below the prefix weight could never override a full match).
 * - queue-scorer 1, kv-cache-utilization-scorer 1: the engines' own view (scraped, so late),
 *   which also sees traffic from other router replicas.
 * - session-affinity-scorer 2: explicit sessions only (x-session-token, x-session-id); client-IP
 *   affinity off, since many users behind one IP hot-spot one replica.
 * - no-hit-lru-scorer 1: when no endpoint holds any of the prompt, prefer the endpoint least
 *   recently given a cold prompt, so new prefixes seed different endpoints even when requests
 *   arrive one at a time (in-flight load is then equal everywhere and cannot spread them).
 * - max-score-picker: top total, ties at random.
 */
import type { EndpointPickerConfigDoc } from './config-schema.js';

/** The default document (a fresh copy per call, so callers may edit it). */
export function defaultConfigDoc(): EndpointPickerConfigDoc {
  return {
    apiVersion: 'llm-d.ai/v1alpha1',
    kind: 'EndpointPickerConfig',
    plugins: [
      { type: 'prefix-cache-scorer' },
      { type: 'inflight-load-scorer' },
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
          { pluginRef: 'prefix-cache-scorer', weight: 3 },
          { pluginRef: 'inflight-load-scorer', weight: 4 },
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
