/**
 * What the parts of the engine share: the broker-wide context every connection and handler reads
 * (options, clock, logger, hooks, stats, encoders, the backbone), and the view of a client
 * connection that the session registry and the router act on. Types only, so that the parts
 * depend on this module and not on each other.
 *
 * @module
 */

import type { EnhancedAuthMethods } from "../auth/enhanced.ts";
import type { EncodeOptions } from "../codec/mod.ts";
import type { Properties } from "../codec/packets.ts";
import type { Backbone, BrokerEvent } from "../backbone/backbone.ts";
import type { Message, SubscriptionRecord } from "../domain/types.ts";
import type { BrokerHooks, ClientInfo } from "../hooks/hooks.ts";
import type { Session } from "../session/session.ts";
import type { TopicLimits } from "../topic/mod.ts";
import type { Clock } from "../util/clock.ts";
import type { DeadlineScheduler } from "../util/deadlines.ts";
import type { Logger } from "../util/logger.ts";
import type { DeliveryPlan } from "./delivery_plan.ts";
import type { FanoutEncoder } from "./fanout.ts";
import type { BrokerOptions } from "./options.ts";
import type { BrokerStats } from "./stats.ts";

/** A connection's outbound delivery as the session registry and the router use it. */
export interface SessionOutbound {
  /** Sends a live message at the plan's QoS 0 (or drops it when the client does not keep up). */
  live(message: Message, plan: DeliveryPlan): void;
  /** Sends the retained messages a new subscription asks for. */
  retained(message: Message, record: SubscriptionRecord): void;
  /** Opens the session's own queue for delivery (once). */
  openSessionQueue(): Promise<void>;
  /** Takes a share group's messages as a member. */
  openGroup(group: string, filter: string, record: SubscriptionRecord): Promise<void>;
  /** Stops taking a group's messages (the member unsubscribed). */
  closeGroup(group: string, filter: string): Promise<void>;
  /** Hands every queue back what is unacknowledged (the connection closed). */
  close(): Promise<void>;
  /** QoS 1/2 messages sent and not yet acknowledged. */
  readonly inflightCount: number;
}

/** A client connection as the session registry and the router see it. */
export interface SessionConnection {
  readonly info: ClientInfo;
  /** True once CONNACK was sent and until the connection closes. */
  readonly connected: boolean;
  /** True once the connection is gone (it may close while its CONNECT is processed). */
  readonly closed: boolean;
  /**
   * Outbound delivery, created at its first use after the session is attached (started at
   * CONNACK, or at once when created later).
   */
  readonly outbound: SessionOutbound;
  /** The outbound delivery if it was created (reading it creates nothing). */
  readonly createdOutbound: SessionOutbound | undefined;
  /** Closes because another connection took the session over [MQTT-3.1.4-3]. */
  takeOver(): void;
  /** Closes from the server side with a reason (sent to MQTT 5 clients) and DISCONNECT properties. */
  disconnect(reasonCode: number, reason?: string, properties?: Properties): void;
}

/** A session held by this node. */
export type BrokerSession = Session<SessionConnection>;

/** What every connection and handler reads from the broker. */
export interface BrokerContext {
  readonly options: BrokerOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly hooks: BrokerHooks;
  readonly stats: BrokerStats;
  /** The backbone, with every call bounded in time and every failure counted and logged. */
  readonly backbone: Backbone;
  /** The connections' deadlines (connect timeout, keep alive), all on one clock timer. */
  readonly deadlines: DeadlineScheduler;
  /** Encoder options for every packet sent (the shared output allocator). */
  readonly encodeOptions: EncodeOptions;
  readonly fanout: FanoutEncoder;
  readonly topicLimits: TopicLimits;
  /** Enhanced-authentication methods by Authentication Method name. */
  readonly authMethods: EnhancedAuthMethods;
  /**
   * Emits a lifecycle event of this node: to the broker's local listeners (notifiers, the agent
   * registry) at once, and to the backbone's event stream for other nodes. Never throws.
   */
  emit(event: BrokerEvent): void;
}
