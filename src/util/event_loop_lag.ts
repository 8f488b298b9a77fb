/**
 * Event-loop lag: how late a timer fires compared with when it was due. A busy loop (a huge
 * fan-out, a synchronous hook, garbage collection) delays every socket read and timer by that
 * much, so it is the first number to look at when latency rises.
 *
 * Deno does not implement `perf_hooks.monitorEventLoopDelay` (its histogram stays empty), so this
 * measures with one timer on the injectable clock.
 *
 * @module
 */

import type { Clock, TimerId } from "./clock.ts";

/** What the monitor has seen. */
export interface EventLoopLag {
  /** Lag of the latest sample, in ms. */
  latest: number;
  /** Largest lag of the samples in the current window, in ms. */
  max: number;
}

/** Options of {@linkcode EventLoopLagMonitor}. */
export interface EventLoopLagOptions {
  /** Time between samples, in ms. */
  interval?: number;
  /** Samples the `max` covers before it starts over. */
  window?: number;
}

/** Samples event-loop lag on a timer while started. */
export class EventLoopLagMonitor {
  #clock: Clock;
  #interval: number;
  #window: number;
  #timer: TimerId | undefined;
  #due = 0;
  #latest = 0;
  #max = 0;
  #windowMax = 0;
  #samples = 0;
  #sample = () => this.#onTimer();

  constructor(clock: Clock, options: EventLoopLagOptions = {}) {
    this.#clock = clock;
    this.#interval = options.interval ?? 500;
    this.#window = options.window ?? 20;
  }

  /** Starts sampling; idempotent. */
  start(): void {
    if (this.#timer === undefined) this.#schedule();
  }

  /** Stops sampling; idempotent. */
  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The latest sample and the largest of the last full (or current) window. */
  read(): EventLoopLag {
    return { latest: this.#latest, max: Math.max(this.#max, this.#windowMax) };
  }

  #schedule(): void {
    this.#due = this.#clock.now() + this.#interval;
    this.#timer = this.#clock.setTimeout(this.#sample, this.#interval);
  }

  #onTimer(): void {
    const lag = Math.max(0, this.#clock.now() - this.#due);
    this.#latest = lag;
    if (lag > this.#windowMax) this.#windowMax = lag;
    if (++this.#samples >= this.#window) {
      // The finished window's maximum stays visible until the next one finishes.
      this.#max = this.#windowMax;
      this.#windowMax = 0;
      this.#samples = 0;
    }
    this.#schedule();
  }
}
