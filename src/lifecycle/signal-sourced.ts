import type { ApiKind, InferenceRequest } from '../core/request.js';

/**
 * A request whose `signal` is read through a source the request lifecycle attaches when it
 * decides the request (`RequestLifecycle.decide`). Against defining an accessor on each request
 * object (`Object.defineProperty`, which gives every request its own hidden class and costs a
 * few microseconds), the getter lives on the prototype and the lifecycle only sets a field.
 * Requests of other shapes still get the property defined (see request-lifecycle.ts).
 */
export class SignalSourced {
  /** What `signal` reads (the request's lifecycle), or undefined before it is decided. */
  signalSource: { readonly signal: AbortSignal } | undefined = undefined;

  /** Aborted when the client went away (made only when read). */
  get signal(): AbortSignal | undefined {
    return this.signalSource?.signal;
  }
  set signal(s: AbortSignal | undefined) {
    this.signalSource = s === undefined ? undefined : { signal: s };
  }
}

/**
 * The one class of routed requests (the gateway's parsed requests and the virtual bench's): one
 * hidden class for every request, `signal` from the lifecycle.
 */
export class SourcedRequest extends SignalSourced implements InferenceRequest {
  readonly memo = new Map<string, unknown>();
  constructor(
    readonly id: string,
    readonly api: ApiKind,
    readonly model: string,
    readonly body: Record<string, unknown>,
    readonly promptText: string,
    readonly maxTokens: number,
    readonly stream: boolean,
    readonly clientIp: string,
    readonly headers: Readonly<Record<string, string | undefined>>,
    readonly arrivedAt: number,
  ) {
    super();
  }
}
