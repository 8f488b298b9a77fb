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

/**
 * Anything a {@linkcode DeadlineScheduler} can schedule: its two fields belong to the scheduler.
 * A connection implements it itself instead of holding a {@linkcode Deadline} object.
 */
export interface Schedulable extends DeadlineTarget {
  /**
   * When it is due, in ms after the scheduler's base time (a small integer, which V8 stores
   * without a heap number); meaningless while not scheduled.
   */
  deadlineAt: number;
  /** Position in the scheduler's heap; -1 while not scheduled. */
  deadlineIndex: number;
}

/** One schedulable deadline that calls a target. */
export class Deadline implements Schedulable {
  deadlineAt = 0;
  deadlineIndex = -1;
  /** Who is called when it is due. */
  readonly target: DeadlineTarget;

  /** @param target Who is called when it is due. */
  constructor(target: DeadlineTarget) {
    this.target = target;
  }

  onDeadline(): void {
    this.target.onDeadline();
  }

  /** True while scheduled. */
  get scheduled(): boolean {
    return this.deadlineIndex >= 0;
  }
}

/**
 * Deadlines are kept in ms after a base time; once they pass this the base moves to now (all
 * scheduled deadlines are shifted once), so they stay small integers.
 */
const REBASE_AFTER = 2 ** 30;

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
  #heap: Schedulable[] = [];
  /** Epoch ms the deadlines' times count from. */
  #base: number;
  #timer: TimerId | undefined = undefined;
  /** When the clock timer fires; `Infinity` while none is armed. */
  #armedAt = Infinity;
  #firing = false;
  #due: Schedulable[] = [];
  #fire = () => this.#fireDue();

  /** @param clock The time source. */
  constructor(clock: Clock) {
    this.#clock = clock;
    this.#base = clock.now();
  }

  /** Epoch ms `deadline` is due at, or `Infinity` while it is not scheduled. */
  dueAt(deadline: Schedulable): number {
    return deadline.deadlineIndex < 0 ? Infinity : this.#base + deadline.deadlineAt;
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
  schedule(deadline: Schedulable, at: number): void {
    if (!Number.isFinite(at)) {
      throw new RangeError(`Cannot schedule a deadline: expected a finite time, got ${at}`);
    }
    let offset = at - this.#base;
    if (offset > REBASE_AFTER && this.#clock.now() - this.#base > REBASE_AFTER) {
      this.#rebase();
      offset = at - this.#base;
    }
    // Stored as a small integer whenever it is one (a computed double would be boxed).
    const small = offset | 0;
    if (small === offset) offset = small;
    const heap = this.#heap;
    if (deadline.deadlineIndex < 0) {
      deadline.deadlineAt = offset;
      deadline.deadlineIndex = heap.length;
      heap.push(deadline);
      this.#up(deadline.deadlineIndex);
    } else {
      const earlier = offset < deadline.deadlineAt;
      deadline.deadlineAt = offset;
      if (earlier) this.#up(deadline.deadlineIndex);
      else this.#down(deadline.deadlineIndex);
    }
    this.#arm();
  }

  /** Moves the base time to now: every scheduled deadline's offset shrinks by the same amount. */
  #rebase(): void {
    const base = this.#clock.now();
    const shift = base - this.#base;
    for (const deadline of this.#heap) deadline.deadlineAt -= shift;
    this.#base = base;
  }

  /**
   * Unschedules `deadline`; does nothing if it is not scheduled.
   *
   * @param deadline The deadline.
   */
  cancel(deadline: Schedulable): void {
    const index = deadline.deadlineIndex;
    if (index < 0) return;
    const heap = this.#heap;
    const last = heap.pop()!;
    if (last !== deadline) {
      heap[index] = last;
      last.deadlineIndex = index;
      this.#down(index);
      this.#up(last.deadlineIndex);
    }
    deadline.deadlineIndex = -1;
    // A clock timer armed for an earlier deadline stays: when it fires with nothing due, it is
    // armed again for the next one. Only an empty scheduler releases it.
    if (heap.length === 0) this.#disarm();
  }

  /** Unschedules everything and releases the clock timer. */
  clear(): void {
    for (const deadline of this.#heap) deadline.deadlineIndex = -1;
    this.#heap = [];
    this.#disarm();
  }

  #arm(): void {
    if (this.#firing || this.#heap.length === 0) return;
    const earliest = this.#base + this.#heap[0].deadlineAt;
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
    const now = this.#clock.now() - this.#base;
    const heap = this.#heap;
    const due = this.#due;
    // Take every due deadline out first: one rescheduled by its target to a time already past
    // fires from the next clock timer, not again in this loop.
    while (heap.length > 0 && heap[0].deadlineAt <= now) {
      const deadline = heap[0];
      this.cancel(deadline);
      due.push(deadline);
    }
    this.#firing = true;
    try {
      for (const deadline of due) deadline.onDeadline();
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
      if (heap[parent].deadlineAt <= item.deadlineAt) break;
      heap[index] = heap[parent];
      heap[index].deadlineIndex = index;
      index = parent;
    }
    heap[index] = item;
    item.deadlineIndex = index;
  }

  #down(index: number): void {
    const heap = this.#heap;
    const length = heap.length;
    const item = heap[index];
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      if (child + 1 < length && heap[child + 1].deadlineAt < heap[child].deadlineAt) child++;
      if (heap[child].deadlineAt >= item.deadlineAt) break;
      heap[index] = heap[child];
      heap[index].deadlineIndex = index;
      index = child;
    }
    heap[index] = item;
    item.deadlineIndex = index;
  }
}
