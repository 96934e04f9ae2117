/**
 * The built-in plugins, and `createDefaultRegistry()`, a fresh registry holding them.
 */
import { PluginRegistry, type PluginDefinition } from './plugin-registry.js';
import { maxScorePickerPlugin } from './pickers/max-score-picker.js';
import { randomPickerPlugin } from './pickers/random-picker.js';
import { roundRobinPickerPlugin } from './pickers/round-robin-picker.js';
import { sglangCacheAwarePickerPlugin } from './pickers/sglang-cache-aware-picker.js';
import { sglangRadixPickerPlugin } from './pickers/sglang-radix-picker.js';
import { inflightLoadScorerPlugin } from './scorers/inflight-load-scorer.js';
import { leastRequestScorerPlugin } from './scorers/least-request-scorer.js';
import { kvCacheUtilizationScorerPlugin } from './scorers/kv-cache-utilization-scorer.js';
import { loadAwareScorerPlugin } from './scorers/load-aware-scorer.js';
import { noHitLruScorerPlugin } from './scorers/no-hit-lru-scorer.js';
import { noHitRecentWorkScorerPlugin } from './scorers/no-hit-recent-work-scorer.js';
import { prefillCostScorerPlugin } from './scorers/prefill-cost-scorer.js';
import { precisePrefixScorerPlugin } from './scorers/precise-prefix-scorer.js';
import { prefixCacheScorerPlugin } from './scorers/prefix-cache-scorer.js';
import { queueScorerPlugin } from './scorers/queue-scorer.js';
import { sessionAffinityScorerPlugin } from './scorers/session-affinity-scorer.js';
import { alwaysDisaggPdDeciderPlugin, neverDisaggPdDeciderPlugin } from './deciders/always-disagg-pd-decider.js';
import { prefixBasedPdDeciderPlugin } from './deciders/prefix-based-pd-decider.js';
import { decodeFilterPlugin } from './filters/decode-filter.js';
import { labelSelectorFilterPlugin } from './filters/label-selector-filter.js';
import { prefillFilterPlugin } from './filters/prefill-filter.js';
import { approxPrefixCacheProducerPlugin } from './producers/approx-prefix-cache-producer.js';
import { disaggProfileHandlerPlugin } from './profiles/disagg-profile-handler.js';
import { singleProfileHandlerPlugin } from './profiles/single-profile-handler.js';

/**
 * Definitions of every built-in plugin. What a plugin produces for / reads from the others of its
 * profile is declared here (the config loader checks the order, config/validate-profiles.ts).
 */
export const BUILTIN_PLUGINS: readonly PluginDefinition<any>[] = [
  { ...prefixCacheScorerPlugin, produces: ['prefix-prediction'] },
  { ...precisePrefixScorerPlugin, produces: ['prefix-prediction'] },
  { ...prefillCostScorerPlugin, reads: ['prefix-prediction'] },
  queueScorerPlugin,
  kvCacheUtilizationScorerPlugin,
  loadAwareScorerPlugin,
  inflightLoadScorerPlugin,
  leastRequestScorerPlugin,
  { ...sessionAffinityScorerPlugin, produces: ['session-binding'] },
  { ...noHitLruScorerPlugin, reads: ['prefix-prediction', 'session-binding'] },
  { ...noHitRecentWorkScorerPlugin, reads: ['prefix-prediction', 'session-binding'] },
  decodeFilterPlugin,
  prefillFilterPlugin,
  labelSelectorFilterPlugin,
  singleProfileHandlerPlugin,
  disaggProfileHandlerPlugin,
  prefixBasedPdDeciderPlugin,
  alwaysDisaggPdDeciderPlugin,
  neverDisaggPdDeciderPlugin,
  approxPrefixCacheProducerPlugin,
  maxScorePickerPlugin,
  randomPickerPlugin,
  roundRobinPickerPlugin,
  sglangCacheAwarePickerPlugin,
  sglangRadixPickerPlugin,
];

/** A new registry holding the built-in plugins (no global state: each call is independent). */
export function createDefaultRegistry(): PluginRegistry {
  const r = new PluginRegistry();
  for (const def of BUILTIN_PLUGINS) r.register(def);
  return r;
}
