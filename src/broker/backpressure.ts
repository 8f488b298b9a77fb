/**
 * Flow control from slow subscribers back to publishers, so the broker never acknowledges a QoS 1/2
 * message and then drops it for a connected subscriber that is merely slower than its publishers.
 *
 * When a delivery leaves a connected session's queue (or a shared group's pending queue) at its
 * high-water mark, the publisher that caused it stops being read until the queue drains below the
 * low-water mark. A target that stays congested for the stall timeout is handed to `onStall` (the
 * broker disconnects a stuck subscriber), so one client that never acknowledges cannot hold the
 * others back for long.
 *
 * @module
 */

import type { Clock, TimerId } from "../util/clock.ts";

/** A publisher that can stop and restart reading its input. */
export interface Throttled {
  /** Stop processing input until `resumeForBackpressure()`. */
  holdForBackpressure(): void;
  resumeForBackpressure(): void;
}

/** Tracks which publishers wait on which congested queues. */
export class Backpressure {
  #clock: Clock;
  #stallTimeout: number;
  #onStall: (target: object) => void;
  /** Targets found congested during the publish being processed. */
  #noted: object[] = [];
  #waiters = new Map<object, Set<Throttled>>();
  #waitingOn = new Map<Throttled, Set<object>>();
  #stallTimers = new Map<object, TimerId>();

  constructor(clock: Clock, stallTimeout: number, onStall: (target: object) => void) {
    this.#clock = clock;
    this.#stallTimeout = stallTimeout;
    this.#onStall = onStall;
  }

  /** Starts a publish: forgets congestion noted by earlier ones. */
  beginPublish(): void {
    if (this.#noted.length > 0) this.#noted.length = 0;
  }

  /** A delivery of the current publish found `target` at its high-water mark. */
  note(target: object): void {
    if (!this.#noted.includes(target)) this.#noted.push(target);
  }

  /**
   * Holds the publisher on every target noted during its publish. Returns true when it was held.
   */
  holdIfCongested(publisher: Throttled): boolean {
    if (this.#noted.length === 0) return false;
    let targets = this.#waitingOn.get(publisher);
    if (!targets) {
      targets = new Set();
      this.#waitingOn.set(publisher, targets);
    }
    for (const target of this.#noted) {
      targets.add(target);
      let waiters = this.#waiters.get(target);
      if (!waiters) {
        waiters = new Set();
        this.#waiters.set(target, waiters);
        this.#stallTimers.set(
          target,
          this.#clock.setTimeout(() => this.#stalled(target), this.#stallTimeout),
        );
      }
      waiters.add(publisher);
    }
    this.#noted.length = 0;
    publisher.holdForBackpressure();
    return true;
  }

  /** Whether any publisher waits on `target` (cheap when nobody waits at all). */
  isWaitedOn(target: object): boolean {
    return this.#waiters.size > 0 && this.#waiters.has(target);
  }

  /** `target` drained (or went away): publishers waiting only on it resume. */
  release(target: object): void {
    const waiters = this.#waiters.get(target);
    if (!waiters) return;
    this.#waiters.delete(target);
    const timer = this.#stallTimers.get(target);
    if (timer !== undefined) this.#clock.clearTimeout(timer);
    this.#stallTimers.delete(target);
    for (const publisher of waiters) {
      const targets = this.#waitingOn.get(publisher);
      targets?.delete(target);
      if (targets && targets.size === 0) {
        this.#waitingOn.delete(publisher);
        publisher.resumeForBackpressure();
      }
    }
  }

  /** A publisher went away: stop tracking it. */
  forget(publisher: Throttled): void {
    const targets = this.#waitingOn.get(publisher);
    if (!targets) return;
    this.#waitingOn.delete(publisher);
    for (const target of targets) {
      const waiters = this.#waiters.get(target);
      waiters?.delete(publisher);
      if (waiters && waiters.size === 0) {
        this.#waiters.delete(target);
        const timer = this.#stallTimers.get(target);
        if (timer !== undefined) this.#clock.clearTimeout(timer);
        this.#stallTimers.delete(target);
      }
    }
  }

  /** Releases everyone (shutdown). */
  clear(): void {
    for (const target of [...this.#waiters.keys()]) this.release(target);
  }

  #stalled(target: object): void {
    this.#stallTimers.delete(target);
    if (!this.#waiters.has(target)) return;
    this.#onStall(target);
    // Whatever the broker did, the publishers do not wait on this target any longer.
    this.release(target);
  }
}
