/**
 * A session as the node that holds it sees it, free of I/O: its subscriptions (with the share
 * prefix parsed once), expiry, will, the record revision it last wrote, and the QoS 2 packet ids it
 * has open as a publisher. The broker drives it; what outlives the node is the record in the
 * backbone ({@linkcode Session.toRecord}).
 *
 * @module
 */

import type { ProtocolVersion } from "../codec/packets.ts";
import type { SessionRecord, SubscriptionRecord, WillRecord } from "../domain/types.ts";
import { parseSharedFilter, type SharedFilter } from "../topic/mod.ts";

export { NEVER_EXPIRES } from "../domain/types.ts";

/** One client's session, on the node that holds it; `L` is the connection type attached to it. */
export class Session<L extends object = object> {
  readonly clientId: string;
  protocolVersion: ProtocolVersion;
  /** Seconds the session outlives its connection; NEVER_EXPIRES for never. */
  expiryInterval: number;
  will: WillRecord | undefined = undefined;
  /** Revision of the stored session record, for compare-and-set writes. */
  revision = 0;
  /** The live connection, undefined once it closed. */
  connection: L | undefined = undefined;
  /** Epoch ms the last connection closed (a session restored from an offline record). */
  disconnectedAt: number | undefined = undefined;
  /** Router bookkeeping: the id of the last route that reached this session. */
  routeMark = 0;
  // Created on first use: an idle connection's session then costs no Map (each empty Map or Set
  // takes ~180 bytes of heap), which matters at 100k connections.
  #subscriptions: Map<string, SubscriptionRecord> | undefined = undefined;
  #shares: Map<string, SharedFilter> | undefined = undefined;
  #direct: SubscriptionRecord[] | undefined = undefined;
  #inboundQos2: Set<number> | undefined = undefined;

  constructor(clientId: string, protocolVersion: ProtocolVersion, expiryInterval: number) {
    this.clientId = clientId;
    this.protocolVersion = protocolVersion;
    this.expiryInterval = expiryInterval;
  }

  /** Restores a session from its stored record. */
  static fromRecord<L extends object>(record: SessionRecord, revision: number): Session<L> {
    const session = new Session<L>(record.clientId, record.protocolVersion, record.expiryInterval);
    session.will = record.will;
    session.revision = revision;
    session.disconnectedAt = record.disconnectedAt;
    for (const subscription of record.subscriptions) session.subscribe(subscription);
    return session;
  }

  /** Subscriptions by the filter string as sent (including any `$share/{group}/` prefix). */
  get subscriptions(): ReadonlyMap<string, SubscriptionRecord> {
    return this.#subscriptions ??= new Map();
  }

  /** Number of subscriptions (without creating the map). */
  get subscriptionCount(): number {
    return this.#subscriptions?.size ?? 0;
  }

  /** The share group of a subscription's filter, undefined for a non-shared one. */
  shareOf(filter: string): SharedFilter | undefined {
    return this.#shares?.get(filter);
  }

  /** The non-shared subscriptions, for planning queued deliveries. */
  get directSubscriptions(): readonly SubscriptionRecord[] {
    if (this.#direct === undefined) {
      this.#direct = [];
      if (this.#subscriptions) {
        for (const record of this.#subscriptions.values()) {
          if (!this.#shares?.has(record.filter)) this.#direct.push(record);
        }
      }
    }
    return this.#direct;
  }

  /**
   * The filters the session's own queue captures: its non-shared subscriptions granted QoS 1 or
   * 2 (a QoS 0 subscription receives live messages only).
   */
  queueFilters(): string[] {
    const filters: string[] = [];
    for (const record of this.directSubscriptions) if (record.qos > 0) filters.push(record.filter);
    return filters;
  }

  /** Adds or replaces a subscription; returns true if the filter is new [MQTT-3.8.4-3]. */
  subscribe(record: SubscriptionRecord): boolean {
    const subscriptions = this.#subscriptions ??= new Map();
    const isNew = !subscriptions.has(record.filter);
    subscriptions.set(record.filter, record);
    const share = parseSharedFilter(record.filter);
    if (share !== undefined && !(share instanceof Error)) {
      (this.#shares ??= new Map()).set(record.filter, share);
    }
    this.#direct = undefined;
    return isNew;
  }

  /** Removes a subscription; returns the removed record. */
  unsubscribe(filter: string): SubscriptionRecord | undefined {
    const record = this.#subscriptions?.get(filter);
    if (record === undefined) return undefined;
    this.#subscriptions!.delete(filter);
    this.#shares?.delete(filter);
    this.#direct = undefined;
    return record;
  }

  /** Inbound QoS 2 packet ids answered with PUBREC whose PUBREL has not arrived [MQTT-4.3.3-8]. */
  get inboundQos2(): Set<number> {
    return this.#inboundQos2 ??= new Set();
  }

  /** The durable record of this session. */
  toRecord(owner: string | undefined, disconnectedAt: number | undefined): SessionRecord {
    return {
      clientId: this.clientId,
      protocolVersion: this.protocolVersion,
      expiryInterval: this.expiryInterval,
      subscriptions: this.#subscriptions === undefined ? [] : [...this.#subscriptions.values()],
      will: this.will,
      owner,
      disconnectedAt,
    };
  }
}
