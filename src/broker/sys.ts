/**
 * `$SYS/broker/...` topics, published as retained messages at a fixed interval (the Mosquitto
 * convention), so a subscriber sees the latest values at once and then every update.
 *
 * @module
 */

import type { Message } from "../domain/types.ts";
import type { Clock, TimerId } from "../util/clock.ts";
import type { BrokerStats } from "./stats.ts";

/** What `$SYS` reports on: the broker, seen through the values it publishes. */
export interface SysSource {
  readonly clock: Clock;
  readonly stats: BrokerStats;
  readonly version: string;
  /** Subscriptions on this node. */
  readonly subscriptionCount: number;
  readonly backbone: {
    readonly sessions: { count(): Promise<number> };
    readonly retained: { count(): Promise<number> };
  };
  publish(message: Message): Promise<number>;
}

const encoder = new TextEncoder();

/** Publishes broker statistics under `$SYS/broker/`. */
export class SysPublisher {
  #broker: SysSource;
  #intervalMs: number;
  #timer: TimerId | undefined;

  constructor(broker: SysSource, intervalMs: number) {
    this.#broker = broker;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.publishNow().catch(() => {});
    this.#schedule();
  }

  stop(): void {
    if (this.#timer !== undefined) this.#broker.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = this.#broker.clock.setTimeout(() => {
      // A backbone that does not answer skips one update; it was logged where it failed.
      this.publishNow().catch(() => {});
      this.#schedule();
    }, this.#intervalMs);
  }

  /** Publishes every `$SYS` topic once. */
  async publishNow(): Promise<void> {
    const broker = this.#broker;
    const stats = broker.stats;
    const [sessions, retained] = await Promise.all([
      broker.backbone.sessions.count(),
      broker.backbone.retained.count(),
    ]);
    const values: [string, string | number][] = [
      ["version", broker.version],
      ["uptime", `${Math.floor((broker.clock.now() - stats.startedAt) / 1000)} seconds`],
      ["clients/connected", stats.clientsConnected],
      ["clients/total", sessions],
      ["clients/disconnected", Math.max(0, sessions - stats.clientsConnected)],
      ["messages/received", stats.publishReceived],
      ["messages/sent", stats.publishSent],
      ["messages/dropped", droppedTotal(stats)],
      ["bytes/received", stats.bytesReceived],
      ["bytes/sent", stats.bytesSent],
      ["subscriptions/count", broker.subscriptionCount],
      ["retained messages/count", retained],
    ];
    for (const [path, value] of values) {
      const message: Message = {
        topic: `$SYS/broker/${path}`,
        payload: encoder.encode(String(value)),
        qos: 0,
        retain: true,
        properties: undefined,
        expiresAt: 0,
        origin: "",
      };
      broker.publish(message).catch(() => {});
    }
  }
}

function droppedTotal(s: BrokerStats): number {
  return s.droppedExpired + s.droppedSlowConsumer + s.droppedQueueFull + s.droppedTooLarge;
}
