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
