/**
 * llama.cpp's slot cache for the simulator: `-np N` slots, each keeping only the tokens of the
 * last prompt it processed (plus its output). A new request takes, among idle slots, the one
 * whose cached tokens share the longest common prefix with its prompt when that prefix covers
 * more than `similarity` (0.1) of the prompt, else the least recently used idle slot; with no idle
 * slot it waits (llama.cpp's deferred tasks). Its cached tokens = that common prefix (at most the
 * prompt minus one token); the engine recomputes the rest.
 */
import type { KvrError } from '../../core/errors.js';
import type { SimEngine, SimEngineCallbacks, SimEngineRequest, SimRequestHandle } from '../engine.js';

interface Slot {
  id: number;
  tokens: number[];
  busy: boolean;
  lastUsed: number;
}

interface Waiting {
  req: SimEngineRequest;
  cb: SimEngineCallbacks;
  inner: SimRequestHandle | undefined;
  cancelled: boolean;
}

/** Length of the common prefix of `a` and `b`. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Counters of the slot cache (llama.cpp's /metrics). */
export interface SlotStats {
  /** Prompt tokens evaluated (not served from a slot). */
  promptEvaluated: number;
  predicted: number;
  busySlots: number;
  deferred: number;
  /** Tokens held by all slots. */
  cachedTokens: number;
}

/** The slots of one simulated llama.cpp server. */
export class SlotCache {
  readonly #slots: Slot[];
  readonly #queue: Waiting[] = [];
  readonly #engine: SimEngine;
  readonly #similarity: number;
  #tick = 0;
  #evaluated = 0;
  #predicted = 0;

  constructor(engine: SimEngine, slots: number, similarity = 0.1) {
    this.#engine = engine;
    this.#similarity = similarity;
    this.#slots = Array.from({ length: Math.max(1, slots) }, (_, id) => ({ id, tokens: [], busy: false, lastUsed: 0 }));
  }

  get size(): number {
    return this.#slots.length;
  }

  /** Tokens slot `id` holds (a copy), for /slots. */
  slotTokens(id: number): number[] | undefined {
    return this.#slots[id]?.tokens.slice();
  }

  /** Erases slot `id`'s cache; returns the number of tokens erased, undefined for no such slot. */
  erase(id: number): number | undefined {
    const s = this.#slots[id];
    if (s === undefined) return undefined;
    const n = s.tokens.length;
    s.tokens = [];
    return n;
  }

  /** Empties every slot and drops waiting requests' counters (a restart; the engine fails them). */
  reset(): void {
    for (const s of this.#slots) {
      s.tokens = [];
      s.busy = false;
      s.lastUsed = 0;
    }
    for (const w of this.#queue.splice(0)) w.cancelled = true;
    this.#evaluated = 0;
    this.#predicted = 0;
  }

  stats(): SlotStats {
    return {
      promptEvaluated: this.#evaluated,
      predicted: this.#predicted,
      busySlots: this.#slots.filter((s) => s.busy).length,
      deferred: this.#queue.length,
      cachedTokens: this.#slots.reduce((a, s) => a + s.tokens.length, 0),
    };
  }

  /** Submits through a slot (or queues until one is idle). */
  submit(req: SimEngineRequest, cb: SimEngineCallbacks): SimRequestHandle {
    const w: Waiting = { req, cb, inner: undefined, cancelled: false };
    const slot = this.#pick(req.promptTokens);
    if (slot) this.#run(slot, w);
    else this.#queue.push(w);
    return {
      id: req.id,
      abort: () => {
        if (w.cancelled) return;
        w.cancelled = true;
        if (w.inner) w.inner.abort();
        else {
          const i = this.#queue.indexOf(w);
          if (i >= 0) this.#queue.splice(i, 1);
        }
      },
    };
  }

  #pick(prompt: readonly number[]): Slot | undefined {
    let best: Slot | undefined;
    let bestLen = 0;
    for (const s of this.#slots) {
      if (s.busy) continue;
      const l = commonPrefix(s.tokens, prompt);
      if (l > bestLen && l / prompt.length > this.#similarity) {
        best = s;
        bestLen = l;
      }
    }
    if (best) return best;
    for (const s of this.#slots) if (!s.busy && (best === undefined || s.lastUsed < best.lastUsed)) best = s;
    return best;
  }

  #run(slot: Slot, w: Waiting): void {
    slot.busy = true;
    slot.lastUsed = ++this.#tick;
    const prompt = w.req.promptTokens;
    const cached = Math.min(commonPrefix(slot.tokens, prompt), prompt.length - 1);
    // The slot now holds this prompt (its old tokens past the common prefix are overwritten).
    slot.tokens = prompt.slice();
    const out: number[] = [];
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      slot.busy = false;
      slot.tokens = [...prompt, ...out];
      this.#next();
    };
    try {
      w.inner = this.#engine.submit(
        { ...w.req, cachedPrefixTokens: cached },
        {
          ...w.cb,
          onStart: () => {
            this.#evaluated += prompt.length - cached;
            w.cb.onStart?.();
          },
          onToken: (tok, i) => {
            out.push(tok);
            this.#predicted++;
            w.cb.onToken?.(tok, i);
          },
          onFinish: (r) => {
            release();
            w.cb.onFinish?.(r);
          },
          onError: (e) => {
            release();
            w.cb.onError?.(e);
          },
        },
      );
    } catch (e) {
      release();
      throw e;
    }
    const inner = w.inner;
    w.inner = {
      id: inner.id,
      abort: () => {
        inner.abort();
        release();
      },
    };
  }

  #next(): void {
    while (this.#queue.length > 0) {
      const w = this.#queue[0];
      if (w.cancelled) {
        this.#queue.shift();
        continue;
      }
      const slot = this.#pick(w.req.promptTokens);
      if (!slot) return;
      this.#queue.shift();
      try {
        this.#run(slot, w);
      } catch (e) {
        w.cb.onError?.(e as KvrError);
      }
    }
  }
}
