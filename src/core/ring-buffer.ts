/**
 * A fixed-capacity ring buffer that keeps the newest `capacity` items.
 *
 *   push ->  [ 3 | 4 | 1 | 2 ]   head = 2 (oldest), items come out 1 2 3 4
 */
export class RingBuffer<T> {
  readonly #items: (T | undefined)[];
  #head = 0;
  #size = 0;

  constructor(readonly capacity: number) {
    if (!(capacity > 0)) throw new RangeError('RingBuffer capacity must be > 0');
    this.#items = new Array<T | undefined>(capacity);
  }

  push(item: T): void {
    const at = (this.#head + this.#size) % this.capacity;
    this.#items[at] = item;
    if (this.#size < this.capacity) this.#size++;
    else this.#head = (this.#head + 1) % this.capacity;
  }

  get size(): number {
    return this.#size;
  }

  /** Items oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.#size; i++) out.push(this.#items[(this.#head + i) % this.capacity] as T);
    return out;
  }
}
