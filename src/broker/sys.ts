/**
 * `$SYS/broker/...` topics, published as retained messages at a fixed interval (the Mosquitto
 * convention), so a subscriber sees the latest values at once and then every update.
 *
 * @module
 */

import type { Message, RetainedStore } from "../backbone/backbone.ts";
import type { Clock, TimerId } from "../util/clock.ts";
import type { BrokerStats } from "./stats.ts";

/** What `$SYS` reports on: the broker, seen through the values it publishes. */
export interface SysSource {
  readonly clock: Clock;
  readonly stats: BrokerStats;
  readonly version: string;
  readonly sessionCount: number;
  readonly subscriptionCount: number;
  readonly backbone: { readonly retained: RetainedStore };
  publish(message: Message): number | Promise<number>;
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
    this.publishNow();
    this.#schedule();
  }

  stop(): void {
    if (this.#timer !== undefined) this.#broker.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = this.#broker.clock.setTimeout(() => {
      this.publishNow();
      this.#schedule();
    }, this.#intervalMs);
  }

  /** Publishes every `$SYS` topic once. */
  publishNow(): void {
    const broker = this.#broker;
    const stats = broker.stats;
    const retained = broker.backbone.retained.count();
    const values: [string, string | number][] = [
      ["version", broker.version],
      ["uptime", `${Math.floor((broker.clock.now() - stats.startedAt) / 1000)} seconds`],
      ["clients/connected", stats.clientsConnected],
      ["clients/total", broker.sessionCount],
      ["clients/disconnected", broker.sessionCount - stats.clientsConnected],
      ["messages/received", stats.publishReceived],
      ["messages/sent", stats.publishSent],
      ["messages/dropped", droppedTotal(broker)],
      ["bytes/received", stats.bytesReceived],
      ["bytes/sent", stats.bytesSent],
      ["subscriptions/count", broker.subscriptionCount],
    ];
    if (typeof retained === "number") values.push(["retained messages/count", retained]);
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
      const result = broker.publish(message);
      if (result instanceof Promise) result.catch(() => {});
    }
  }
}

function droppedTotal(broker: SysSource): number {
  const s = broker.stats;
  return s.droppedExpired + s.droppedSlowConsumer + s.droppedQueueFull + s.droppedTooLarge;
}
