/**
 * What router replicas share about a pick (src/sync/router-sync.ts), and the two small plugin
 * interfaces the scheduler uses to export and apply it: a plugin that keeps router-local state fed
 * by picks (the approximate prefix index, the cold-request spreaders) implements
 * {@link RemotePickAware}; the approximate prefix scorers also implement {@link PickKeysSource}
 * so a local pick can be published with the block keys that were routed.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { InferenceRequest } from '../core/request.js';

/** The block keys of a pick and the scheme they were made with (block chars / max blocks). */
export interface PickKeys {
  /** e.g. `text/64/256`: a receiver applies keys only to a scorer with the same scheme. */
  readonly scheme: string;
  readonly keys: Float64Array;
}

/** A pick made by another router replica, resolved to this router's endpoint object. */
export interface RemotePick {
  readonly endpoint: Endpoint;
  /** Approximate block keys routed to `endpoint` (absent when the sender had none). */
  readonly keys?: PickKeys;
  /** Prompt tokens the sender predicted uncached on `endpoint` (its prefill work). */
  readonly uncachedTokens: number;
  /** Whether no candidate had a prefix hit at the sender (a cold request). */
  readonly cold: boolean;
  /** When this router applies it (ms, this router's clock). */
  readonly now: number;
}

/** A plugin whose pick-fed state also learns from other replicas' picks. */
export interface RemotePickAware {
  applyRemotePick(pick: RemotePick): void;
}

/** A plugin that can say which block keys a (scored, picked) request carried. */
export interface PickKeysSource {
  pickKeysOf(request: InferenceRequest): PickKeys | undefined;
}

/** Type guard for {@link RemotePickAware}. */
export function isRemotePickAware(p: unknown): p is RemotePickAware {
  return typeof (p as RemotePickAware | undefined)?.applyRemotePick === 'function';
}

/** Type guard for {@link PickKeysSource}. */
export function isPickKeysSource(p: unknown): p is PickKeysSource {
  return typeof (p as PickKeysSource | undefined)?.pickKeysOf === 'function';
}
