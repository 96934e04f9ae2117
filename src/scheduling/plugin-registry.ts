/**
 * The plugin registry: plugin type id -> definition (kind, parameter schema, factory). It is an
 * instance, never a global: `createDefaultRegistry()` (builtin-plugins.ts) returns one holding
 * the built-ins, and embedders may register their own plugins on it.
 *
 * A factory receives the instance name, the parameters already parsed by the type's zod schema
 * (defaults applied) and the shared services ({@link PluginDeps}).
 */
import type { z } from 'zod';
import type { Clock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import type { KvCacheServices } from './kv-cache-services.js';
import type { LoadTracker } from './load-tracker.js';
import type { SessionStore } from './session-store.js';
import type { Filter, Picker, Plugin, Scorer } from './types.js';
import type { PdDecider, ProfileHandler } from './profiles/profile-handler-types.js';

/**
 * What a plugin is, which decides where it may be used: filters, scorers and pickers inside
 * profiles; one profile handler per config (which profiles run, in which order); deciders are
 * referenced by a handler; producers compute data other plugins consume.
 */
export type PluginKind = 'filter' | 'scorer' | 'picker' | 'profile-handler' | 'decider' | 'producer';

/**
 * Names of data one plugin computes for others in the same scheduling cycle (per profile):
 * `prefix-prediction` (predicted cached prefix per candidate), `session-binding` (the request
 * is bound to a session endpoint).
 */
export type DataKey = 'prefix-prediction' | 'session-binding';

/** Shared services a plugin factory may use. */
export interface PluginDeps {
  readonly clock: Clock;
  readonly rng: Rng;
  /** The scheduler's in-flight load tracker. */
  readonly load: LoadTracker;
  /** Session bindings (in memory by default). */
  readonly sessions: SessionStore;
  /** Precise prefix routing services (tokenizer + block index); absent when not configured. */
  readonly kvCache?: KvCacheServices;
}

/** Any plugin a factory can return. */
export type AnyPlugin = Filter | Scorer | Picker | ProfileHandler | PdDecider | Plugin;

/** How to build one plugin type. */
export interface PluginDefinition<P = unknown> {
  /** Type id, kebab-case with the kind as suffix (`queue-scorer`). */
  readonly type: string;
  readonly kind: PluginKind;
  /** One line for docs and error messages. */
  readonly description: string;
  /** Schema of `parameters` (compiled once; unknown keys rejected). */
  readonly params: z.ZodType<P>;
  /** Data this plugin computes for later plugins of the same profile. */
  readonly produces?: readonly DataKey[];
  /** Data this plugin cannot work without: a producer must run before it in the same profile. */
  readonly consumes?: readonly DataKey[];
  /** Data this plugin uses when present: if a producer is in the profile, it must run before it. */
  readonly reads?: readonly DataKey[];
  create(name: string, params: P, deps: PluginDeps): AnyPlugin;
}

/** Maps plugin type ids to their definitions. */
export class PluginRegistry {
  #defs = new Map<string, PluginDefinition<any>>();

  /** Adds a definition; a type id may be registered once. */
  register<P>(def: PluginDefinition<P>): this {
    if (this.#defs.has(def.type)) {
      throw new KvrError('KVR_ERR_CONFIG', `plugin type "${def.type}" is already registered`);
    }
    this.#defs.set(def.type, def);
    return this;
  }

  /** The definition of `type`, if registered. */
  get(type: string): PluginDefinition<unknown> | undefined {
    return this.#defs.get(type);
  }

  /** Registered type ids, sorted. */
  types(): string[] {
    return [...this.#defs.keys()].sort();
  }

  /**
   * Builds a plugin. `params` are validated (and defaulted) by the type's schema here too, so a
   * registry used without `loadConfig` is still safe.
   */
  create(type: string, name: string, params: unknown, deps: PluginDeps): AnyPlugin {
    const def = this.#defs.get(type);
    if (def === undefined) {
      throw new KvrError('KVR_ERR_CONFIG', `unknown plugin type "${type}"; known types: ${this.types().join(', ')}`);
    }
    const parsed = def.params.safeParse(params ?? {});
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.join('.') || '(parameters)'}: ${i.message}`).join('; ');
      throw new KvrError('KVR_ERR_CONFIG', `plugin "${name}" (${type}): bad parameters: ${why}`);
    }
    return def.create(name, parsed.data, deps);
  }
}
