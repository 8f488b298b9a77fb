/**
 * The notifier: turns this node's lifecycle events (and the agent registry's online and offline
 * changes) into smq-form notifications and hands each to every configured sink's queue. Called
 * synchronously from the engine's event emission, so all it does there is build one JSON body
 * and push it onto bounded queues.
 *
 * @module
 */

import type { BrokerEvent } from "../backbone/backbone.ts";
import type { SinkQueue } from "./queue.ts";
import { type Notification, notificationOf } from "./records.ts";

/** Notifications of this node, to every sink. */
export class Notifier {
  /** The sinks, for their counters. */
  readonly sinks: readonly SinkQueue[];

  constructor(sinks: SinkQueue[]) {
    this.sinks = sinks;
  }

  /** Queues the notification of a lifecycle event this node emitted. */
  event(event: BrokerEvent): void {
    if (this.sinks.length === 0) return;
    this.notify(notificationOf(event));
  }

  /** Queues a notification on every sink. */
  notify(notification: Notification): void {
    for (const sink of this.sinks) sink.push(notification);
  }

  /** Gives queued notifications up to `graceMs` to go out, then closes every sink. */
  async close(graceMs: number): Promise<void> {
    await Promise.all(this.sinks.map((sink) => sink.close(graceMs)));
  }
}
