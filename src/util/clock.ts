/**
 * The injectable time source: every timer in the broker (keepalive, connect timeout, session expiry,
 * will delay, message expiry, $SYS interval) goes through a {@linkcode Clock}, so tests drive time with
 * {@linkcode ManualClock} from `./manual_clock.ts` instead of waiting.
 *
 * @module
 */

declare const timerIdBrand: unique symbol;

/** Opaque handle returned by {@linkcode Clock.setTimeout}; only the clock that made it can clear it. */
export type TimerId = { readonly [timerIdBrand]: true };

/** A source of wall-clock time and one-shot timers. */
export interface Clock {
  /**
   * Milliseconds since the Unix epoch, like `Date.now()`. The system clock reads the time once per
   * run of synchronous code (until the next microtask): a batch of packets read at once sees one
   * time.
   */
  now(): number;
  /**
   * Calls `fn` once after `ms` milliseconds. Negative delays count as 0. Delays of any length are
   * honoured, including ones above 2^31-1 ms (a session expiry of 0xFFFFFFFF seconds).
   *
   * @throws {RangeError} when `ms` is `NaN`
   */
  setTimeout(fn: () => void, ms: number): TimerId;
  /** Cancels a pending timer; ignores timers that already fired, were cleared, or belong to another clock. */
  clearTimeout(id: TimerId): void;
}

/**
 * The longest delay a host `setTimeout` honours. Larger delays overflow a signed 32-bit integer and
 * fire after about 1 ms in Deno, Node and Bun alike: the aedes bug where a huge session expiry
 * expired the session at once.
 */
export const MAX_TIMER_DELAY = 2 ** 31 - 1;

/** The host timer primitives a system clock is built on. */
export interface HostTimers {
  /** Schedules `fn` after `ms` milliseconds, `ms` never above the clock's `maxTimerDelay`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a handle returned by `setTimeout`. */
  clearTimeout(handle: unknown): void;
}

/** Options for {@linkcode createSystemClock}. */
export interface SystemClockOptions {
  /** Longest single host timer; longer delays are chained from several. Default {@linkcode MAX_TIMER_DELAY}. */
  maxTimerDelay?: number;
  /** Host timers to build on. Default: the global `setTimeout` and `clearTimeout`. */
  host?: HostTimers;
}

const globalTimers: HostTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

class SystemTimer {
  /** The host handle of the segment now waiting; undefined once fired or cleared. */
  handle: unknown;
  constructor(readonly owner: Clock, readonly fn: () => void) {}
}

/**
 * Creates a clock on the host timers that chains timeouts longer than `maxTimerDelay`.
 *
 * The chain counts down the remaining delay segment by segment rather than re-reading the wall
 * clock, so a wall-clock jump (NTP step, suspended VM) neither fires a long timer early nor late.
 *
 * @param options Host timers and the chaining threshold (tests inject both)
 * @returns A clock whose timers keep the process alive while pending, like the host's
 * @throws {RangeError} when `maxTimerDelay` is not an integer from 1 to {@linkcode MAX_TIMER_DELAY}
 */
export function createSystemClock(options: SystemClockOptions = {}): Clock {
  const maxDelay = options.maxTimerDelay ?? MAX_TIMER_DELAY;
  if (!Number.isInteger(maxDelay) || maxDelay < 1 || maxDelay > MAX_TIMER_DELAY) {
    throw new RangeError(
      `Invalid maxTimerDelay: expected an integer from 1 to ${MAX_TIMER_DELAY}, got ${maxDelay}`,
    );
  }
  const host = options.host ?? globalTimers;

  // The hot path asks the time several times per message (acknowledgement progress, deadlines),
  // and `Date.now()` costs about 50 ns here: one reading serves until the current task's
  // microtasks run. A batch of packets is handled synchronously, so its reading is at most as old as
  // the batch's own work.
  let cachedNow = 0;
  let cached = false;
  const forget = () => {
    cached = false;
  };

  function arm(timer: SystemTimer, remaining: number): void {
    if (remaining > maxDelay) {
      timer.handle = host.setTimeout(() => arm(timer, remaining - maxDelay), maxDelay);
    } else {
      timer.handle = host.setTimeout(() => {
        timer.handle = undefined;
        timer.fn();
      }, remaining);
    }
  }

  const clock: Clock = {
    now() {
      if (cached) return cachedNow;
      cachedNow = Date.now();
      cached = true;
      queueMicrotask(forget);
      return cachedNow;
    },
    setTimeout(fn, ms) {
      const timer = new SystemTimer(clock, fn);
      arm(timer, checkDelay(ms));
      return timer as unknown as TimerId;
    },
    clearTimeout(id) {
      const timer = id as unknown;
      if (!(timer instanceof SystemTimer) || timer.owner !== clock || timer.handle === undefined) {
        return;
      }
      host.clearTimeout(timer.handle);
      timer.handle = undefined;
    },
  };
  return clock;
}

/**
 * Normalizes a timer delay the way every {@linkcode Clock} does: negative delays count as 0.
 *
 * @param ms The requested delay in milliseconds
 * @returns The delay to wait, never negative
 * @throws {RangeError} when `ms` is `NaN`
 */
export function checkDelay(ms: number): number {
  if (Number.isNaN(ms)) throw new RangeError("Invalid timer delay: expected a number, got NaN");
  return ms > 0 ? ms : 0;
}

/** The process clock: `Date.now()` and the runtime's timers, safe for delays of any length. */
export const systemClock: Clock = createSystemClock();
