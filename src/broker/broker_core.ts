/**
 * What a client connection needs from the broker that owns it. The broker implements it; the
 * interface keeps `client.ts` free of an import cycle with `broker.ts`.
 *
 * @module
 */

import type { EnhancedAuthMethods } from "../auth/enhanced.ts";
import type { EncodeOptions } from "../codec/mod.ts";
import type { Properties, ProtocolVersion } from "../codec/packets.ts";
import type { Backbone, Message, SubscriptionRecord, WillRecord } from "../backbone/backbone.ts";
import type { BrokerHooks, ClientInfo } from "../hooks/hooks.ts";
import type { ClientLink, Session } from "../session/session.ts";
import type { TopicLimits } from "../topic/mod.ts";
import type { Clock } from "../util/clock.ts";
import type { DeadlineScheduler } from "../util/deadlines.ts";
import type { Logger } from "../util/logger.ts";
import type { Backpressure } from "./backpressure.ts";
import type { FanoutEncoder } from "./fanout.ts";
import type { BrokerOptions } from "./options.ts";
import type { Router } from "./router.ts";
import type { BrokerStats } from "./stats.ts";

/** What a connection asks for when its CONNECT is accepted. */
export interface AttachRequest {
  clientId: string;
  cleanStart: boolean;
  /** Granted Session Expiry Interval in seconds. */
  expiryInterval: number;
  protocolVersion: ProtocolVersion;
  will: WillRecord | undefined;
}

/** A connection as the broker sees it. */
export interface AttachingClient extends ClientLink {
  /** True once the connection is gone (it may close while CONNECT is processed). */
  readonly closed: boolean;
  readonly info: ClientInfo;
}

/** How a connection ended. */
export interface CloseInfo {
  /** Whether CONNACK had been sent. */
  wasConnected: boolean;
  /** Publish the will (false after a normal DISCONNECT). */
  willOnClose: boolean;
  reasonCode: number;
  byClient: boolean;
}

/** The broker as its connections see it. */
export interface BrokerCore {
  readonly options: BrokerOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly hooks: BrokerHooks;
  readonly stats: BrokerStats;
  readonly backbone: Backbone;
  readonly router: Router;
  /** The connections' deadlines (connect timeout, keep alive), all on one clock timer. */
  readonly deadlines: DeadlineScheduler;
  /** Encoder options for every packet sent (the shared output allocator). */
  readonly encodeOptions: EncodeOptions;
  readonly fanout: FanoutEncoder;
  readonly backpressure: Backpressure;
  readonly topicLimits: TopicLimits;
  /** Enhanced-authentication methods by Authentication Method name. */
  readonly authMethods: EnhancedAuthMethods;
  /** A fresh unique client id for a client that sent none. */
  assignClientId(): string;
  /**
   * Binds a connection to its session: takes over a connected one, discards or resumes an
   * existing session, persists it. Undefined when the connection closed meanwhile.
   */
  attach(
    client: AttachingClient,
    request: AttachRequest,
  ): Promise<{ session: Session; sessionPresent: boolean } | undefined>;
  /** CONNACK has been sent. */
  clientConnected(client: AttachingClient): void;
  /** The connection ended (whether or not it ever connected). */
  clientClosed(client: AttachingClient, session: Session | undefined, info: CloseInfo): void;
  /**
   * Stores a retained message if flagged and routes the message. Returns the reason code for the
   * publisher's acknowledgement (a Promise when the backbone is asynchronous).
   */
  publish(message: Message): number | Promise<number>;
  /** Adds or replaces a subscription; true if new for the session. */
  subscribe(session: Session, record: SubscriptionRecord): boolean;
  /** Removes a subscription; true if it existed. */
  unsubscribe(session: Session, filter: string): boolean;
  /** Writes the session record to the backbone. */
  persistSession(session: Session): void;
  /** Queues a QoS 1/2 message for a session (dropped visibly when its queue is full). */
  enqueue(session: Session, message: Message): void;
  /** Takes up to `max` queued messages of a session. */
  takeQueued(session: Session, max: number): Message[] | Promise<Message[]>;
  /**
   * Lets the publishers held on `session` go once its queue is below the low-water mark. Called
   * after taken messages were sent, so that a released publisher's next message cannot overtake
   * them [MQTT-4.6.0-6].
   */
  releaseIfDrained(session: Session): void;
  /** MQTT 5 CONNACK properties announcing what this broker supports, plus per-client values. */
  connackProperties(perClient: Properties): Properties;
}
