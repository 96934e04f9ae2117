/**
 * Abort state whose AbortController is made only when something reads {@link LazyAbort.signal}.
 * The request path aborts through a plain flag and at most one synchronous hook, so a request
 * that is never aborted, and whose signal nobody reads, allocates no controller and no listener.
 * Shared by the request lifecycle and each upstream attempt.
 */
export class LazyAbort {
  #ac: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #hook: ((reason: unknown) => void) | undefined;

  /** Aborted with {@link reason} once {@link abort} ran (made on first read). */
  get signal(): AbortSignal {
    if (this.#ac === undefined) {
      this.#ac = new AbortController();
      if (this.#aborted) this.#ac.abort(this.#reason);
    }
    return this.#ac.signal;
  }
  /** True once aborted (same as `signal.aborted`, without making a signal). */
  get aborted(): boolean {
    return this.#aborted;
  }
  /** The first abort's reason (same as `signal.reason`). */
  get reason(): unknown {
    return this.#reason;
  }

  /** `fn` runs once, synchronously, on abort (at once if already aborted); a second call replaces the first. */
  onAbort(fn: (reason: unknown) => void): void {
    if (this.#aborted) fn(this.#reason);
    else this.#hook = fn;
  }

  /** Aborts with `reason`; false (and nothing done) when already aborted. */
  abort(reason: unknown): boolean {
    if (this.#aborted) return false;
    this.#aborted = true;
    this.#reason = reason;
    this.#ac?.abort(reason);
    const fn = this.#hook;
    this.#hook = undefined;
    fn?.(reason);
    return true;
  }
}
