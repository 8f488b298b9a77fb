/**
 * A list filled and emptied once per message (the subscriptions a topic matches). An array emptied
 * by `length = 0` drops its storage, so its next push allocates it again: 65 ns and a young
 * object per message here. This one keeps its storage and clears only the slots it used.
 *
 * @module
 */

/** Storage beyond this many slots is let go when the list is emptied. */
const KEPT_SLOTS = 1024;

/** A reusable list: `push` to fill, read `items[0 .. length)`, then `clear`. */
export class ScratchList<T> {
  /** The slots; those from `length` on are `undefined`. */
  items: (T | undefined)[] = [];
  length = 0;

  push(item: T): void {
    this.items[this.length++] = item;
  }

  /** The item at `index` (below `length`). */
  at(index: number): T {
    return this.items[index] as T;
  }

  /** Empties it, keeping no reference to what it held. */
  clear(): void {
    const items = this.items;
    if (items.length > KEPT_SLOTS) this.items = [];
    else for (let i = 0; i < this.length; i++) items[i] = undefined;
    this.length = 0;
  }
}
