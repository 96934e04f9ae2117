/**
 * kvroute as a library: the scheduler, its configuration, the gateway, and the simulator.
 *
 *   import { loadConfig, createScheduler, startRouter } from 'kvroute';
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
export { EndpointPool, parseEndpointList, type EndpointSpec } from './datalayer/endpoint-pool.js';
export { RouterMetrics } from './metrics/router-metrics.js';
export { runDemo, type DemoOptions } from './demo/run-demo.js';
export type { DemoSummary } from './demo/demo-summary.js';
export { startFleet, type SimFleet, type SimFleetOptions } from './sim/index.js';
