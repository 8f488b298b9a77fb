import assert from "node:assert/strict";
import type { Clock } from "../../src/util/clock.ts";
import { EventLoopLagMonitor } from "../../src/util/event_loop_lag.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";

/** A clock whose reading runs `late` ms ahead of the timers: what a blocked loop looks like. */
class LateClock implements Clock {
  late = 0;
  constructor(readonly timers: ManualClock) {}
  now(): number {
    return this.timers.now() + this.late;
  }
  setTimeout(fn: () => void, ms: number) {
    return this.timers.setTimeout(fn, ms);
  }
  clearTimeout(id: ReturnType<Clock["setTimeout"]>): void {
    this.timers.clearTimeout(id);
  }
}

Deno.test("EventLoopLagMonitor measures how late its timer fires", () => {
  const timers = new ManualClock(0);
  const clock = new LateClock(timers);
  const monitor = new EventLoopLagMonitor(clock, { interval: 100, window: 3 });
  monitor.start();
  timers.advance(100);
  assert.deepEqual(monitor.read(), { latest: 0, max: 0 });
  clock.late = 250; // the loop was blocked for 250 ms before the next timer ran
  timers.advance(100);
  assert.deepEqual(monitor.read(), { latest: 250, max: 250 });
  timers.advance(100);
  assert.deepEqual(monitor.read(), { latest: 0, max: 250 });
  monitor.stop();
  assert.equal(timers.pendingTimers, 0);
});

Deno.test("EventLoopLagMonitor keeps a window's maximum until the next window ends", () => {
  const timers = new ManualClock(0);
  const clock = new LateClock(timers);
  const monitor = new EventLoopLagMonitor(clock, { interval: 10, window: 2 });
  monitor.start();
  clock.late = 40;
  timers.advance(10); // sample 1 of window 1: 40
  timers.advance(10); // sample 2: 0, window 1 ends with max 40
  assert.equal(monitor.read().max, 40);
  timers.advance(10); // window 2, sample 1: 0
  assert.equal(monitor.read().max, 40);
  timers.advance(10); // window 2 ends with max 0
  assert.deepEqual(monitor.read(), { latest: 0, max: 0 });
  monitor.stop();
});
