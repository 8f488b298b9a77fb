/**
 * Per-client session state, free of I/O: subscriptions, outbound packet ids and the inflight
 * window, inbound QoS 2 ids awaiting PUBREL, the will, and expiry. The broker drives it and does the
 * sending; this module only keeps the books.
 *
 * @module
 */

import type { Properties, ProtocolVersion, QoS } from "../codec/packets.ts";
import { InflightTable } from "./inflight_table.ts";
import type {
  Message,
  SessionRecord,
  SubscriptionRecord,
  WillRecord,
} from "../backbone/backbone.ts";

/** Session Expiry Interval meaning "never expires" [MQTT-3.1.2-23]. */
export const NEVER_EXPIRES = 0xffffffff;

/** An outbound QoS 1/2 message sent and not yet fully acknowledged. */
export interface InflightMessage {
  packetId: number;
  message: Message;
  /** QoS it was sent with (1 or 2). */
  qos: 1 | 2;
  /** The RETAIN flag it was sent with. */
  retain: boolean;
  /** Subscription identifiers it was sent with, for an identical resend. */
  subscriptionIds: number[] | undefined;
  /** QoS 2: PUBREC received and PUBREL sent; waiting for PUBCOMP. */
  released: boolean;
  /** The shared subscription group it came through (owned by the router), if any. */
  group: object | undefined;
}

/** What a session needs from the connection currently attached to it. */
export interface ClientLink {
  /** True when a message at this QoS could be sent right now. */
  canSendNow(qos: QoS): boolean;
  /** Sends, queues or drops a message per the connection's state and window. */
  deliver(
    message: Message,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    group: object | undefined,
  ): void;
  /** Moves queued messages into the window as it opens. */
  pump(): void;
  /** Closes the connection because another one took the session over. */
  takeOver(): void;
  /**
   * Closes the connection from the server side with a reason (sent to MQTT 5 clients), plus any
   * DISCONNECT properties (e.g. a Server Reference).
   */
  disconnect(reasonCode: number, reason?: string, properties?: Properties): void;
}

/** One client's session. */
export class Session {
  readonly clientId: string;
  protocolVersion: ProtocolVersion;
  /** Seconds the session outlives its connection; NEVER_EXPIRES for never. */
  expiryInterval: number;
  will: WillRecord | undefined = undefined;
  /** Messages waiting in the backbone queue for this session (as counted by this node). */
  queued = 0;
  /** Payload bytes of those messages. */
  queuedBytes = 0;
  /** Revision of the stored session record, for compare-and-set writes. */
  revision = 0;
  /** Epoch ms when the last connection closed; undefined while connected. */
  disconnectedAt: number | undefined = undefined;
  /** The live connection, undefined while offline. */
  client: ClientLink | undefined = undefined;
  /** Opaque handle of the pending expiry timer, if any. */
  expiryTimer: unknown = undefined;
  /** Opaque handle of the pending delayed-will timer, if any. */
  willTimer: unknown = undefined;
  /** Router bookkeeping: the id of the last route that reached this session. */
  routeMark = 0;
  #nextPacketId = 1;
  // The collections are created on first use: an idle connection's session then costs no Map
  // (each empty Map or Set takes ~180 bytes of heap), which matters at 100k connections.
  #subscriptions: Map<string, SubscriptionRecord> | undefined = undefined;
  #inflight: InflightTable<InflightMessage> | undefined = undefined;
  #inboundQos2: Set<number> | undefined = undefined;

  constructor(clientId: string, protocolVersion: ProtocolVersion, expiryInterval: number) {
    this.clientId = clientId;
    this.protocolVersion = protocolVersion;
    this.expiryInterval = expiryInterval;
  }

  /** Subscriptions by the filter string as sent (including any `$share/{group}/` prefix). */
  get subscriptions(): Map<string, SubscriptionRecord> {
    return this.#subscriptions ??= new Map();
  }

  /** Number of subscriptions (without creating the map). */
  get subscriptionCount(): number {
    return this.#subscriptions?.size ?? 0;
  }

  /** Outbound QoS 1/2 messages by packet id; `values()` lists them in the order they were sent. */
  get inflight(): InflightTable<InflightMessage> {
    return this.#inflight ??= new InflightTable();
  }

  /** Number of outbound QoS 1/2 messages in flight (without creating the map). */
  get inflightCount(): number {
    return this.#inflight?.size ?? 0;
  }

  /** Inbound QoS 2 packet ids whose PUBREL has not arrived yet [MQTT-4.3.3-8]. */
  get inboundQos2(): Set<number> {
    return this.#inboundQos2 ??= new Set();
  }

  /**
   * Returns a packet identifier not used by any inflight message [MQTT-2.2.1-4]. The caller keeps
   * inflight below 65,535, so a free id always exists.
   */
  allocatePacketId(): number {
    const id = this.inflight.freeId(this.#nextPacketId);
    this.#nextPacketId = id === 0xffff ? 1 : id + 1;
    return id;
  }

  /** Records an outbound QoS 1/2 message as sent. */
  addInflight(
    packetId: number,
    message: Message,
    qos: 1 | 2,
    retain: boolean,
    subscriptionIds: number[] | undefined,
  ): InflightMessage {
    const entry: InflightMessage = {
      packetId,
      message,
      qos,
      retain,
      subscriptionIds,
      released: false,
      group: undefined,
    };
    this.inflight.set(entry);
    return entry;
  }

  /** Adds or replaces a subscription; returns true if the filter is new [MQTT-3.8.4-3]. */
  subscribe(record: SubscriptionRecord): boolean {
    const subscriptions = this.subscriptions;
    const isNew = !subscriptions.has(record.filter);
    subscriptions.set(record.filter, record);
    return isNew;
  }

  /** Removes a subscription; returns true if it existed. */
  unsubscribe(filter: string): boolean {
    return this.#subscriptions?.delete(filter) ?? false;
  }

  /** Forgets everything delivered or queued (for a clean start on an existing session). */
  clearState(): void {
    this.#subscriptions = undefined;
    this.#inflight = undefined;
    this.#inboundQos2 = undefined;
    this.queued = 0;
    this.queuedBytes = 0;
    this.will = undefined;
  }

  /** The durable record of this session. */
  toRecord(owner: string | undefined): SessionRecord {
    return {
      clientId: this.clientId,
      protocolVersion: this.protocolVersion,
      expiryInterval: this.expiryInterval,
      subscriptions: this.#subscriptions === undefined ? [] : [...this.#subscriptions.values()],
      will: this.will,
      owner,
      disconnectedAt: this.disconnectedAt,
    };
  }
}

/** The effective delivery QoS: the lower of the message's and the subscription's [MQTT-3.8.4-8]. */
export function deliveryQos(messageQos: QoS, grantedQos: QoS): QoS {
  return messageQos < grantedQos ? messageQos : grantedQos;
}
