/**
 * A notification sink's queue: bounded, never in the publish path. `push` is O(1) and never
 * waits: beyond the bound the event is dropped, counted and logged (the first time and then at
 * most every ten seconds). Events are sent by up to `concurrency` lanes; each client's events
 * always take the same lane, so they arrive in order, and a failed send is retried after a delay
 * that doubles (up to a minute) before the event counts as failed.
 *
 * @module
 */

import type { Clock, TimerId } from "../util/clock.ts";
import { Fifo } from "../util/fifo.ts";
import type { Logger } from "../util/logger.ts";
import type { Notification } from "./records.ts";

/** Sends notifications to one receiver. */
export interface Sender {
  /**
   * Sends one notification, resolving once the receiver took it; rejects on failure (a
   * {@linkcode PermanentFailure} is not retried). Bounded in time by the sender.
   */
  send(notification: Notification): Promise<void>;
  /** Aborts what is in flight and releases the connection. */
  close(): Promise<void>;
}

/** A failure that sending again cannot mend (the receiver refused the request as such). */
export class PermanentFailure extends Error {
  override name = "PermanentFailure";
}

/** How a sink queues and retries. */
export interface SinkQueueOptions {
  /** Most events not yet sent (waiting or in flight). */
  queueSize: number;
  /** Events sent at once (lanes). */
  concurrency: number;
  /** Attempts after the first before an event counts as failed. */
  retries: number;
  /** Wait before the first resend, in ms; doubles with each further one. */
  retryDelay: number;
  clock: Clock;
  logger: Logger;
}

/** The longest wait between two attempts. */
const MAX_RETRY_DELAY_MS = 60_000;
/** A repeated problem is logged again after this long at the earliest. */
const LOG_INTERVAL_MS = 10_000;

interface Lane {
  readonly waiting: Fifo<Notification>;
  running: boolean;
}

/** One sink: its queue, its lanes and its counters. */
export class SinkQueue {
  /** `webhook`, `grpc` or `nats`: the metrics label. */
  readonly name: string;
  /** Events the receiver took. */
  sent = 0;
  /** Events given up after their retries (or refused for good). */
  failed = 0;
  /** Events dropped because the queue was full (or the sink closing). */
  dropped = 0;
  readonly #sender: Sender;
  readonly #options: SinkQueueOptions;
  readonly #lanes: Lane[];
  #depth = 0;
  #closed = false;
  #stopped = false;
  #idle = Promise.withResolvers<void>();
  readonly #retryTimers = new Map<TimerId, () => void>();
  #failureLoggedAt = -Infinity;
  #dropLoggedAt = -Infinity;

  constructor(name: string, sender: Sender, options: SinkQueueOptions) {
    this.name = name;
    this.#sender = sender;
    this.#options = options;
    this.#lanes = Array.from({ length: options.concurrency }, () => ({
      waiting: new Fifo<Notification>(),
      running: false,
    }));
    this.#idle.resolve();
  }

  /** Events waiting or in flight. */
  get depth(): number {
    return this.#depth;
  }

  /** Queues a notification, or drops it when the queue is full. Never waits, never throws. */
  push(notification: Notification): void {
    if (this.#closed || this.#depth >= this.#options.queueSize) {
      this.dropped++;
      this.#logDrop();
      return;
    }
    if (this.#depth++ === 0) this.#idle = Promise.withResolvers<void>();
    const lane = this.#lanes[laneOf(notification.clientId, this.#lanes.length)];
    lane.waiting.push(notification);
    if (!lane.running) this.#run(lane);
  }

  /**
   * Stops taking events and gives those queued up to `graceMs` to go out; then aborts the rest
   * (counted as dropped) and closes the sender.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    if (this.#depth > 0 && graceMs > 0) {
      let timer: TimerId | undefined;
      await Promise.race([
        this.#idle.promise,
        new Promise<void>((resolve) => timer = this.#options.clock.setTimeout(resolve, graceMs)),
      ]);
      if (timer !== undefined) this.#options.clock.clearTimeout(timer);
    }
    this.#stopped = true;
    for (const [timer, wake] of this.#retryTimers) {
      this.#options.clock.clearTimeout(timer);
      wake();
    }
    this.#retryTimers.clear();
    await this.#sender.close();
  }

  async #run(lane: Lane): Promise<void> {
    lane.running = true;
    while (lane.waiting.length > 0) {
      const notification = lane.waiting.peek()!;
      if (this.#stopped) this.dropped++;
      else await this.#deliver(notification);
      lane.waiting.shift();
      if (--this.#depth === 0) this.#idle.resolve();
    }
    lane.running = false;
  }

  /** Sends with retries; counts the outcome. */
  async #deliver(notification: Notification): Promise<void> {
    const { retries, retryDelay } = this.#options;
    for (let attempt = 0;; attempt++) {
      try {
        await this.#sender.send(notification);
        this.sent++;
        return;
      } catch (error) {
        if (this.#stopped) {
          this.dropped++;
          return;
        }
        if (error instanceof PermanentFailure || attempt >= retries) {
          this.failed++;
          this.#logFailure(notification, error, attempt + 1);
          return;
        }
        await this.#wait(Math.min(retryDelay * 2 ** attempt, MAX_RETRY_DELAY_MS));
        if (this.#stopped) {
          this.dropped++;
          return;
        }
      }
    }
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#options.clock.setTimeout(() => {
        this.#retryTimers.delete(timer);
        resolve();
      }, ms);
      this.#retryTimers.set(timer, resolve);
    });
  }

  #logFailure(notification: Notification, error: unknown, attempts: number): void {
    const now = this.#options.clock.now();
    if (now - this.#failureLoggedAt < LOG_INTERVAL_MS) return;
    this.#failureLoggedAt = now;
    this.#options.logger.warn("event notification failed", {
      sink: this.name,
      event: notification.name,
      clientId: notification.clientId,
      attempts,
      failed: this.failed,
      error: error instanceof Error ? error.message : String(error),
    });
  }

  #logDrop(): void {
    const now = this.#options.clock.now();
    if (now - this.#dropLoggedAt < LOG_INTERVAL_MS) return;
    this.#dropLoggedAt = now;
    this.#options.logger.warn("event notifications dropped: the sink's queue is full", {
      sink: this.name,
      queueSize: this.#options.queueSize,
      dropped: this.dropped,
    });
  }
}

/** The lane of a client: a string hash, so one client's events always share a lane. */
function laneOf(clientId: string, lanes: number): number {
  if (lanes === 1) return 0;
  let hash = 0;
  for (let i = 0; i < clientId.length; i++) hash = (hash * 31 + clientId.charCodeAt(i)) | 0;
  return Math.abs(hash) % lanes;
}
