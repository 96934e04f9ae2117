/** Public API of the simulated vLLM fleet. */
export { startFleet, fleetEndpointList, type SimFleet, type SimFleetOptions, type SimFleetKvEventsOptions, type SimKvEventsInfo } from './fleet.js';
export { SimReplica, type SimReplicaOptions, type SimFaults, type SimKvEventsOptions } from './replica-server.js';
export { KvEventPublisher, toKvEvent, type KvEventPublisherOptions } from './kv-event-publisher.js';
export {
  SimEngine,
  type SimEngineOptions,
  type SimEngineRequest,
  type SimEngineCallbacks,
  type SimEngineResult,
  type SimEngineStats,
  type SimRequestHandle,
} from './engine.js';
export { BlockManager, type BlockManagerOptions, type KvCacheEvent, type CacheHit } from './block-manager.js';
export { chainBlockHash, extendBlockHashes, ROOT_BLOCK_HASH } from './block-hash.js';
export { StepModel, prefillContextSum, type StepCoefficients } from './step-model.js';
export { fitStepCoefficients, predictRow, rowFeatures, type CalibrationRow } from './step-fit.js';
export { PROFILES, getProfile, STEP_FITS, MODEL_SHAPES, deriveNumGpuBlocks, profileKvBlocks, resolveKvBlocks, H200_GPU_BYTES, DEFAULT_GPU_MEMORY_UTILIZATION, type ProfileId, type SimProfile } from './profiles.js';
export { BuiltinTokenizer, loadTokenizer, renderLlama3Chat, type SimTokenizer, type ChatMessage } from './tokenizer.js';
export { LatencyHistogram } from './latency-histogram.js';
