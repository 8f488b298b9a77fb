/**
 * The broker's domain records: an application message, a subscription, a will and the durable part
 * of a session. Every layer speaks in these types (the engine, the backbone seam and its
 * implementations, the admin API), so they live in a leaf module that imports only codec types.
 *
 * @module
 */

import type { Properties, ProtocolVersion, QoS } from "../codec/packets.ts";

/** An application message as it travels beyond one connection's turn. */
export interface Message {
  topic: string;
  /** Owned bytes (copied out of the read chunk before the message was stored or queued). */
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  /**
   * MQTT 5 properties forwarded to subscribers (payload format, content type, response topic,
   * correlation data, user properties). Never a topic alias or subscription identifier.
   */
  properties: Properties | undefined;
  /** Epoch ms after which the message must not be delivered; 0 for never [MQTT-3.3.2-5]. */
  expiresAt: number;
  /** Client id of the publisher, for No Local [MQTT-3.8.3-3]; "" for broker-made messages. */
  origin: string;
  /**
   * A live QoS 0 message's PUBLISH exactly as it arrived (a view into the read chunk), when a
   * subscriber at the same protocol level can be sent those very bytes; never stored or queued.
   */
  frame?: PublishFrame;
}

/** The bytes of a PUBLISH as received, and whether they are MQTT 5's encoding. */
export interface PublishFrame {
  bytes: Uint8Array;
  v5: boolean;
}

/** True when a message's expiry has passed at `now` (epoch ms). */
export function isExpired(message: Message, now: number): boolean {
  return message.expiresAt !== 0 && message.expiresAt <= now;
}

/** A subscription as a session record stores it. */
export interface SubscriptionRecord {
  /** The filter as the client sent it, including any `$share/{group}/` prefix. */
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  /** MQTT 5 Subscription Identifier, 0 when none. */
  subscriptionId: number;
}

/** A will message held for a session. */
export interface WillRecord {
  /** The message; its `expiresAt` is set when it is published. */
  message: Message;
  /** Seconds to wait after the connection closed (MQTT 5 Will Delay Interval). */
  delayInterval: number;
  /** MQTT 5 Message Expiry Interval of the will in seconds, 0 for none; counts from publication. */
  messageExpiryInterval: number;
}

/** Session Expiry Interval meaning "never expires" [MQTT-3.1.2-23]. */
export const NEVER_EXPIRES = 0xffffffff;

/** The durable part of a session: what another front-end needs to resume it. */
export interface SessionRecord {
  clientId: string;
  protocolVersion: ProtocolVersion;
  /** Seconds the session outlives its connection; `NEVER_EXPIRES` never expires. */
  expiryInterval: number;
  subscriptions: SubscriptionRecord[];
  /** The will still to be published (after the connection closed, until its delay passed). */
  will: WillRecord | undefined;
  /** Node id of the front-end that holds the live connection, undefined while offline. */
  owner: string | undefined;
  /** Epoch ms when the last connection closed, undefined while connected. */
  disconnectedAt: number | undefined;
}
