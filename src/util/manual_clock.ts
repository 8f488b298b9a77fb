/**
 * A {@linkcode Clock} whose time moves only when a test says so. It lives in `src/` so tests across
 * the repository (keepalive, session expiry, will delay, $SYS) share one implementation.
 *
 * @module
 */

import { checkDelay, type Clock, type TimerId } from "./clock.ts";

class ManualTimer {
  /** "pending" until it fires or is cleared. */
  state: "pending" | "fired" | "cleared" = "pending";
  constructor(
    readonly owner: ManualClock,
    readonly due: number,
    readonly seq: number,
    readonly fn: () => void,
  ) {}
}

/** Orders timers by due time, then by scheduling order. */
function runsBefore(a: ManualTimer, b: ManualTimer): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

/**
 * A manual test clock: `now()` starts at the given time and changes only through
 * {@linkcode ManualClock.advance}, which fires due timers in order.
 *
 * @example Firing a keepalive timeout
 * ```ts
 * import { ManualClock } from "./manual_clock.ts";
 *
 * const clock = new ManualClock();
 * let fired = false;
 * clock.setTimeout(() => fired = true, 1500);
 * clock.advance(1499); // fired === false
 * clock.advance(1); // fired === true
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #pending = 0;
  #advancing = false;
  /** Binary min-heap by (due, seq); cleared timers stay until popped. */
  #heap: ManualTimer[] = [];

  /**
   * @param start The initial value of `now()`, in milliseconds since the Unix epoch
   */
  constructor(start = 0) {
    this.#now = start;
  }

  /** The current manual time in milliseconds. */
  now(): number {
    return this.#now;
  }

  /** Schedules `fn` at `now() + ms`; negative delays count as 0 (the timer fires on the next `advance`). */
  setTimeout(fn: () => void, ms: number): TimerId {
    const timer = new ManualTimer(this, this.#now + checkDelay(ms), this.#seq++, fn);
    this.#push(timer);
    this.#pending++;
    return timer as unknown as TimerId;
  }

  /** Cancels a pending timer; ignores timers that already fired, were cleared, or belong to another clock. */
  clearTimeout(id: TimerId): void {
    const timer = id as unknown;
    if (!(timer instanceof ManualTimer) || timer.owner !== this || timer.state !== "pending") {
      return;
    }
    timer.state = "cleared";
    this.#pending--;
    // Code that re-arms a timer on every packet (keepalive) clears far more timers than it lets
    // fire; drop the cleared ones once they are most of the heap. A sorted array is a valid heap.
    if (this.#heap.length > 64 && this.#pending * 2 < this.#heap.length) {
      this.#heap = this.#heap.filter((t) => t.state === "pending")
        .sort((a, b) => a.due - b.due || a.seq - b.seq);
    }
  }

  /** The number of timers scheduled and neither fired nor cleared. */
  get pendingTimers(): number {
    return this.#pending;
  }

  /**
   * Moves time forward by `ms`, firing every timer due up to the new time in due order (ties in
   * scheduling order), including timers scheduled by the callbacks it fires. During a callback,
   * `now()` is that timer's due time. An exception from a callback propagates and leaves `now()` at
   * that timer's due time, with later timers still pending.
   *
   * @param ms Milliseconds to move forward
   * @throws {RangeError} when `ms` is negative or not finite
   * @throws {Error} when called from inside a timer callback of the same clock
   */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(
        `Cannot advance the clock: expected a finite delay of at least 0, got ${ms}`,
      );
    }
    if (this.#advancing) {
      throw new Error("Cannot advance the clock: already advancing (called from a timer callback)");
    }
    const target = this.#now + ms;
    this.#advancing = true;
    try {
      while (this.#heap.length > 0 && this.#heap[0].due <= target) {
        const timer = this.#pop();
        if (timer.state !== "pending") continue;
        timer.state = "fired";
        this.#pending--;
        this.#now = timer.due;
        timer.fn();
      }
      this.#now = target;
    } finally {
      this.#advancing = false;
    }
  }

  #push(timer: ManualTimer): void {
    const heap = this.#heap;
    let i = heap.push(timer) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!runsBefore(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  #pop(): ManualTimer {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let first = i;
        if (left < heap.length && runsBefore(heap[left], heap[first])) first = left;
        if (right < heap.length && runsBefore(heap[right], heap[first])) first = right;
        if (first === i) break;
        [heap[i], heap[first]] = [heap[first], heap[i]];
        i = first;
      }
    }
    return top;
  }
}
