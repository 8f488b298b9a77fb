import assert from "node:assert/strict";
import { Deadline, DeadlineScheduler, type DeadlineTarget } from "../../src/util/deadlines.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";

/** A target that records when it was called, by name. */
function recorder(clock: ManualClock, log: [string, number][], name: string): DeadlineTarget {
  return { onDeadline: () => log.push([name, clock.now()]) };
}

Deno.test("DeadlineScheduler fires each deadline exactly when due, in order, on one clock timer", () => {
  const clock = new ManualClock(1000);
  const scheduler = new DeadlineScheduler(clock);
  const log: [string, number][] = [];
  const names = ["c", "a", "b"];
  const at = [1300, 1100, 1200];
  names.forEach((name, i) => scheduler.schedule(new Deadline(recorder(clock, log, name)), at[i]));
  assert.equal(scheduler.size, 3);
  assert.equal(clock.pendingTimers, 1);
  clock.advance(99);
  assert.deepEqual(log, []);
  clock.advance(1);
  assert.deepEqual(log, [["a", 1100]]);
  clock.advance(200);
  assert.deepEqual(log, [["a", 1100], ["b", 1200], ["c", 1300]]);
  assert.equal(scheduler.size, 0);
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("DeadlineScheduler.schedule() moves a scheduled deadline earlier or later", () => {
  const clock = new ManualClock(0);
  const scheduler = new DeadlineScheduler(clock);
  const log: [string, number][] = [];
  const moved = new Deadline(recorder(clock, log, "moved"));
  scheduler.schedule(moved, 500);
  scheduler.schedule(new Deadline(recorder(clock, log, "fixed")), 300);
  scheduler.schedule(moved, 100);
  assert.equal(scheduler.dueAt(moved), 100);
  assert.equal(scheduler.size, 2);
  clock.advance(100);
  assert.deepEqual(log, [["moved", 100]]);
  assert.equal(moved.scheduled, false);
  scheduler.schedule(moved, 900);
  scheduler.schedule(moved, 700);
  clock.advance(1000);
  assert.deepEqual(log, [["moved", 100], ["fixed", 300], ["moved", 700]]);
});

Deno.test("DeadlineScheduler.cancel() unschedules; an empty scheduler holds no clock timer", () => {
  const clock = new ManualClock(0);
  const scheduler = new DeadlineScheduler(clock);
  const log: [string, number][] = [];
  const first = new Deadline(recorder(clock, log, "first"));
  const second = new Deadline(recorder(clock, log, "second"));
  scheduler.schedule(first, 100);
  scheduler.schedule(second, 200);
  scheduler.cancel(first);
  scheduler.cancel(first); // twice is harmless
  assert.equal(first.scheduled, false);
  assert.equal(scheduler.dueAt(first), Infinity);
  clock.advance(150); // the timer armed for the cancelled one fires, finds nothing, re-arms
  assert.deepEqual(log, []);
  assert.equal(clock.pendingTimers, 1);
  scheduler.cancel(second);
  assert.equal(clock.pendingTimers, 0);
  clock.advance(1000);
  assert.deepEqual(log, []);
});

Deno.test("DeadlineScheduler fires a deadline its target re-schedules in the past again, but not in the same loop", () => {
  const clock = new ManualClock(0);
  const scheduler = new DeadlineScheduler(clock);
  let calls = 0;
  const deadline: Deadline = new Deadline({
    onDeadline() {
      calls++;
      if (calls === 1) scheduler.schedule(deadline, clock.now() - 5);
    },
  });
  scheduler.schedule(deadline, 10);
  clock.advance(10);
  assert.equal(calls, 2);
  assert.equal(scheduler.size, 0);
});

Deno.test("DeadlineScheduler keeps heap order through thousands of schedules, moves and cancels", () => {
  const clock = new ManualClock(0);
  const scheduler = new DeadlineScheduler(clock);
  const due = new Map<Deadline, number>();
  const fired: number[] = [];
  const deadlines = Array.from({ length: 2000 }, () => {
    const deadline: Deadline = new Deadline({ onDeadline: () => fired.push(due.get(deadline)!) });
    return deadline;
  });
  let seed = 1;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const reschedule = (deadline: Deadline) => {
    const at = 1 + Math.floor(random() * 100_000);
    scheduler.schedule(deadline, at);
    due.set(deadline, at);
  };
  for (const deadline of deadlines) reschedule(deadline);
  for (let i = 0; i < 1000; i++) {
    const deadline = deadlines[Math.floor(random() * deadlines.length)];
    if (random() < 0.3) {
      scheduler.cancel(deadline);
      due.delete(deadline);
    } else reschedule(deadline);
  }
  assert.equal(scheduler.size, due.size);
  clock.advance(100_000);
  assert.equal(fired.length, due.size);
  assert.deepEqual(fired, [...fired].sort((a, b) => a - b));
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("DeadlineScheduler.clear() unschedules everything and releases the clock timer", () => {
  const clock = new ManualClock(0);
  const scheduler = new DeadlineScheduler(clock);
  const deadline = new Deadline({ onDeadline: () => assert.fail("fired after clear()") });
  scheduler.schedule(deadline, 10);
  scheduler.clear();
  assert.equal(deadline.scheduled, false);
  assert.equal(scheduler.size, 0);
  assert.equal(clock.pendingTimers, 0);
  clock.advance(100);
});

Deno.test("DeadlineScheduler.schedule() rejects a time that is not finite", () => {
  const scheduler = new DeadlineScheduler(new ManualClock(0));
  const deadline = new Deadline({ onDeadline() {} });
  assert.throws(() => scheduler.schedule(deadline, Infinity), RangeError);
  assert.throws(() => scheduler.schedule(deadline, NaN), RangeError);
  assert.equal(deadline.scheduled, false);
});

Deno.test("DeadlineScheduler keeps deadlines as small integers past weeks of uptime, in order", () => {
  const start = 1_700_000_000_000;
  const clock = new ManualClock(start);
  const scheduler = new DeadlineScheduler(clock);
  const log: [string, number][] = [];
  const early = new Deadline(recorder(clock, log, "early"));
  const late = new Deadline(recorder(clock, log, "late"));
  const weeks = 3 * 7 * 24 * 3600 * 1000; // past 2^30 ms after the base: the base moves
  const waiting = new Deadline(recorder(clock, log, "waiting"));
  scheduler.schedule(waiting, start + 100 + weeks + 3000); // scheduled across the move
  // Epoch ms do not fit a small integer: the scheduler counts from its base time.
  scheduler.schedule(early, start + 100);
  assert.equal(early.deadlineAt, 100);
  clock.advance(100);
  clock.advance(weeks);
  const now = clock.now();
  scheduler.schedule(late, now + 2000);
  scheduler.schedule(early, now + 1000);
  assert.ok(Math.abs(late.deadlineAt) < 2 ** 30 && Number.isInteger(late.deadlineAt));
  assert.equal(scheduler.dueAt(late), now + 2000);
  assert.equal(scheduler.dueAt(early), now + 1000);
  assert.equal(scheduler.dueAt(waiting), now + 3000);
  clock.advance(3000);
  assert.deepEqual(log, [
    ["early", start + 100],
    ["early", now + 1000],
    ["late", now + 2000],
    ["waiting", now + 3000],
  ]);
});
