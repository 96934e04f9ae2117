/** A FIFO deque of items with O(1) push/shift and a cheap pushFront (for preempted requests). */
export class RequestQueue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(v: T): void {
    this.#items.push(v);
  }

  /** Puts `v` first (vLLM puts preempted requests back at the head of the waiting queue). */
  pushFront(v: T): void {
    if (this.#head > 0) this.#items[--this.#head] = v;
    else this.#items.unshift(v);
  }

  peek(): T | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const v = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return v;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }

  /** Live items, head first. */
  toArray(): T[] {
    return this.#items.slice(this.#head) as T[];
  }
}
