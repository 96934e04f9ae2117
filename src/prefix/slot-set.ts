/**
 * The approximate index's model of a slot engine's cache (llama.cpp `-np N`): N slots, each
 * holding the block keys of the last prompt sent to it. `put(keys)` picks the slot as llama-server
 * does: the one whose keys share the longest prefix with `keys` when that covers more than
 * `similarity` (10 %) of them, else the least recently used (an empty slot first). Keys are
 * reference-counted across slots; `onHeld` fires when a key becomes held by some slot,
 * `onReleased` when no slot holds it any more.
 */

interface Slot {
  keys: number[];
  lastUsed: number;
}

/** N slots of key sequences; see the file comment. */
export class SlotSet {
  #slots: Slot[];
  readonly #counts = new Map<number, number>();
  readonly #hooks: { onHeld(k: number): void; onReleased(k: number): void };
  readonly #similarity: number;
  #tick = 0;

  constructor(capacity: number, hooks: { onHeld(k: number): void; onReleased(k: number): void }, similarity = 0.1) {
    this.#slots = Array.from({ length: Math.max(1, capacity) }, () => ({ keys: [], lastUsed: 0 }));
    this.#hooks = hooks;
    this.#similarity = similarity;
  }

  /** Number of slots. */
  get capacity(): number {
    return this.#slots.length;
  }

  /** Distinct keys held by some slot. */
  get size(): number {
    return this.#counts.size;
  }

  /** Every held key once. */
  keys(): IterableIterator<number> {
    return this.#counts.keys();
  }

  /** Records that the engine's slot for `keys` now holds them. */
  put(keys: ArrayLike<number>): void {
    const arr = Array.from(keys);
    let best: Slot | undefined;
    let bestLen = 0;
    for (const s of this.#slots) {
      const n = Math.min(s.keys.length, arr.length);
      let l = 0;
      while (l < n && s.keys[l] === arr[l]) l++;
      if (l > bestLen && l / Math.max(1, arr.length) > this.#similarity) {
        best = s;
        bestLen = l;
      }
    }
    if (best === undefined) for (const s of this.#slots) if (best === undefined || s.lastUsed < best.lastUsed) best = s;
    const slot = best!;
    for (const k of arr) this.#inc(k);
    for (const k of slot.keys) this.#dec(k);
    slot.keys = arr;
    slot.lastUsed = ++this.#tick;
  }

  /** Changes the number of slots (dropping the least recently used ones when shrinking). */
  resize(capacity: number): void {
    const n = Math.max(1, capacity);
    if (n >= this.#slots.length) {
      while (this.#slots.length < n) this.#slots.push({ keys: [], lastUsed: 0 });
      return;
    }
    const keep = [...this.#slots].sort((a, b) => b.lastUsed - a.lastUsed);
    for (const s of keep.slice(n)) for (const k of s.keys) this.#dec(k);
    this.#slots = keep.slice(0, n);
  }

  #inc(k: number): void {
    const c = this.#counts.get(k) ?? 0;
    this.#counts.set(k, c + 1);
    if (c === 0) this.#hooks.onHeld(k);
  }

  #dec(k: number): void {
    const c = this.#counts.get(k) ?? 0;
    if (c <= 1) {
      this.#counts.delete(k);
      if (c === 1) this.#hooks.onReleased(k);
    } else this.#counts.set(k, c - 1);
  }
}
