/**
 * kvroute's default scheduling configuration (used with no file and no seed environment
 * variables). docs/configuration.md explains the weights; examples/default.yaml writes it out.
 *
 * - precise-prefix-cache-scorer 3: locality is the point of the router. Precise when KV events
 *   flow (block-exact, from the engines), else it routes with its embedded approximate scorer.
 *   commonPrefixShare 0.5: leading blocks found in at least half of the last 200 requests (a
 *   system prompt or tool preamble all traffic shares) count as held by every endpoint, for this
 *   scorer, the prefill cost and the cold-prompt rule alike. Such a prefix says nothing about where
 *   a conversation belongs; without this rule the endpoint that saw it first got every new
 *   conversation at low load (multi-turn chat at 1.7 req/s: balance 8.0 of 8, now 1.07-1.20).
 * - prefill-cost-scorer 4, uncachedWeight 2: locality and load in one unit (work): the prompt
 *   tokens this request would prefill on each endpoint plus the work already in flight there. A
 *   cache miss's prefill counts twice: once as this request's own wait, once as the work it adds
 *   in front of every later request on that endpoint. So a long cached prefix keeps its request
 *   home until the home endpoint's extra work exceeds twice the prefill it would cost elsewhere; a
 *   short one spreads at once. Measured with `kvroute bench` (docs/benchmarks.md).
 * - queue-scorer 1, kv-cache-utilization-scorer 1: the engines' own view (scraped, so late),
 *   which also sees traffic from other router replicas.
 * - session-affinity-scorer 2: explicit sessions only (x-session-token, x-session-id); client-IP
 *   affinity off, since many users behind one IP hot-spot one replica.
 * - no-hit-lru-scorer 6 and no-hit-recent-work-scorer 3 place COLD prompts (no endpoint holds
 *   any of them; neutral otherwise). A cold prompt seeds a prefix family whose later requests
 *   follow it, so families, not requests, must spread: the LRU term deals them out in turn (6),
 *   and the recent-work term (3) steers them away from endpoints that were given the most work
 *   lately. In-flight load alone placed families by the noise of the instant (8 replicas ended
 *   with 86 to 106 requests each on the llm-d preset).
 * - max-score-picker: top total, ties at random.
 */
import type { EndpointPickerConfigDoc } from './config-schema.js';

/** The default document (a fresh copy per call, so callers may edit it). */
export function defaultConfigDoc(): EndpointPickerConfigDoc {
  return {
    apiVersion: 'llm-d.ai/v1alpha1',
    kind: 'EndpointPickerConfig',
    plugins: [
      { type: 'precise-prefix-cache-scorer', parameters: { commonPrefixShare: 0.5, commonPrefixWindow: 200 } },
      { type: 'prefill-cost-scorer', parameters: { uncachedWeight: 2 } },
      { type: 'queue-scorer' },
      { type: 'kv-cache-utilization-scorer' },
      { type: 'session-affinity-scorer', parameters: { clientIp: false } },
      { type: 'no-hit-lru-scorer' },
      { type: 'no-hit-recent-work-scorer' },
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
          { pluginRef: 'no-hit-lru-scorer', weight: 6 },
          { pluginRef: 'no-hit-recent-work-scorer', weight: 3 },
          { pluginRef: 'max-score-picker' },
        ],
      },
    ],
  };
}
