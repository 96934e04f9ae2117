/**
 * The scheduler: builds the configured profile from the plugin registry, runs it for each request
 * and drives every plugin's request lifecycle hooks.
 *
 *   schedule(request, endpoints)
 *     └─ profile handler (single profile for now; a P/D handler would pick decode then prefill)
 *          └─ ProfileRunner: filters -> scorers -> weighted totals -> picker
 *     └─ onPicked on the load tracker, then on every plugin that observes requests
 *     └─ SchedulingResult: endpoint, ranked fallbacks, top-5 scores, reason, durationMs
 *
 * Lifecycle: each pick opens one assignment (kept in the request's memo). `onFirstToken` is
 * forwarded once per assignment, `onComplete` exactly once; `reassign` completes the old
 * assignment as failed and opens one on the new endpoint. Calls for an endpoint the request is
 * not assigned to are ignored, so a double completion cannot corrupt the load accounting.
 */
import { systemClock, type Clock } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { KvrError } from '../core/errors.js';
import type { InferenceRequest } from '../core/request.js';
import { mathRng, type Rng } from '../core/rng.js';
import type { SchedulerConfig } from '../config/scheduler-config.js';
import { createDefaultRegistry } from './builtin-plugins.js';
import { explainDecision } from './explain-decision.js';
import type { KvCacheServices } from './kv-cache-services.js';
import { LoadTracker } from './load-tracker.js';
import type { AnyPlugin, PluginDeps, PluginRegistry } from './plugin-registry.js';
import { ProfileRunner } from './profile-runner.js';
import { InMemorySessionStore, type SessionStore } from './session-store.js';
import type {
  Filter, Picker, RequestObserver, RequestOutcome, Scheduler, SchedulingContext, SchedulingProfile,
  SchedulingResult, Scorer, WeightedScorer,
} from './types.js';

/** Services the scheduler and its plugins use; everything has a production default. */
export interface SchedulerDeps {
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** Default: Math.random. */
  readonly rng?: Rng;
  /** Default: `createDefaultRegistry()`. */
  readonly registry?: PluginRegistry;
  /** Default: a new LoadTracker. */
  readonly load?: LoadTracker;
  /** Default: an InMemorySessionStore on `clock`. */
  readonly sessions?: SessionStore;
  /** Precise prefix routing services; without them the precise scorer routes approximately. */
  readonly kvCache?: KvCacheServices;
}

/** The scheduler plus handles the gateway and dashboards use. */
export interface KvrouteScheduler extends Scheduler {
  /** The profile in use. */
  readonly profile: SchedulingProfile;
  /** Plugin instances by name. */
  readonly plugins: ReadonlyMap<string, AnyPlugin>;
  readonly load: LoadTracker;
  readonly sessions: SessionStore;
  /**
   * Forgets per-endpoint state of an endpoint leaving the pool: the load tracker's and that of
   * every plugin with a `removeEndpoint(endpoint)` method (the prefix index).
   */
  removeEndpoint(endpoint: Pick<Endpoint, 'id' | 'index'>): void;
}

const ASSIGNED_KEY = 'scheduler/assigned';

interface Assignment {
  endpoint: Endpoint;
  firstToken: boolean;
}

const FAILED: RequestOutcome = { ok: false, status: 0 };

/** Builds a {@link KvrouteScheduler} from a validated config (see `loadConfig`). */
export function createScheduler(config: SchedulerConfig, deps: SchedulerDeps = {}): KvrouteScheduler {
  const clock = deps.clock ?? systemClock;
  const pluginDeps: PluginDeps = {
    clock,
    rng: deps.rng ?? mathRng,
    load: deps.load ?? new LoadTracker(),
    sessions: deps.sessions ?? new InMemorySessionStore(clock),
    ...(deps.kvCache !== undefined ? { kvCache: deps.kvCache } : {}),
  };
  const registry = deps.registry ?? createDefaultRegistry();
  const plugins = new Map<string, AnyPlugin>();
  for (const p of config.plugins) {
    if (plugins.has(p.name)) throw new KvrError('KVR_ERR_CONFIG', `plugin name "${p.name}" is declared twice; give each instance a unique name`);
    plugins.set(p.name, registry.create(p.type, p.name, p.parameters, pluginDeps));
  }
  if (config.schedulingProfiles.length !== 1) {
    throw new KvrError('KVR_ERR_CONFIG', `kvroute runs exactly one scheduling profile for now (P/D profiles come later); got ${config.schedulingProfiles.length}`);
  }
  const profile = buildProfile(config.schedulingProfiles[0], plugins, registry);
  return new ConfiguredScheduler(profile, plugins, pluginDeps);
}

function buildProfile(pc: SchedulerConfig['schedulingProfiles'][number], plugins: Map<string, AnyPlugin>, registry: PluginRegistry): SchedulingProfile {
  const filters: Filter[] = [];
  const scorers: WeightedScorer[] = [];
  const pickers: Picker[] = [];
  for (const ref of pc.plugins) {
    const plugin = plugins.get(ref.pluginRef);
    if (plugin === undefined) {
      throw new KvrError('KVR_ERR_CONFIG', `profile "${pc.name}": pluginRef "${ref.pluginRef}" is not a declared plugin; declared: ${[...plugins.keys()].join(', ')}`);
    }
    const kind = registry.get(plugin.type)?.kind;
    if (kind === 'filter') filters.push(plugin as Filter);
    else if (kind === 'scorer') scorers.push({ scorer: plugin as Scorer, weight: ref.weight });
    else pickers.push(plugin as Picker);
  }
  if (pickers.length !== 1) {
    throw new KvrError('KVR_ERR_CONFIG', `profile "${pc.name}" needs exactly one picker, has ${pickers.length}`);
  }
  return { name: pc.name, filters, scorers, picker: pickers[0] };
}

function isObserver(p: unknown): p is RequestObserver {
  const o = p as RequestObserver;
  return typeof o.onPicked === 'function' || typeof o.onFirstToken === 'function' || typeof o.onComplete === 'function';
}

class ConfiguredScheduler implements KvrouteScheduler {
  readonly profile: SchedulingProfile;
  readonly plugins: ReadonlyMap<string, AnyPlugin>;
  readonly load: LoadTracker;
  readonly sessions: SessionStore;
  readonly #clock: Clock;
  readonly #runner: ProfileRunner;
  readonly #observers: RequestObserver[];

  constructor(profile: SchedulingProfile, plugins: ReadonlyMap<string, AnyPlugin>, deps: PluginDeps) {
    this.profile = profile;
    this.plugins = plugins;
    this.load = deps.load;
    this.sessions = deps.sessions;
    this.#clock = deps.clock;
    this.#runner = new ProfileRunner(profile);
    // The load tracker first: it reads the prefix prediction the scorers memoized.
    const inProfile: unknown[] = [...profile.filters, ...profile.scorers.map((s) => s.scorer), profile.picker];
    this.#observers = [deps.load, ...inProfile.filter(isObserver)];
  }

  async schedule(request: InferenceRequest, endpoints: readonly Endpoint[]): Promise<SchedulingResult> {
    const t0 = this.#clock.now();
    if (endpoints.length === 0) {
      throw new KvrError('KVR_ERR_NO_ENDPOINT', `no endpoint available for model "${request.model}"; check that its replicas are up and healthy`);
    }
    const ctx: SchedulingContext = { request, now: t0 };
    const pending = this.#runner.run(ctx, endpoints);
    const run = pending instanceof Promise ? await pending : pending;
    try {
      const ranked = run.order.map((i) => run.candidates[i]);
      const endpoint = ranked[0];
      const { candidates, reason } = explainDecision(this.profile, run);
      this.#open(ctx, endpoint);
      return { profile: this.profile.name, endpoint, ranked, candidates, reason, durationMs: this.#clock.now() - t0 };
    } finally {
      run.release();
    }
  }

  reassign(request: InferenceRequest, from: Endpoint, to: Endpoint): void {
    const ctx: SchedulingContext = { request, now: this.#clock.now() };
    const a = request.memo.get(ASSIGNED_KEY) as Assignment | undefined;
    if (a !== undefined && a.endpoint.id !== from.id) return;
    this.#open(ctx, to);
  }

  onFirstToken(request: InferenceRequest, endpoint: Endpoint): void {
    const a = request.memo.get(ASSIGNED_KEY) as Assignment | undefined;
    if (a === undefined || a.firstToken || a.endpoint.id !== endpoint.id) return;
    a.firstToken = true;
    const ctx: SchedulingContext = { request, now: this.#clock.now() };
    for (const o of this.#observers) o.onFirstToken?.(ctx, a.endpoint);
  }

  onComplete(request: InferenceRequest, endpoint: Endpoint, outcome: RequestOutcome): void {
    const a = request.memo.get(ASSIGNED_KEY) as Assignment | undefined;
    if (a === undefined || a.endpoint.id !== endpoint.id) return;
    this.#close({ request, now: this.#clock.now() }, a, outcome);
  }

  removeEndpoint(endpoint: Pick<Endpoint, 'id' | 'index'>): void {
    this.load.removeEndpoint(endpoint);
    for (const p of this.plugins.values()) {
      const r = p as { removeEndpoint?: (e: Pick<Endpoint, 'id' | 'index'>) => void };
      if (typeof r.removeEndpoint === 'function') r.removeEndpoint(endpoint);
    }
  }

  /** Opens an assignment on `endpoint`, closing (as failed) any still open for the request. */
  #open(ctx: SchedulingContext, endpoint: Endpoint): void {
    const prev = ctx.request.memo.get(ASSIGNED_KEY) as Assignment | undefined;
    if (prev !== undefined) this.#close(ctx, prev, FAILED);
    ctx.request.memo.set(ASSIGNED_KEY, { endpoint, firstToken: false } satisfies Assignment);
    for (const o of this.#observers) o.onPicked?.(ctx, endpoint);
  }

  #close(ctx: SchedulingContext, a: Assignment, outcome: RequestOutcome): void {
    ctx.request.memo.delete(ASSIGNED_KEY);
    for (const o of this.#observers) o.onComplete?.(ctx, a.endpoint, outcome);
  }
}
