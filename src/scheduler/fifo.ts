/**
 * A first-in first-out queue with O(1) push, shift and unshift: the task
 * queue takes a retried task back at the front, and a farm's slots come and
 * go by the thousand, where Array#shift and #unshift would copy the array.
 * `front` is public for a scan of the tasks that were put back.
 */
export class Fifo<T> {
  /** Items put back at the front, the front-most last. */
  readonly front: T[] = [];
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.front.length + this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  unshift(item: T): void {
    this.front.push(item);
  }

  /** The first item that was pushed (not put back) and is still there. */
  peekPushed(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  shift(): T | undefined {
    if (this.front.length > 0) return this.front.pop();
    return this.shiftPushed();
  }

  /** Takes the first item that was pushed, leaving those put back at the front. */
  shiftPushed(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as T;
    // Drop the consumed part once it is most of the array.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Everything, front first; the queue is empty afterwards. */
  drain(): T[] {
    const all = [...this.front.splice(0).reverse(), ...this.items.slice(this.head)];
    this.items = [];
    this.head = 0;
    return all;
  }
}
