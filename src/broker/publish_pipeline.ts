/**
 * What happens to an accepted message: the retained store is updated, the message goes live to
 * this node's QoS 0 subscribers and through the bus to other nodes and share groups, and a QoS 1/2
 * message is stored in every matching queue before the publisher hears back. The outcome becomes
 * the reason code of the publisher's acknowledgement; nothing is acknowledged as a success that
 * was not stored.
 *
 * Message sinks (the Kafka bridge) are asked about each message first: one may take a copy, or
 * take the message over so that it never reaches MQTT; for QoS 1/2 the publisher hears back once
 * the sinks that took it and the store have both answered, by the same rules (a bound reached is
 * 0x97, anything else that kept the message from being kept is a failure).
 *
 * Validation and authorization happen before, in the inbound handler (or the admin API).
 *
 * @module
 */

import { ReasonCode } from "../codec/mod.ts";
import { type InboundKey, type PublishOutcome, PublishWait } from "../backbone/backbone.ts";
import { BackboneError, failureOf } from "../backbone/errors.ts";
import type { MessageSink, Publisher, SinkOutcome } from "../domain/sink.ts";
import type { Message } from "../domain/types.ts";
import type { BrokerContext } from "./context.ts";
import type { Router } from "./router.ts";
import { Pending } from "../util/pending.ts";

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
  /**
   * A queue that took it asks its publishers to hold back until this settles (see
   * `PublishOutcome.backpressure`): the publisher is not read meanwhile.
   */
  hold?: Pending<void>;
}

const SUCCESS: PublishResult = {
  reasonCode: ReasonCode.Success,
  reason: undefined,
  notStored: false,
  congested: false,
};

const SINK_FULL: PublishResult = {
  reasonCode: ReasonCode.QuotaExceeded,
  reason: "A bridge's buffer is full",
  notStored: false,
  congested: false,
};

/**
 * The answer to a publish that waits for room in a full queue of an in-process backbone
 * ({@linkcode PublishWait}): the publisher's input may be held until it settles.
 */
export class ResultWait extends Pending<PublishResult> {}

/** A sink could not keep a message (its outcome rejected). */
class SinkFailure extends Error {}

/** What the sinks took of one QoS 1/2 message. */
interface Taken {
  exclusive: boolean;
  outcomes: Promise<SinkOutcome>[];
}

/** The sinks' outcomes as one: "full" if any sink refused, a {@linkcode SinkFailure} if any failed. */
function sinksOutcome(outcomes: Promise<SinkOutcome>[]): Promise<SinkOutcome> {
  const all = outcomes.length === 1
    ? outcomes[0]
    : Promise.all(outcomes).then((each) => each.includes("full") ? "full" : "stored");
  return all.catch((error) => {
    throw new SinkFailure(`A sink failed: ${error instanceof Error ? error.message : error}`, {
      cause: error,
    });
  });
}

/** Stores and routes accepted messages. */
export class PublishPipeline {
  readonly #context: BrokerContext;
  readonly #router: Router;
  readonly #sinks: readonly MessageSink[];

  constructor(context: BrokerContext, router: Router, sinks: readonly MessageSink[] = []) {
    this.#context = context;
    this.#router = router;
    this.#sinks = sinks;
  }

  /**
   * A QoS 0 message: offered to the sinks, then (unless one took it over) routed live here and
   * forwarded to other nodes, synchronously; a retained one updates the retained store in the
   * background (a failure is counted and logged, QoS 0 has no acknowledgement to carry it).
   */
  publishLive(message: Message, publisher?: Publisher): void {
    if (this.#sinks.length > 0 && this.#offerLive(message, publisher)) return;
    if (message.retain) this.#retainLive(message);
    this.#router.route(message);
    this.#context.backbone.messages.forward(message);
  }

  /**
   * Stores a retained QoS 0 message in the background. A method of its own: its closure in
   * `publishLive` had V8 allocate a context for every QoS 0 message, retained or not.
   */
  #retainLive(message: Message): void {
    this.#storeRetained(message).catch((error) => this.#retainedFailed(message, error));
  }

  /** Offers a QoS 0 message to every sink; true when one took it over. */
  #offerLive(message: Message, publisher: Publisher | undefined): boolean {
    let exclusive = false;
    for (const sink of this.#sinks) {
      if (sink.offer(message, publisher)?.exclusive) exclusive = true;
    }
    return exclusive;
  }

  /**
   * A QoS 1/2 message: offered to the sinks, routed live to QoS 0 subscriptions here, stored in
   * every matching queue (and the retained store), then answered; a message a sink took over is
   * answered once that sink has it. With `inbound` (QoS 2 from a client), a packet id already
   * open for the publisher stores nothing again [MQTT-4.3.3-9]. The result itself, not a
   * promise, when the backbone stored the message at once.
   */
  publishStored(
    message: Message,
    inbound?: InboundKey,
    publisher?: Publisher,
  ): PublishResult | Promise<PublishResult> | ResultWait {
    if (this.#sinks.length === 0 && !message.retain) {
      // The common case, once per QoS 1/2 message: one backbone call, answered in this turn
      // when it stored the message at once; otherwise one reaction, with no async frame or
      // Promise.all held for as long as the message waits for room in a full queue.
      const matchedHere = this.#router.route(message);
      const outcome = this.#context.backbone.messages.publish(message, inbound);
      if (outcome instanceof PublishWait) {
        return this.#resultWhenSettled(outcome, message, inbound, matchedHere);
      }
      if (outcome instanceof Promise) {
        return this.#resultWhenStored(outcome, message, inbound, matchedHere);
      }
      return this.#closeIfRefused(
        inbound,
        this.#result(message, outcome, matchedHere, false, undefined, undefined),
      );
    }
    return this.#publishStored(message, inbound, publisher);
  }

  // The two ways of answering later are methods of their own: the closures they make would
  // otherwise have V8 allocate a context at every entry to publishStored, stored at once or not.

  /** Waiting for room in process: answered through the wait, without a promise. */
  #resultWhenSettled(
    outcome: PublishWait,
    message: Message,
    inbound: InboundKey | undefined,
    matchedHere: number,
  ): ResultWait {
    const wait = new ResultWait();
    outcome.onSettled((outcome) => {
      const result = this.#closeIfRefused(
        inbound,
        this.#result(message, outcome, matchedHere, false, undefined, undefined),
      );
      if (result instanceof Promise) result.then((result) => wait.settle(result));
      else wait.settle(result);
    });
    return wait;
  }

  /** Stored by a backbone that answers asynchronously. */
  #resultWhenStored(
    outcome: Promise<PublishOutcome>,
    message: Message,
    inbound: InboundKey | undefined,
    matchedHere: number,
  ): Promise<PublishResult> {
    return outcome.then(
      (outcome) =>
        this.#closeIfRefused(
          inbound,
          this.#result(message, outcome, matchedHere, false, undefined, undefined),
        ),
      (error) => this.#closeIfRefused(inbound, this.#notStored(error)),
    );
  }

  /**
   * A PUBREC with a failure code ends the QoS 2 flow [MQTT-4.3.3-4]: the client may reuse the
   * packet id at once, so it must not stay open as if a PUBREL were to come. The result is
   * answered once the id is closed (or closing it failed).
   */
  #closeIfRefused(
    inbound: InboundKey | undefined,
    result: PublishResult,
  ): PublishResult | Promise<PublishResult> {
    if (inbound === undefined || result.reasonCode < 0x80) return result;
    let closed: boolean | Promise<boolean>;
    try {
      closed = this.#context.backbone.messages.completeInbound(inbound);
    } catch {
      return result;
    }
    if (!(closed instanceof Promise)) return result;
    return closed.then(() => result, () => result);
  }

  async #publishStored(
    message: Message,
    inbound: InboundKey | undefined,
    publisher: Publisher | undefined,
  ): Promise<PublishResult> {
    const taken = this.#sinks.length > 0 ? this.#offerStored(message, publisher) : undefined;
    const result = taken?.exclusive
      ? await this.#sinksOnly(taken.outcomes)
      : await this.#store(message, inbound, taken);
    return await this.#closeIfRefused(inbound, result);
  }

  /** Offers a QoS 1/2 message to every sink; undefined when none took it. */
  #offerStored(message: Message, publisher: Publisher | undefined): Taken | undefined {
    let taken: Taken | undefined;
    for (const sink of this.#sinks) {
      const take = sink.offer(message, publisher);
      if (!take?.outcome) continue;
      taken ??= { exclusive: false, outcomes: [] };
      taken.outcomes.push(take.outcome);
      if (take.exclusive) taken.exclusive = true;
    }
    return taken;
  }

  /** A message the sinks took over: answered by their outcome alone. */
  async #sinksOnly(outcomes: Promise<SinkOutcome>[]): Promise<PublishResult> {
    try {
      return await sinksOutcome(outcomes) === "full" ? SINK_FULL : SUCCESS;
    } catch (error) {
      return this.#notStored(error);
    }
  }

  async #store(
    message: Message,
    inbound: InboundKey | undefined,
    taken: Taken | undefined,
  ): Promise<PublishResult> {
    const matchedHere = this.#router.route(message);
    const backbone = this.#context.backbone;
    const retained = message.retain ? this.#storeRetained(message) : undefined;
    let retainedFull = false;
    try {
      const [outcome, sinks] = await Promise.all([
        backbone.messages.publish(message, inbound),
        taken && sinksOutcome(taken.outcomes),
        retained?.catch((error) => {
          if (failureOf(error) !== "full") throw error;
          this.#retainedFailed(message, error);
          retainedFull = true;
        }),
      ]);
      return this.#result(message, outcome, matchedHere, retainedFull, sinks, taken);
    } catch (error) {
      return this.#notStored(error);
    }
  }

  /** The answer to the publisher once the store, the retained store and the sinks answered. */
  #result(
    message: Message,
    outcome: PublishOutcome,
    matchedHere: number,
    retainedFull: boolean,
    sinks: SinkOutcome | undefined,
    taken: Taken | undefined,
  ): PublishResult {
    if (outcome.duplicate) return SUCCESS;
    const result = this.#answer(message, outcome, matchedHere, retainedFull, sinks, taken);
    const hold = outcome.backpressure;
    if (hold === undefined) return result;
    return {
      reasonCode: result.reasonCode,
      reason: result.reason,
      notStored: false,
      congested: result.congested,
      hold,
    };
  }

  #answer(
    message: Message,
    outcome: PublishOutcome,
    matchedHere: number,
    retainedFull: boolean,
    sinks: SinkOutcome | undefined,
    taken: Taken | undefined,
  ): PublishResult {
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
      this.#queueFull(message, outcome.full, outcome.fullQueues, outcome.stuck ?? 0);
      return {
        reasonCode: ReasonCode.QuotaExceeded,
        reason: "A subscriber's queue is full",
        notStored: false,
        congested,
      };
    }
    if (sinks === "full") return { ...SINK_FULL, congested };
    const reasonCode = outcome.queued === 0 && matchedHere === 0 && !outcome.forwarded && !taken
      ? ReasonCode.NoMatchingSubscribers
      : ReasonCode.Success;
    return congested || reasonCode !== ReasonCode.Success
      ? { reasonCode, reason: undefined, notStored: false, congested }
      : SUCCESS;
  }

  #notStored(error: unknown): PublishResult {
    this.#context.stats.publishNotStored++;
    let reason = "The message store is unavailable; the message was not stored";
    if (error instanceof SinkFailure) {
      reason = "A bridge could not keep the message; it was not stored";
    } else if (error instanceof BackboneError && error.failure === "timeout") {
      reason = "The message store did not answer in time; the message was not stored";
    }
    return { reasonCode: ReasonCode.UnspecifiedError, reason, notStored: true, congested: false };
  }

  /** A message the broker makes (a will, an admin publish, `$SYS`): any QoS. */
  publish(message: Message): Promise<PublishResult> {
    if (message.qos > 0) return Promise.resolve(this.publishStored(message));
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

  #queueFull(message: Message, queues: number, names: string[], stuck: number): void {
    const stats = this.#context.stats;
    const before = stats.droppedQueueFull;
    stats.droppedQueueFull += queues;
    stats.droppedStuckSubscriber += stuck;
    // One line per thousand drops keeps a flood visible without flooding the log.
    if (Math.floor(before / 1000) !== Math.floor(stats.droppedQueueFull / 1000) || before === 0) {
      this.#context.logger.warn("queue full: message not queued for a subscriber", {
        clients: names.join(","),
        topic: message.topic,
        // Why this one: the subscriber was taken for stuck (or is offline), or the bound alone.
        why: stuck > 0 ? "subscriber stuck or offline" : "bound",
        dropped: stats.droppedQueueFull,
        droppedStuck: stats.droppedStuckSubscriber,
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
