/**
 * Message sinks: the publish pipeline's interception point for parts outside the engine (the
 * Kafka bridge). `main.ts` passes them to the broker; the engine asks each one about every
 * message it accepts, before routing it, and for QoS 1/2 waits for the sinks that took it together
 * with the message store before the publisher hears back (see docs/delivery.md).
 *
 * @module
 */

import type { Message } from "./types.ts";

/** Who published a message, as a sink sees it; absent for messages the broker made. */
export interface Publisher {
  clientId: string;
  username: string | undefined;
}

/** Where a sink put a QoS 1/2 message: kept (it will not lose it), or refused at its bound. */
export type SinkOutcome = "stored" | "full";

/** What a sink took of a message. */
export interface SinkTake {
  /**
   * The message goes to this sink instead of MQTT: it is not routed to subscribers, forwarded to
   * other nodes, queued or retained.
   */
  readonly exclusive: boolean;
  /**
   * QoS 1/2: settles once the sink has the message ("stored") or refused it at its bound
   * ("full", the publisher gets 0x97); a rejection means it could not be kept (0x80, or a 3.1.1
   * publisher is disconnected). Undefined for QoS 0, which never waits: a sink that cannot take
   * a QoS 0 message drops and counts it.
   */
  readonly outcome: Promise<SinkOutcome> | undefined;
}

/** A part that takes copies of accepted messages, or takes some of them over. */
export interface MessageSink {
  /**
   * Called synchronously for every accepted message, after authorization; undefined when the
   * sink wants nothing of it. Must be cheap for messages it does not want: it is on every
   * publish's path.
   */
  offer(message: Message, publisher: Publisher | undefined): SinkTake | undefined;
}
