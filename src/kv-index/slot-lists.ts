/**
 * Per-slot intrusive lists of dense entry ids, oldest to newest, kept in typed arrays: the
 * insertion order of an endpoint's entries that the engine-hash map and the speculative entries
 * both keep to drop their oldest past a cap. Append, unlink and move-to-newest are O(1) and
 * allocate nothing per entry; ids are the owners' table ids, so the owner grows the arrays with
 * its table ({@link SlotLists.grow}).
 */
import { grownInt32 } from './key-table.js';

/** No entry. */
export const NIL = -1;

/** Oldest -> newest lists of entry ids, one per slot (see the module comment). */
export class SlotLists {
  #prev: Int32Array<ArrayBuffer>;
  #next: Int32Array<ArrayBuffer>;
  readonly #oldest: number[] = [];
  readonly #newest: number[] = [];

  constructor(capacity: number) {
    this.#prev = new Int32Array(capacity);
    this.#next = new Int32Array(capacity);
  }

  /** Slots known (0 .. slots - 1). */
  get slots(): number {
    return this.#oldest.length;
  }

  /** Makes `slot` known with an empty list, or empties its list (the entries are not touched). */
  resetSlot(slot: number): void {
    this.#oldest[slot] = NIL;
    this.#newest[slot] = NIL;
  }

  /** The oldest entry of `slot`, or {@link NIL}. */
  oldest(slot: number): number {
    return this.#oldest[slot] ?? NIL;
  }

  /** The newest entry of `slot`, or {@link NIL}. */
  newest(slot: number): number {
    return this.#newest[slot] ?? NIL;
  }

  /** The entry after `id` in its list (newer), or {@link NIL}. */
  next(id: number): number {
    return this.#next[id];
  }

  /** The entry before `id` in its list (older), or {@link NIL}. */
  prev(id: number): number {
    return this.#prev[id];
  }

  /** Appends `id` (in no list) to `slot`'s list as its newest. */
  pushNewest(slot: number, id: number): void {
    const last = this.#newest[slot];
    this.#prev[id] = last;
    this.#next[id] = NIL;
    if (last !== NIL) this.#next[last] = id;
    else this.#oldest[slot] = id;
    this.#newest[slot] = id;
  }

  /** Takes `id` out of `slot`'s list. */
  unlink(slot: number, id: number): void {
    const prev = this.#prev[id];
    const next = this.#next[id];
    if (prev !== NIL) this.#next[prev] = next;
    else this.#oldest[slot] = next;
    if (next !== NIL) this.#prev[next] = prev;
    else this.#newest[slot] = prev;
  }

  /** Room for ids below `n` (called when the owner's table grows). */
  grow(n: number): void {
    this.#prev = grownInt32(this.#prev, n);
    this.#next = grownInt32(this.#next, n);
  }
}
