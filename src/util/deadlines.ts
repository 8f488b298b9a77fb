/**
 * Many deadlines on one clock timer: a binary min-heap of {@linkcode Deadline}s, and a single
 * {@linkcode Clock} timer armed for the earliest. A host timer costs about 700 bytes of heap in Deno
 * (its Timeout record, closures and list entry); a connection's keep-alive and connect timeout only
 * need a slot here, which matters at 100,000 connections. Deadlines fire exactly when due, in order.
 *
 * @module
 */

import type { Clock, TimerId } from "./clock.ts";

/** What a {@linkcode Deadline} calls when it is due. */
export interface DeadlineTarget {
  /** The deadline passed; it is no longer scheduled (schedule it again to keep it). */
  onDeadline(): void;
}

/** One schedulable deadline; its fields belong to the {@linkcode DeadlineScheduler}. */
export class Deadline {
  /** Epoch ms it is due at; `Infinity` while not scheduled. */
  at = Infinity;
  /** Position in the scheduler's heap; -1 while not scheduled. */
  index = -1;
  /** Who is called when it is due. */
  readonly target: DeadlineTarget;

  /** @param target Who is called when it is due. */
  constructor(target: DeadlineTarget) {
    this.target = target;
  }

  /** True while scheduled. */
  get scheduled(): boolean {
    return this.index >= 0;
  }
}

/**
 * Keeps any number of deadlines on one clock timer.
 *
 * @example Two deadlines, one timer
 * ```ts
 * import { Deadline, DeadlineScheduler } from "./deadlines.ts";
 * import { ManualClock } from "./manual_clock.ts";
 *
 * const clock = new ManualClock(0);
 * const scheduler = new DeadlineScheduler(clock);
 * const fired: string[] = [];
 * scheduler.schedule(new Deadline({ onDeadline: () => fired.push("b") }), 200);
 * scheduler.schedule(new Deadline({ onDeadline: () => fired.push("a") }), 100);
 * clock.advance(200); // fired is ["a", "b"]; clock.pendingTimers is 0
 * ```
 */
export class DeadlineScheduler {
  #clock: Clock;
  #heap: Deadline[] = [];
  #timer: TimerId | undefined = undefined;
  /** When the clock timer fires; `Infinity` while none is armed. */
  #armedAt = Infinity;
  #firing = false;
  #due: Deadline[] = [];
  #fire = () => this.#fireDue();

  /** @param clock The time source. */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Number of deadlines scheduled. */
  get size(): number {
    return this.#heap.length;
  }

  /**
   * Schedules `deadline` at `at` (epoch ms), or moves it there if already scheduled. A time in
   * the past makes it due at once (it fires from the clock, never inside this call).
   *
   * @param deadline The deadline.
   * @param at When it is due, epoch ms.
   * @throws {RangeError} When `at` is not a finite number.
   */
  schedule(deadline: Deadline, at: number): void {
    if (!Number.isFinite(at)) {
      throw new RangeError(`Cannot schedule a deadline: expected a finite time, got ${at}`);
    }
    const heap = this.#heap;
    if (deadline.index < 0) {
      deadline.at = at;
      deadline.index = heap.length;
      heap.push(deadline);
      this.#up(deadline.index);
    } else {
      const earlier = at < deadline.at;
      deadline.at = at;
      if (earlier) this.#up(deadline.index);
      else this.#down(deadline.index);
    }
    this.#arm();
  }

  /**
   * Unschedules `deadline`; does nothing if it is not scheduled.
   *
   * @param deadline The deadline.
   */
  cancel(deadline: Deadline): void {
    const index = deadline.index;
    if (index < 0) return;
    const heap = this.#heap;
    const last = heap.pop()!;
    if (last !== deadline) {
      heap[index] = last;
      last.index = index;
      this.#down(index);
      this.#up(last.index);
    }
    deadline.index = -1;
    deadline.at = Infinity;
    // A clock timer armed for an earlier deadline stays: when it fires with nothing due, it is
    // armed again for the next one. Only an empty scheduler releases it.
    if (heap.length === 0) this.#disarm();
  }

  /** Unschedules everything and releases the clock timer. */
  clear(): void {
    for (const deadline of this.#heap) {
      deadline.index = -1;
      deadline.at = Infinity;
    }
    this.#heap = [];
    this.#disarm();
  }

  #arm(): void {
    if (this.#firing || this.#heap.length === 0) return;
    const earliest = this.#heap[0].at;
    if (earliest >= this.#armedAt) return;
    this.#disarm();
    const clock = this.#clock;
    this.#armedAt = earliest;
    this.#timer = clock.setTimeout(this.#fire, earliest - clock.now());
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
  }

  #fireDue(): void {
    this.#timer = undefined;
    this.#armedAt = Infinity;
    const now = this.#clock.now();
    const heap = this.#heap;
    const due = this.#due;
    // Take every due deadline out first: one rescheduled by its target to a time already past
    // fires from the next clock timer, not again in this loop.
    while (heap.length > 0 && heap[0].at <= now) {
      const deadline = heap[0];
      this.cancel(deadline);
      due.push(deadline);
    }
    this.#firing = true;
    try {
      for (const deadline of due) deadline.target.onDeadline();
    } finally {
      due.length = 0;
      this.#firing = false;
      this.#arm();
    }
  }

  #up(index: number): void {
    const heap = this.#heap;
    const item = heap[index];
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent].at <= item.at) break;
      heap[index] = heap[parent];
      heap[index].index = index;
      index = parent;
    }
    heap[index] = item;
    item.index = index;
  }

  #down(index: number): void {
    const heap = this.#heap;
    const length = heap.length;
    const item = heap[index];
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      if (child + 1 < length && heap[child + 1].at < heap[child].at) child++;
      if (heap[child].at >= item.at) break;
      heap[index] = heap[child];
      heap[index].index = index;
      index = child;
    }
    heap[index] = item;
    item.index = index;
  }
}
