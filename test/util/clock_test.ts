import assert from "node:assert/strict";
import {
  checkDelay,
  createSystemClock,
  type HostTimers,
  MAX_TIMER_DELAY,
  systemClock,
  type TimerId,
} from "../../src/util/clock.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";

/** Host timers on a manual clock, recording every delay asked of the host. */
function fakeHost() {
  const time = new ManualClock();
  const delays: number[] = [];
  const host: HostTimers = {
    setTimeout(fn, ms) {
      delays.push(ms);
      return time.setTimeout(fn, ms);
    },
    clearTimeout: (handle) => time.clearTimeout(handle as TimerId),
  };
  return { time, delays, host };
}

Deno.test("createSystemClock() chains a delay longer than maxTimerDelay into segments", () => {
  const { time, delays, host } = fakeHost();
  const clock = createSystemClock({ maxTimerDelay: 10, host });
  let fired = 0;
  clock.setTimeout(() => fired++, 25);
  time.advance(24);
  assert.equal(fired, 0);
  time.advance(1);
  assert.equal(fired, 1);
  assert.deepEqual(delays, [10, 10, 5]);
  time.advance(100);
  assert.equal(fired, 1);
  assert.equal(time.pendingTimers, 0);
});

Deno.test("createSystemClock() ends a chain on an exact multiple of maxTimerDelay", () => {
  const { time, delays, host } = fakeHost();
  const clock = createSystemClock({ maxTimerDelay: 10, host });
  let firedAt = -1;
  clock.setTimeout(() => firedAt = time.now(), 20);
  time.advance(50);
  assert.equal(firedAt, 20);
  assert.deepEqual(delays, [10, 10]);
});

Deno.test("createSystemClock() uses one host timer for a delay within maxTimerDelay", () => {
  const { time, delays, host } = fakeHost();
  const clock = createSystemClock({ maxTimerDelay: 10, host });
  let fired = false;
  clock.setTimeout(() => fired = true, 10);
  time.advance(10);
  assert.ok(fired);
  assert.deepEqual(delays, [10]);
});

Deno.test("createSystemClock() never asks the host for more than 2^31-1 ms (a 0xFFFFFFFF s session expiry)", () => {
  const { time, delays, host } = fakeHost();
  const clock = createSystemClock({ host });
  const expiry = 0xFFFF_FFFF * 1000;
  let fired = false;
  clock.setTimeout(() => fired = true, expiry);
  assert.deepEqual(delays, [MAX_TIMER_DELAY]);
  time.advance(MAX_TIMER_DELAY * 1000);
  assert.equal(fired, false);
  assert.ok(delays.every((d) => d <= MAX_TIMER_DELAY));
  time.advance(expiry - MAX_TIMER_DELAY * 1000 - 1);
  assert.equal(fired, false);
  time.advance(1);
  assert.equal(fired, true);
});

Deno.test("createSystemClock() clearTimeout() stops a chain between segments", () => {
  const { time, host } = fakeHost();
  const clock = createSystemClock({ maxTimerDelay: 10, host });
  let fired = false;
  const id = clock.setTimeout(() => fired = true, 35);
  time.advance(15);
  clock.clearTimeout(id);
  assert.equal(time.pendingTimers, 0);
  time.advance(100);
  assert.equal(fired, false);
});

Deno.test("createSystemClock() clearTimeout() ignores fired, cleared and foreign timers", () => {
  const { time, host } = fakeHost();
  const clock = createSystemClock({ maxTimerDelay: 10, host });
  const other = createSystemClock({ maxTimerDelay: 10, host });
  let fired = 0;
  const done = clock.setTimeout(() => fired++, 1);
  time.advance(1);
  clock.clearTimeout(done);
  clock.clearTimeout(done);
  const foreign = other.setTimeout(() => fired++, 5);
  clock.clearTimeout(foreign);
  clock.clearTimeout(new ManualClock().setTimeout(() => {}, 1));
  time.advance(5);
  assert.equal(fired, 2);
});

Deno.test("createSystemClock() treats a negative delay as 0 and rejects NaN", () => {
  const { time, delays, host } = fakeHost();
  const clock = createSystemClock({ host });
  let fired = false;
  clock.setTimeout(() => fired = true, -5);
  assert.deepEqual(delays, [0]);
  time.advance(0);
  assert.ok(fired);
  assert.throws(() => clock.setTimeout(() => {}, NaN), RangeError);
});

Deno.test("createSystemClock() rejects a maxTimerDelay outside 1..2^31-1", () => {
  for (const maxTimerDelay of [0, 1.5, MAX_TIMER_DELAY + 1, NaN]) {
    assert.throws(() => createSystemClock({ maxTimerDelay }), {
      name: "RangeError",
      message:
        `Invalid maxTimerDelay: expected an integer from 1 to ${MAX_TIMER_DELAY}, got ${maxTimerDelay}`,
    });
  }
});

Deno.test("checkDelay() clamps negative delays to 0", () => {
  assert.equal(checkDelay(-1), 0);
  assert.equal(checkDelay(0), 0);
  assert.equal(checkDelay(12.5), 12.5);
  assert.equal(checkDelay(Infinity), Infinity);
  assert.throws(() => checkDelay(NaN), {
    name: "RangeError",
    message: "Invalid timer delay: expected a number, got NaN",
  });
});

Deno.test("systemClock fires a real timer and reads the wall clock", async () => {
  const before = Date.now();
  assert.ok(systemClock.now() >= before && systemClock.now() <= Date.now());
  let cleared = false;
  const id = systemClock.setTimeout(() => cleared = true, 1);
  systemClock.clearTimeout(id);
  await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 5));
  assert.equal(cleared, false);
});

Deno.test("a system clock reads the time once per run of synchronous code, afresh after a microtask", async () => {
  const clock = createSystemClock();
  const first = clock.now();
  const spinUntil = Date.now() + 3;
  while (Date.now() < spinUntil) { /* let the wall clock move on */ }
  assert.equal(clock.now(), first, "the same reading within one synchronous run");
  await Promise.resolve();
  const later = clock.now();
  assert.ok(later >= first + 3, `a fresh reading after a microtask: ${later - first} ms later`);
  assert.ok(later <= Date.now());
});
