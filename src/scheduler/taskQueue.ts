/**
 * The scheduler's queue: taken from at the front, given back to at the
 * front, in constant time. An array's shift or splice(0, 1) moves every
 * element behind the one taken, which made a run of a million tasks
 * quadratic (100,000 instant tasks took 4 s of it, 400,000 took 65 s).
 */
export class TaskQueue<T> {
  private items: Array<T | undefined>;
  /** Where the front is: the slots before it are taken and empty. */
  private head = 0;

  constructor(items: T[]) {
    this.items = items;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  /** The item at i, 0 being the front. */
  at(i: number): T | undefined {
    return i < 0 || i >= this.length ? undefined : this.items[this.head + i];
  }

  findIndex(predicate: (item: T) => boolean): number {
    for (let i = this.head; i < this.items.length; i++) if (predicate(this.items[i] as T)) return i - this.head;
    return -1;
  }

  /** Removes and returns the item at i, 0 being the front. */
  takeAt(i: number): T | undefined {
    if (i < 0 || i >= this.length) return undefined;
    const item = this.items[this.head + i] as T;
    if (i > 0) {
      this.items.splice(this.head + i, 1);
      return item;
    }
    this.items[this.head++] = undefined;
    // Drop the empty front once it is most of the array: constant time per item, on average.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Puts an item back at the front. */
  unshift(item: T): void {
    if (this.head > 0) this.items[--this.head] = item;
    else this.items.unshift(item);
  }

  /** Empties the queue and returns what was in it, front first. */
  drain(): T[] {
    const rest = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return rest;
  }
}
