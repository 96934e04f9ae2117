/**
 * kvroute as a library: the scheduler, its configuration, the gateway, the simulator, precise
 * prefix routing (KV events, block index, tokenization), doctor and bench.
 *
 *   import { loadConfig, createScheduler, startRouter } from 'kvroute';
 *   import { createKvCache, runServe, runDoctor, runBench } from 'kvroute';
 */
export { KvrError, ERROR_CODES, type ErrorCode } from './core/errors.js';
export { systemClock, ManualClock, type Clock, type TimerHandle } from './core/clock.js';
export { seededRng, mathRng, type Rng } from './core/rng.js';
export type { Endpoint, EndpointMetrics, EndpointRole, EngineKind } from './core/endpoint.js';
export type { InferenceRequest, ChatMessage, ApiKind } from './core/request.js';
export type * from './scheduling/types.js';
export { createScheduler, type KvrouteScheduler, type SchedulerDeps } from './scheduling/scheduler.js';
export { createDefaultRegistry } from './scheduling/builtin-plugins.js';
export { loadConfig, type LoadConfigOptions } from './config/load-config.js';
export type { LoadedConfig, SchedulerConfig } from './config/scheduler-config.js';
export { buildScheduler, buildSchedulerWithConfig, PRESETS, type SchedulerPreset } from './app/build-scheduler.js';
export { startRouter, type RouterOptions, type RunningRouter } from './server/router.js';
// Public port hardening (RouterOptions.publicPort / apiKeys / endpointPrivacy).
export { ApiKeyStore } from './server/http/api-keys.js';
export { type PublicPortOptions, defaultPublicPortOptions } from './server/http/public-server.js';
export { type EndpointPrivacyOptions } from './server/http/endpoint-privacy.js';
export { tenantOf } from './server/http/public-guard.js';
export { RequestLifecycles, RequestLifecycle, UpstreamAttempt, OutlierDetector, RetryBudget, type LifecycleOptions, type LifecycleSummary, type Decision, type DecisionRecord, type UpstreamFailure } from './lifecycle/index.js';
export { EndpointPool, parseEndpointList, type EndpointSpec } from './datalayer/endpoint-pool.js';
export { RouterMetrics } from './metrics/router-metrics.js';
export { runDemo, type DemoOptions } from './demo/run-demo.js';
export type { DemoSummary } from './demo/demo-summary.js';
export {
  startFleet,
  fleetEndpointList,
  KvEventPublisher,
  type SimFleet,
  type SimFleetOptions,
  type SimFleetKvEventsOptions,
  type SimKvEventsInfo,
  type KvEventPublisherOptions,
} from './sim/index.js';

// `kvroute serve` as a function.
export { runServe, type ServeOptions } from './app/serve.js';

// Precise prefix routing, assembled (tokenizer + block index + indexer + event ingestion).
export { createKvCache, redisUrl, tokenizerSourceFrom, type KvCache, type KvCacheOptions, type TokenizerSource } from './app/kv-cache.js';
export type { KvCacheServices, BlockKey, PrefixRun } from './scheduling/kv-cache-services.js';

// vLLM KV events over ZeroMQ: wire codec and ingestion.
export type {
  KvEvent,
  KvEventBatch,
  KvEventSink,
  BlockStoredEvent,
  BlockRemovedEvent,
  AllBlocksClearedEvent,
  EventIngestStats,
  EndpointEventStats,
} from './events/index.js';
export {
  encodeEventBatch,
  decodeEventBatch,
  decodeEvent,
  normalizeHash,
  type EventEncoding,
  type EncodeOptions as EventEncodeOptions,
  type DecodedBatch,
  EventIngestor,
  ingestEndpointOf,
  type EventIngestorOptions,
  type IngestEndpoint,
  fetchReplay,
  type ReplayedBatch,
  type ReplayOptions,
  END_SEQ,
  encodeSeq,
  decodeSeq,
  isEndSeq,
  formatTopic,
  parseTopic,
  vllmBinds,
  RecordingSink,
  type RecordedBatch,
} from './events/index.js';

// The KV block index: block keys, memory and Redis backends, the event-applying indexer.
export { BlockKeyer, DEFAULT_KEY_SEED, type RouterKey } from './kv-index/block-keys.js';
export { createBlockIndex, type BlockIndexConfig } from './kv-index/create-block-index.js';
export { MemoryBlockIndex, type MemoryBlockIndexOptions } from './kv-index/memory-index.js';
export { RedisBlockIndex, type RedisBlockIndexOptions } from './kv-index/redis-index.js';
export { InstrumentedBlockIndex } from './kv-index/instrumented-index.js';
export { KvIndexer, type KvIndexerOptions, type KvIndexerStats } from './kv-index/kv-indexer.js';
export type { KvBlockIndex, EngineBatch, EngineOp, ApplyOutcome, FenceMode } from './kv-index/kv-block-index.js';
export type { IndexStats } from './kv-index/types.js';

// Tokenization exactly like vLLM.
export {
  RequestTokenizer,
  createRequestTokenizer,
  requestTokenizerConfigSchema,
  type RequestTokenizerConfig,
  type RequestTokenizerStats,
} from './tokenize/index.js';

// kvroute doctor and kvroute bench.
export { runDoctor, formatDoctorReport, doctorJson, type DoctorOptions } from './doctor/index.js';
export type { DoctorReport, Finding, FindingLevel, CheckId } from './doctor/index.js';
export { runBench, type BenchOptions, type BenchReport, type StrategyReport } from './bench/run-bench.js';
export { formatBenchReport, benchJson } from './bench/report.js';
export * from './discovery/index.js';
// Engine adapters (vLLM, SGLang, llama.cpp, generic OpenAI): metric maps, cached tokens, cache model, detection.
export { adapterFor, ENGINE_ADAPTERS, ENGINE_KINDS, readAnyUsage } from './engines/registry.js';
export { detectEngine, engineFromMetricsText, engineFromModels } from './engines/detect.js';
export type { EngineAdapter, EngineUsage, EngineMetricMap, CacheReset } from './engines/types.js';

// Envoy ext_proc endpoint picker (llm-d EPP protocol): docs/ext-proc.md
export { runServeExtProc, type ExtProcServeOptions } from './app/serve.js';
export { startEndpointPicker, type EndpointPickerOptions, type RunningEndpointPicker } from './server/ext-proc/start-endpoint-picker.js';
export { startExtProcServer, type ExtProcServerOptions, type RunningExtProc } from './server/ext-proc/ext-proc-server.js';
export { LifecycleBackend, type LifecycleBackendOptions } from './server/ext-proc/lifecycle-backend.js';
export type { EndpointPickerBackend, Pick as EndpointPick, PickRequest, PickedExchange, ResponseStart } from './server/ext-proc/picker-backend.js';
export { EXT_PROC_SERVICE, extProcProtoDir, loadExtProcPackage } from './server/ext-proc/proto-loader.js';
// Prefill/decode disaggregation: profile handlers and deciders, the sidecar, in-gateway orchestration.
export type { ProfileHandler, PdDecider, PdVerdict } from './scheduling/profiles/profile-handler-types.js';
export type { PdDecision, PrefillPick } from './scheduling/types.js';
export { prefixBasedVerdict, type PrefixBasedPdDeciderParams } from './scheduling/deciders/prefix-based-pd-decider.js';
export { endpointRole, ROLE_LABEL } from './scheduling/filters/endpoint-role.js';
export { PREFILLER_HEADER, prefillerHeader, buildPrefillBody, buildDecodeBody } from './pd/prefill-request.js';
export { runPrefillLeg, type PrefillLegOptions, type PrefillLegResult } from './pd/prefill-leg.js';
export { releasePrefill, type ReleaseResult } from './pd/release-prefill.js';
export { PdGateway, type PdGatewayOptions, type DecodePlan } from './pd/gateway-orchestrator.js';
export { Sidecar, type SidecarOptions } from './sidecar/sidecar-server.js';
export { runPdVirtual, type PdBenchOptions, type PdBenchResult, type PdFleetShape } from './pd/pd-virtual-bench.js';
export { KV_LINKS, transferMs, type KvLink } from './sim/pd/transfer-model.js';
export type { SimPdOptions } from './sim/pd/create-pd-connector.js';
