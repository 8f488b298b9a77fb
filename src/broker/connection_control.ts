/**
 * What the packet handlers (connect, inbound publish, subscribe) may do with the connection they
 * serve. The connection state machine implements it; the handlers know nothing else of it.
 *
 * @module
 */

import type { Packet, Properties, ProtocolVersion } from "../codec/packets.ts";
import type { ClientInfo } from "../hooks/hooks.ts";
import type { BrokerContext, BrokerSession } from "./context.ts";
import type { SessionRegistry } from "./session_registry.ts";
import type { PublishPipeline } from "./publish_pipeline.ts";

/** The engine parts a connection works with. */
export interface ConnectionServices {
  readonly context: BrokerContext;
  readonly sessions: SessionRegistry;
  readonly pipeline: PublishPipeline;
  /** A fresh unique client id for a client that sent none. */
  assignClientId(): string;
  /** MQTT 5 CONNACK properties announcing what this broker supports, plus per-client values. */
  connackProperties(perClient: Properties): Properties;
}

/** The connection as its packet handlers see it. */
export interface ConnectionControl {
  readonly services: ConnectionServices;
  readonly info: ClientInfo;
  readonly protocolVersion: ProtocolVersion;
  /** The attached session (after CONNECT). */
  readonly session: BrokerSession | undefined;
  /** True once the connection is gone. */
  readonly closed: boolean;
  /**
   * While a packet that arrived whole in one read is handled, its bytes as received (a view);
   * undefined otherwise.
   */
  readonly frame: Uint8Array | undefined;
  /** Encodes and writes a packet (dropping optional properties that do not fit the client). */
  send(packet: Packet): void;
  /** A Reason String for the client, unless it asked for none or speaks 3.1.1. */
  problemInformation(reason: string | undefined): Properties | undefined;
  /**
   * Runs an asynchronous step with input held: later packets wait until it settles; a rejection
   * closes the connection as {@linkcode ConnectionControl.fail} does.
   */
  runAsync(step: Promise<void>): void;
  /**
   * Stops reading the client while its publishes wait for room in a full queue, so that what it
   * sends next stays in its socket (TCP holds the client back) rather than waiting in the queue's
   * line; later packets of the chunk being read wait until {@linkcode releaseForRoom}. Does
   * nothing for a client with QoS 1/2 deliveries awaiting its acknowledgement (they may be what
   * makes room); such a delivery going out releases it. True while the client is held.
   */
  holdForRoom(): boolean;
  /** Reads again after {@linkcode holdForRoom} (in a later microtask). */
  releaseForRoom(): void;
  /** Closes on an error raised while handling input: logged once, answered, closed. */
  fail(error: unknown): void;
  /** Closes from the server side with a reason (DISCONNECT for MQTT 5). */
  disconnect(reasonCode: number, reason?: string, properties?: Properties): void;
}
