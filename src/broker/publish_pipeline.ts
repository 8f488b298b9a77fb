/**
 * What happens to an accepted message: the retained store is updated, the message goes live to
 * this node's QoS 0 subscribers and through the bus to other nodes and share groups, and a QoS 1/2
 * message is stored in every matching queue before the publisher hears back. The outcome becomes
 * the reason code of the publisher's acknowledgement; nothing is acknowledged as a success that
 * was not stored.
 *
 * Validation and authorization happen before, in the inbound handler (or the admin API).
 *
 * @module
 */

import { ReasonCode } from "../codec/mod.ts";
import type { InboundKey } from "../backbone/backbone.ts";
import { BackboneError, failureOf } from "../backbone/errors.ts";
import type { Message } from "../domain/types.ts";
import type { BrokerContext } from "./context.ts";
import type { Router } from "./router.ts";

/** The answer to a publisher. */
export interface PublishResult {
  /** MQTT 5 reason code for PUBACK/PUBREC. */
  reasonCode: number;
  /** Human-readable reason for a non-success code (MQTT 5 Reason String). */
  reason: string | undefined;
  /**
   * The message could not be stored: a 3.1.1 client, which has no failure code for it, is
   * disconnected rather than acknowledged [MQTT-4.3.2-2].
   */
  notStored: boolean;
  /** The store is near its global ceiling: the publisher is slowed down. */
  congested: boolean;
}

const SUCCESS: PublishResult = {
  reasonCode: ReasonCode.Success,
  reason: undefined,
  notStored: false,
  congested: false,
};

/** Stores and routes accepted messages. */
export class PublishPipeline {
  readonly #context: BrokerContext;
  readonly #router: Router;

  constructor(context: BrokerContext, router: Router) {
    this.#context = context;
    this.#router = router;
  }

  /**
   * A QoS 0 message: routed live here and forwarded to other nodes, synchronously; a retained one
   * updates the retained store in the background (a failure is counted and logged, QoS 0 has no
   * acknowledgement to carry it).
   */
  publishLive(message: Message): void {
    if (message.retain) {
      this.#storeRetained(message).catch((error) => this.#retainedFailed(message, error));
    }
    this.#router.route(message);
    this.#context.backbone.messages.forward(message);
  }

  /**
   * A QoS 1/2 message: routed live to QoS 0 subscriptions here, stored in every matching queue
   * (and the retained store), then answered. With `inbound` (QoS 2 from a client), a packet id
   * already open for the publisher stores nothing again [MQTT-4.3.3-9].
   */
  async publishStored(message: Message, inbound?: InboundKey): Promise<PublishResult> {
    const result = await this.#store(message, inbound);
    if (inbound && result.reasonCode >= 0x80) {
      // A PUBREC with a failure code ends the QoS 2 flow [MQTT-4.3.3-4]: the client may reuse the
      // packet id at once, so it must not stay open as if a PUBREL were to come.
      await this.#context.backbone.messages.completeInbound(inbound).catch(() => {});
    }
    return result;
  }

  async #store(message: Message, inbound: InboundKey | undefined): Promise<PublishResult> {
    const matchedHere = this.#router.route(message);
    const backbone = this.#context.backbone;
    const retained = message.retain ? this.#storeRetained(message) : undefined;
    let retainedFull = false;
    try {
      const [outcome] = await Promise.all([
        backbone.messages.publish(message, inbound),
        retained?.catch((error) => {
          if (failureOf(error) !== "full") throw error;
          this.#retainedFailed(message, error);
          retainedFull = true;
        }),
      ]);
      if (outcome.duplicate) return SUCCESS;
      const congested = outcome.congested;
      if (congested) this.#congested();
      if (retainedFull) {
        return {
          reasonCode: ReasonCode.QuotaExceeded,
          reason: "The retained store is full",
          notStored: false,
          congested,
        };
      }
      if (outcome.full > 0) {
        this.#queueFull(message, outcome.full, outcome.fullQueues);
        return {
          reasonCode: ReasonCode.QuotaExceeded,
          reason: "A subscriber's queue is full",
          notStored: false,
          congested,
        };
      }
      const reasonCode = outcome.queued === 0 && matchedHere === 0 && !outcome.forwarded
        ? ReasonCode.NoMatchingSubscribers
        : ReasonCode.Success;
      return congested || reasonCode !== ReasonCode.Success
        ? { reasonCode, reason: undefined, notStored: false, congested }
        : SUCCESS;
    } catch (error) {
      this.#context.stats.publishNotStored++;
      const timeout = error instanceof BackboneError && error.failure === "timeout";
      return {
        reasonCode: ReasonCode.UnspecifiedError,
        reason: timeout
          ? "The message store did not answer in time; the message was not stored"
          : "The message store is unavailable; the message was not stored",
        notStored: true,
        congested: false,
      };
    }
  }

  /** A message the broker makes (a will, an admin publish, `$SYS`): any QoS. */
  publish(message: Message): Promise<PublishResult> {
    if (message.qos > 0) return this.publishStored(message);
    this.publishLive(message);
    return Promise.resolve(SUCCESS);
  }

  /** An empty payload clears the topic's retained message [MQTT-3.3.1-6] [MQTT-3.3.1-7]. */
  #storeRetained(message: Message): Promise<unknown> {
    const retained = this.#context.backbone.retained;
    return message.payload.length === 0 ? retained.delete(message.topic) : retained.set(message); // [MQTT-3.3.1-5]
  }

  #retainedFailed(message: Message, error: unknown): void {
    this.#context.stats.retainedRejected++;
    if (failureOf(error) === "full") {
      this.#context.logger.warn("retained message not stored: the retained store is full", {
        topic: message.topic,
      });
    }
  }

  #queueFull(message: Message, queues: number, names: string[]): void {
    const stats = this.#context.stats;
    const before = stats.droppedQueueFull;
    stats.droppedQueueFull += queues;
    // One line per thousand drops keeps a flood visible without flooding the log.
    if (Math.floor(before / 1000) !== Math.floor(stats.droppedQueueFull / 1000) || before === 0) {
      this.#context.logger.warn("queue full: message not queued for a subscriber", {
        clients: names.join(","),
        topic: message.topic,
        dropped: stats.droppedQueueFull,
      });
    }
  }

  #congested(): void {
    const stats = this.#context.stats;
    // The first time, then one line per thousand slowed publishes.
    if (stats.publishersSlowed++ % 1000 === 0) {
      this.#context.logger.warn(
        "queued messages near the global ceiling (limits.maxQueuedBytesTotal): slowing publishers",
        { slowed: stats.publishersSlowed },
      );
    }
  }
}
