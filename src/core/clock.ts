/**
 * Time is injected everywhere: the router, the scheduler and the simulator read time and set
 * timers only through a {@link Clock}, so the same code runs on the wall clock (`systemClock`)
 * and in simulated time ({@link ManualClock}, driven by tests and `bench --virtual`).
 * All times are milliseconds.
 */

/** Handle of a timer set through a {@link Clock}. */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Current time in milliseconds (monotonic for systemClock). */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

/** The wall clock: `performance.timeOrigin + performance.now()`, timers from Node. */
export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(t) };
  },
};

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when told to. Timers fire in time order (FIFO for equal times)
 * during {@link ManualClock.advance} / {@link ManualClock.runUntilIdle}.
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #heap: ManualTimer[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: ManualTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#push(t);
    return { cancel: () => void (t.cancelled = true) };
  }

  /** Number of timers not yet fired or cancelled. */
  get pending(): number {
    return this.#heap.filter((t) => !t.cancelled).length;
  }

  /** Time of the next live timer, or undefined. */
  nextAt(): number | undefined {
    while (this.#heap.length > 0 && this.#heap[0].cancelled) this.#pop();
    return this.#heap[0]?.at;
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  advance(ms: number): void {
    this.advanceTo(this.#now + ms);
  }

  /** Moves time to `t`, firing every timer due on the way. */
  advanceTo(t: number): void {
    for (;;) {
      const next = this.nextAt();
      if (next === undefined || next > t) break;
      const timer = this.#pop()!;
      this.#now = Math.max(this.#now, timer.at);
      timer.fn();
    }
    this.#now = Math.max(this.#now, t);
  }

  /** Fires timers until none is left (or `maxSteps` fired); returns the number fired. */
  runUntilIdle(maxSteps = 1_000_000): number {
    let n = 0;
    while (n < maxSteps) {
      const next = this.nextAt();
      if (next === undefined) break;
      const timer = this.#pop()!;
      this.#now = Math.max(this.#now, timer.at);
      timer.fn();
      n++;
    }
    return n;
  }

  #less(a: ManualTimer, b: ManualTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(t: ManualTimer): void {
    const h = this.#heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  #pop(): ManualTimer | undefined {
    const h = this.#heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l], h[m])) m = l;
        if (r < h.length && this.#less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
