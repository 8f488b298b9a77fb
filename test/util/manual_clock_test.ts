import assert from "node:assert/strict";
import type { TimerId } from "../../src/util/clock.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";

Deno.test("ManualClock.now() starts at the given time and moves only with advance()", () => {
  assert.equal(new ManualClock().now(), 0);
  const clock = new ManualClock(1_000);
  assert.equal(clock.now(), 1_000);
  clock.advance(250);
  assert.equal(clock.now(), 1_250);
  clock.advance(0);
  assert.equal(clock.now(), 1_250);
});

Deno.test("ManualClock.advance() fires due timers in due order, ties in scheduling order", () => {
  const clock = new ManualClock();
  const order: string[] = [];
  clock.setTimeout(() => order.push("c@30"), 30);
  clock.setTimeout(() => order.push("a@10"), 10);
  clock.setTimeout(() => order.push("b1@20"), 20);
  clock.setTimeout(() => order.push("b2@20"), 20);
  clock.setTimeout(() => order.push("d@31"), 31);
  clock.advance(30);
  assert.deepEqual(order, ["a@10", "b1@20", "b2@20", "c@30"]);
  assert.equal(clock.pendingTimers, 1);
  clock.advance(1);
  assert.deepEqual(order.at(-1), "d@31");
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("ManualClock.advance() sets now() to each timer's due time while it runs", () => {
  const clock = new ManualClock(100);
  const seen: number[] = [];
  clock.setTimeout(() => seen.push(clock.now()), 5);
  clock.setTimeout(() => seen.push(clock.now()), 7);
  clock.advance(10);
  assert.deepEqual(seen, [105, 107]);
  assert.equal(clock.now(), 110);
});

Deno.test("ManualClock.advance() fires timers scheduled by fired callbacks within the window", () => {
  const clock = new ManualClock();
  const fired: number[] = [];
  // A keepalive-style timer that re-arms itself every 10 ms.
  const tick = () => {
    fired.push(clock.now());
    clock.setTimeout(tick, 10);
  };
  clock.setTimeout(tick, 10);
  clock.setTimeout(() => clock.setTimeout(() => fired.push(-clock.now()), 0), 15);
  clock.advance(35);
  assert.deepEqual(fired, [10, -15, 20, 30]);
  assert.equal(clock.pendingTimers, 1);
});

Deno.test("ManualClock.setTimeout() treats a negative delay as 0 and rejects NaN", () => {
  const clock = new ManualClock(50);
  let firedAt = -1;
  clock.setTimeout(() => firedAt = clock.now(), -20);
  clock.advance(0);
  assert.equal(firedAt, 50);
  assert.throws(() => clock.setTimeout(() => {}, NaN), RangeError);
});

Deno.test("ManualClock.clearTimeout() cancels a pending timer once", () => {
  const clock = new ManualClock();
  let fired = false;
  const id = clock.setTimeout(() => fired = true, 10);
  clock.setTimeout(() => {}, 20);
  assert.equal(clock.pendingTimers, 2);
  clock.clearTimeout(id);
  clock.clearTimeout(id);
  assert.equal(clock.pendingTimers, 1);
  clock.advance(20);
  assert.equal(fired, false);
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("ManualClock.clearTimeout() ignores fired timers and other clocks' timers", () => {
  const clock = new ManualClock();
  const other = new ManualClock();
  const fired = clock.setTimeout(() => {}, 1);
  clock.advance(1);
  clock.clearTimeout(fired);
  let otherFired = false;
  const foreign = other.setTimeout(() => otherFired = true, 1);
  clock.clearTimeout(foreign);
  clock.clearTimeout({} as TimerId);
  assert.equal(clock.pendingTimers, 0);
  other.advance(1);
  assert.ok(otherFired);
});

Deno.test("ManualClock.clearTimeout() keeps the order of the remaining timers when it compacts", () => {
  const clock = new ManualClock();
  const fired: number[] = [];
  const ids = Array.from({ length: 300 }, (_, i) => clock.setTimeout(() => fired.push(i), 300 - i));
  for (let i = 0; i < 300; i++) if (i % 3 !== 0) clock.clearTimeout(ids[i]);
  assert.equal(clock.pendingTimers, 100);
  clock.advance(300);
  const expected = Array.from({ length: 100 }, (_, k) => 297 - 3 * k);
  assert.deepEqual(fired, expected);
});

Deno.test("ManualClock.advance() rejects negative, NaN and infinite steps", () => {
  const clock = new ManualClock();
  for (const ms of [-1, NaN, Infinity]) {
    assert.throws(() => clock.advance(ms), {
      name: "RangeError",
      message: `Cannot advance the clock: expected a finite delay of at least 0, got ${ms}`,
    });
  }
});

Deno.test("ManualClock.advance() refuses to run from inside a timer callback", () => {
  const clock = new ManualClock();
  clock.setTimeout(() => clock.advance(1), 1);
  assert.throws(() => clock.advance(1), {
    message: "Cannot advance the clock: already advancing (called from a timer callback)",
  });
  clock.setTimeout(() => {}, 1);
  clock.advance(1);
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("ManualClock.advance() propagates a callback's exception and keeps later timers", () => {
  const clock = new ManualClock();
  let later = false;
  clock.setTimeout(() => {
    throw new Error("boom");
  }, 5);
  clock.setTimeout(() => later = true, 8);
  assert.throws(() => clock.advance(10), { message: "boom" });
  assert.equal(clock.now(), 5);
  assert.equal(clock.pendingTimers, 1);
  clock.advance(5);
  assert.ok(later);
});
