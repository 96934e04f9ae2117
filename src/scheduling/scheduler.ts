/**
 * The scheduler: builds the configured profile from the plugin registry, runs it for each request
 * and drives every plugin's request lifecycle hooks.
 *
 *   schedule(request, endpoints)
 *     └─ profile handler: single (the one profile) or disagg (decode profile; then, if the
 *        prefill decider says so, the prefill profile on its own cycle state, profiles/cycle-state.ts)
 *          └─ ProfileRunner: filters -> scorers -> weighted totals -> picker
 *     └─ onPicked on the load tracker, then on every plugin that observes requests
 *     └─ SchedulingResult: endpoint, ranked fallbacks, top-5 scores, reason, durationMs
 *
 * Lifecycle: each pick opens one assignment (kept in the request's memo): the primary (decode)
 * one, and for a disaggregated request a prefill one, whose observers see the prefill profile's
 * view of the request. Calls name the endpoint, so one `onComplete(request, prefillEndpoint)`
 * closes the prefill assignment. `onFirstToken` is
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
  Filter, PdDecision, Picker, PrefillPick, RequestObserver, RequestOutcome, Scheduler, SchedulingContext, SchedulingProfile,
  SchedulingResult, Scorer, WeightedScorer,
} from './types.js';
import { profileView } from './profiles/cycle-state.js';
import type { PdDecider, ProfileHandler } from './profiles/profile-handler-types.js';
import type { ProfileRun } from './profile-runner.js';
import { isPickKeysSource, isRemotePickAware, type PickKeys, type RemotePick } from '../sync/remote-pick.js';

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
  /** The primary profile (the only one, or the decode profile of a P/D config). */
  readonly profile: SchedulingProfile;
  /** The prefill profile of a P/D config whose handler has a prefill decider. */
  readonly prefillProfile?: SchedulingProfile;
  /** The profile handler in use (`single-profile-handler` when the config declares none). */
  readonly handler: ProfileHandler;
  /** Plugin instances by name. */
  readonly plugins: ReadonlyMap<string, AnyPlugin>;
  readonly load: LoadTracker;
  readonly sessions: SessionStore;
  /**
   * Forgets per-endpoint state of an endpoint leaving the pool: the load tracker's and that of
   * every plugin with a `removeEndpoint(endpoint)` method (the prefix index).
   */
  removeEndpoint(endpoint: Pick<Endpoint, 'id' | 'index'>): void;
  /** Adds an observer of every assignment (after the plugins; used by src/sync to publish picks). */
  addObserver(observer: RequestObserver): void;
  /** The approximate block keys a picked request carried (first plugin that has them). */
  pickKeysOf(request: InferenceRequest): PickKeys | undefined;
  /** Applies another router replica's pick to every plugin whose pick-fed state can learn from it. */
  applyRemotePick(pick: RemotePick): void;
}

const ASSIGNED_KEY = 'scheduler/assigned';
const PREFILL_KEY = 'scheduler/assigned-prefill';

interface Assignment {
  endpoint: Endpoint;
  firstToken: boolean;
  /** The request as this assignment's profile sees it. */
  view: InferenceRequest;
  observers: readonly RequestObserver[];
}

const FAILED: RequestOutcome = { ok: false, status: 0 };
const IMPLICIT_SINGLE: ProfileHandler = { type: 'single-profile-handler', name: 'single-profile-handler', mode: 'single' };

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
  const handlers = config.plugins.filter((p) => registry.get(p.type)?.kind === 'profile-handler');
  if (handlers.length > 1) throw new KvrError('KVR_ERR_CONFIG', `one profile handler per config; got ${handlers.map((h) => h.name).join(', ')}`);
  const handler = handlers.length === 1 ? (plugins.get(handlers[0].name) as ProfileHandler) : IMPLICIT_SINGLE;
  const byName = (n: string): SchedulerConfig['schedulingProfiles'][number] => {
    const pc = config.schedulingProfiles.find((p) => p.name === n);
    if (pc === undefined) throw new KvrError('KVR_ERR_CONFIG', `${handler.name}: profile "${n}" is not among schedulingProfiles (${config.schedulingProfiles.map((p) => p.name).join(', ')})`);
    return pc;
  };
  if (handler.mode === 'single') {
    if (config.schedulingProfiles.length !== 1) {
      throw new KvrError('KVR_ERR_CONFIG', `${config.schedulingProfiles.length} scheduling profiles need a profile handler that runs them (disagg-profile-handler); got ${handler.name}`);
    }
    return new ConfiguredScheduler(handler, buildProfile(config.schedulingProfiles[0], plugins, registry), undefined, undefined, plugins, pluginDeps);
  }
  const decode = buildProfile(byName(handler.decodeProfile ?? 'decode'), plugins, registry);
  if (handler.prefillDecider === undefined) return new ConfiguredScheduler(handler, decode, undefined, undefined, plugins, pluginDeps);
  const decider = plugins.get(handler.prefillDecider) as PdDecider | undefined;
  if (decider === undefined || typeof (decider as PdDecider).decide !== 'function') {
    throw new KvrError('KVR_ERR_CONFIG', `${handler.name}: deciders.prefill "${handler.prefillDecider}" is not a declared decider plugin`);
  }
  const prefill = buildProfile(byName(handler.prefillProfile ?? 'prefill'), plugins, registry);
  return new ConfiguredScheduler(handler, decode, prefill, decider, plugins, pluginDeps);
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
    else if (kind === 'picker') pickers.push(plugin as Picker);
    else throw new KvrError('KVR_ERR_CONFIG', `profile "${pc.name}": "${ref.pluginRef}" is a ${kind}; profiles hold filters, scorers and one picker`);
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

function observersOf(profile: SchedulingProfile, load: LoadTracker): RequestObserver[] {
  // The load tracker first: it reads the prefix prediction the scorers memoized.
  const inProfile: unknown[] = [...profile.filters, ...profile.scorers.map((s) => s.scorer), profile.picker];
  return [load, ...inProfile.filter(isObserver)];
}

function noPd(decider: PdDecider, reason: string, promptTokens: number, cachedTokens: number): PdDecision {
  return { decider: decider.name, disaggregate: false, reason, promptTokens, cachedTokens };
}

class ConfiguredScheduler implements KvrouteScheduler {
  readonly profile: SchedulingProfile;
  readonly prefillProfile?: SchedulingProfile;
  readonly handler: ProfileHandler;
  readonly plugins: ReadonlyMap<string, AnyPlugin>;
  readonly load: LoadTracker;
  readonly sessions: SessionStore;
  readonly #clock: Clock;
  readonly #runner: ProfileRunner;
  readonly #prefillRunner: ProfileRunner | undefined;
  readonly #decider: PdDecider | undefined;
  readonly #observers: RequestObserver[];
  readonly #prefillObservers: RequestObserver[];

  constructor(handler: ProfileHandler, profile: SchedulingProfile, prefill: SchedulingProfile | undefined, decider: PdDecider | undefined, plugins: ReadonlyMap<string, AnyPlugin>, deps: PluginDeps) {
    this.handler = handler;
    this.profile = profile;
    if (prefill !== undefined) this.prefillProfile = prefill;
    this.plugins = plugins;
    this.load = deps.load;
    this.sessions = deps.sessions;
    this.#clock = deps.clock;
    this.#runner = new ProfileRunner(profile);
    this.#prefillRunner = prefill !== undefined ? new ProfileRunner(prefill) : undefined;
    this.#decider = decider;
    this.#observers = observersOf(profile, deps.load);
    this.#prefillObservers = prefill !== undefined ? observersOf(prefill, deps.load) : [];
  }

  async schedule(request: InferenceRequest, endpoints: readonly Endpoint[]): Promise<SchedulingResult> {
    const t0 = this.#clock.now();
    if (endpoints.length === 0) {
      throw new KvrError('KVR_ERR_NO_ENDPOINT', `no endpoint available for model "${request.model}"; check that its replicas are up and healthy`);
    }
    const ctx: SchedulingContext = { request, now: t0, profile: this.profile.name };
    const pending = this.#runner.run(ctx, endpoints);
    const run = pending instanceof Promise ? await pending : pending;
    let endpoint: Endpoint;
    let ranked: Endpoint[];
    let explained: ReturnType<typeof explainDecision>;
    try {
      ranked = run.order.map((i) => run.candidates[i]);
      endpoint = ranked[0];
      explained = explainDecision(this.profile, run);
    } finally {
      run.release();
    }
    let prefill: { pick: PrefillPick; view: InferenceRequest } | undefined;
    let pd: PdDecision | undefined;
    if (this.#decider !== undefined && this.#prefillRunner !== undefined) {
      const v = this.#decider.decide(ctx, endpoint);
      pd = { decider: this.#decider.name, ...v };
      if (v.disaggregate) {
        const r = await this.#runPrefill(request, endpoints, endpoint, t0);
        if (typeof r === 'string') pd = noPd(this.#decider, r, v.promptTokens, v.cachedTokens);
        else prefill = r;
      }
    }
    this.#open(request, ASSIGNED_KEY, endpoint, request, this.#observers, t0);
    if (prefill !== undefined) this.#open(request, PREFILL_KEY, prefill.pick.endpoint, prefill.view, this.#prefillObservers, t0);
    return {
      profile: this.profile.name, endpoint, ranked, candidates: explained.candidates, reason: explained.reason, durationMs: this.#clock.now() - t0,
      ...(prefill !== undefined ? { prefill: prefill.pick } : {}),
      ...(pd !== undefined ? { pd } : {}),
    };
  }

  /** Runs the prefill profile on its own cycle state; a string says why there is no prefill pick. */
  async #runPrefill(request: InferenceRequest, endpoints: readonly Endpoint[], decode: Endpoint, now: number): Promise<{ pick: PrefillPick; view: InferenceRequest } | string> {
    const profile = this.prefillProfile!;
    const view = profileView(request);
    let run: ProfileRun;
    try {
      const pending = this.#prefillRunner!.run({ request: view, now, profile: profile.name }, endpoints);
      run = pending instanceof Promise ? await pending : pending;
    } catch (err) {
      if (err instanceof KvrError && err.code === 'KVR_ERR_NO_ENDPOINT') return 'no prefill endpoint';
      throw err;
    }
    try {
      const ranked = run.order.map((i) => run.candidates[i]).filter((e) => e.id !== decode.id);
      if (ranked.length === 0) return 'prefill candidate is the decode endpoint';
      return { pick: { profile: profile.name, endpoint: ranked[0], ranked }, view };
    } finally {
      run.release();
    }
  }

  reassign(request: InferenceRequest, from: Endpoint, to: Endpoint): void {
    for (const key of [ASSIGNED_KEY, PREFILL_KEY]) {
      const a = request.memo.get(key) as Assignment | undefined;
      if (a === undefined || a.endpoint.id !== from.id) continue;
      this.#open(request, key, to, a.view, a.observers, this.#clock.now());
      return;
    }
    // Nothing open (e.g. already completed): open a primary assignment, as before.
    if (request.memo.get(ASSIGNED_KEY) === undefined) this.#open(request, ASSIGNED_KEY, to, request, this.#observers, this.#clock.now());
  }

  onFirstToken(request: InferenceRequest, endpoint: Endpoint): void {
    const a = this.#find(request, endpoint)?.a;
    if (a === undefined || a.firstToken) return;
    a.firstToken = true;
    const ctx: SchedulingContext = { request: a.view, now: this.#clock.now() };
    for (const o of a.observers) o.onFirstToken?.(ctx, a.endpoint);
  }

  onComplete(request: InferenceRequest, endpoint: Endpoint, outcome: RequestOutcome): void {
    const f = this.#find(request, endpoint);
    if (f === undefined) return;
    this.#close(request, f.key, f.a, outcome, this.#clock.now());
  }

  removeEndpoint(endpoint: Pick<Endpoint, 'id' | 'index'>): void {
    this.load.removeEndpoint(endpoint);
    for (const p of this.plugins.values()) {
      const r = p as { removeEndpoint?: (e: Pick<Endpoint, 'id' | 'index'>) => void };
      if (typeof r.removeEndpoint === 'function') r.removeEndpoint(endpoint);
    }
  }

  addObserver(observer: RequestObserver): void {
    this.#observers.push(observer);
    if (this.prefillProfile !== undefined) this.#prefillObservers.push(observer);
  }

  pickKeysOf(request: InferenceRequest): PickKeys | undefined {
    for (const p of this.plugins.values()) {
      if (!isPickKeysSource(p)) continue;
      const k = p.pickKeysOf(request);
      if (k !== undefined && k.keys.length > 0) return k;
    }
    return undefined;
  }

  applyRemotePick(pick: RemotePick): void {
    for (const p of this.plugins.values()) if (isRemotePickAware(p)) p.applyRemotePick(pick);
  }

  #find(request: InferenceRequest, endpoint: Endpoint): { key: string; a: Assignment } | undefined {
    for (const key of [ASSIGNED_KEY, PREFILL_KEY]) {
      const a = request.memo.get(key) as Assignment | undefined;
      if (a !== undefined && a.endpoint.id === endpoint.id) return { key, a };
    }
    return undefined;
  }

  /** Opens an assignment on `endpoint`, closing (as failed) any still open under `key`. */
  #open(request: InferenceRequest, key: string, endpoint: Endpoint, view: InferenceRequest, observers: readonly RequestObserver[], now: number): void {
    const prev = request.memo.get(key) as Assignment | undefined;
    if (prev !== undefined) this.#close(request, key, prev, FAILED, now);
    request.memo.set(key, { endpoint, firstToken: false, view, observers } satisfies Assignment);
    const ctx: SchedulingContext = { request: view, now };
    for (const o of observers) o.onPicked?.(ctx, endpoint);
  }

  #close(request: InferenceRequest, key: string, a: Assignment, outcome: RequestOutcome, now: number): void {
    request.memo.delete(key);
    const ctx: SchedulingContext = { request: a.view, now };
    for (const o of a.observers) o.onComplete?.(ctx, a.endpoint, outcome);
  }
}
