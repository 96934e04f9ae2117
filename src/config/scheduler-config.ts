/**
 * The typed configuration the scheduler is built from: llm-d's `EndpointPickerConfig` shape after
 * validation (plugin names defaulted, parameters parsed, weights defaulted to 1).
 */

/** One declared plugin instance. */
export interface PluginConfig {
  /** Registered plugin type id (`prefix-cache-scorer`). */
  readonly type: string;
  /** Instance name, unique in the config (defaults to the type). */
  readonly name: string;
  /** Parameters, already parsed by the type's schema (defaults applied). */
  readonly parameters: Readonly<Record<string, unknown>>;
}

/** A plugin used in a profile; `weight` matters for scorers only. */
export interface ProfilePluginRef {
  readonly pluginRef: string;
  readonly weight: number;
}

/** A scheduling profile: filters, weighted scorers and exactly one picker, by reference. */
export interface ProfileConfig {
  readonly name: string;
  readonly plugins: readonly ProfilePluginRef[];
}

/** What `createScheduler` needs. */
export interface SchedulerConfig {
  readonly plugins: readonly PluginConfig[];
  readonly schedulingProfiles: readonly ProfileConfig[];
}

/** Where the loaded configuration came from. */
export type ConfigSource = 'default' | 'file' | 'text' | 'env';

/** What `loadConfig` returns: the scheduler config plus what the caller should know. */
export interface LoadedConfig extends SchedulerConfig {
  /** Sources applied, in order (e.g. `['file', 'env']`). */
  readonly sources: readonly ConfigSource[];
  /** Things accepted but not (yet) acting as asked; the caller logs them. */
  readonly warnings: readonly string[];
  /** Settings read from the environment that later components will use. */
  readonly extras: {
    /** KVCACHE_INDEXER_REDIS_ADDR, accepted; the Redis index is not active yet. */
    readonly kvCacheIndexerRedisAddr?: string;
    /** PD_ENABLED: true when the profiles were split into decode + prefill by it (config/pd-env.ts). */
    readonly pdEnabled: boolean;
  };
}
