/**
 * The in-process routing table: every subscription of every session this node holds, in a topic
 * trie, with shared groups. `route()` finds the sessions a message goes to and hands each one to the
 * delivery target with the effective QoS, RETAIN flag and subscription identifiers.
 *
 * @module
 */

import type { QoS } from "../codec/packets.ts";
import type { Message, SubscriptionRecord } from "../backbone/backbone.ts";
import { deliveryQos, type Session } from "../session/session.ts";
import { parseSharedFilter, SharedGroup, SubscriptionTrie } from "../topic/mod.ts";
import { Fifo } from "../util/fifo.ts";

/** A session's non-shared subscription, as stored in the trie. */
export interface Subscriber {
  readonly shared: false;
  readonly session: Session;
  record: SubscriptionRecord;
}

/** A shared subscription group `$share/{name}/{filter}` (or legacy `$queue/{filter}`). */
export interface SharedSubscription {
  readonly shared: true;
  readonly name: string;
  /** The filter without the share prefix. */
  readonly filter: string;
  readonly members: SharedGroup<Subscriber>;
  /** QoS 1/2 messages no member could take yet, delivered as members free up. */
  readonly pending: Fifo<Message>;
}

type RouteEntry = Subscriber | SharedSubscription;

/** What the router delivers to; implemented by the broker. */
export interface DeliveryTarget {
  /** Delivers one message to one session (sending, queueing or dropping per its state). */
  deliver(
    session: Session,
    message: Message,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    group: SharedSubscription | undefined,
  ): void;
  /** True when the session is connected and can send a message at this QoS right away. */
  canSendNow(session: Session, qos: QoS): boolean;
  /** True when the session has a live connection. */
  isOnline(session: Session): boolean;
  /** A shared group's pending queue reached its high-water mark during this route. */
  congested(group: SharedSubscription): void;
  /** A shared group's pending queue fell below its low-water mark, or the group ended. */
  drained(group: SharedSubscription): void;
}

/** Aggregate of several subscriptions of one session matching one message [MQTT-3.3.4-2]. */
interface Overlap {
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[] | undefined;
}

/** Limits applied to shared groups' pending queues. */
export interface RouterOptions {
  maxSharedPending: number;
}

/** The subscription table of this node. */
export class Router {
  #trie = new SubscriptionTrie<RouteEntry>();
  #target: DeliveryTarget;
  #options: RouterOptions;
  #matches: RouteEntry[] = [];
  #routing = 0;
  #seq = 0;
  #size = 0;
  #highWater: number;
  #lowWater: number;
  /** Deliveries made by the last `route()` call (for MQTT 5's "no matching subscribers"). */
  lastDeliveries = 0;
  /** Messages dropped because a shared group's pending queue was full. */
  sharedDropped = 0;

  constructor(target: DeliveryTarget, options: RouterOptions) {
    this.#target = target;
    this.#options = options;
    this.#highWater = Math.max(1, Math.floor(options.maxSharedPending / 2));
    this.#lowWater = Math.floor(this.#highWater / 2);
  }

  /** Number of (session, filter) subscriptions, shared members included. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds or updates a session's subscription; the record's filter may carry a share prefix.
   * Returns true when the subscription is new for the session.
   */
  add(session: Session, record: SubscriptionRecord): boolean {
    const shared = parseSharedFilter(record.filter);
    if (!shared) {
      const existing = this.#trie.get(record.filter, session) as Subscriber | undefined;
      if (existing) {
        existing.record = record;
        return false;
      }
      const subscriber: Subscriber = { shared: false, session, record };
      this.#trie.add(record.filter, session, subscriber);
      this.#size++;
      return true;
    }
    if (shared instanceof Error) throw shared;
    let group = this.#trie.get(shared.filter, shared.group) as SharedSubscription | undefined;
    if (!group) {
      group = {
        shared: true,
        name: shared.group,
        filter: shared.filter,
        members: new SharedGroup<Subscriber>(),
        pending: new Fifo<Message>(),
      };
      this.#trie.add(shared.filter, shared.group, group);
    }
    for (const member of group.members) {
      if (member.session === session) {
        member.record = record;
        return false;
      }
    }
    group.members.add({ shared: false, session, record });
    this.#size++;
    this.#pumpGroup(group);
    return true;
  }

  /** Removes a session's subscription by the filter string it subscribed with. */
  remove(session: Session, filter: string): boolean {
    const shared = parseSharedFilter(filter);
    if (!shared) {
      const removed = this.#trie.remove(filter, session);
      if (removed) this.#size--;
      return removed;
    }
    if (shared instanceof Error) return false;
    const group = this.#trie.get(shared.filter, shared.group) as SharedSubscription | undefined;
    if (!group) return false;
    for (const member of group.members) {
      if (member.session !== session) continue;
      group.members.remove(member);
      this.#size--;
      if (group.members.size === 0) {
        // The shared subscription ends with its last member; what it still held goes with it.
        this.sharedDropped += group.pending.length;
        this.#trie.remove(shared.filter, shared.group);
        this.#target.drained(group);
      }
      return true;
    }
    return false;
  }

  /** The shared group a share-prefixed filter belongs to, if it exists. */
  sharedGroup(filter: string): SharedSubscription | undefined {
    const shared = parseSharedFilter(filter);
    if (!shared || shared instanceof Error) return undefined;
    return this.#trie.get(shared.filter, shared.group) as SharedSubscription | undefined;
  }

  /**
   * Hands a QoS 1 message back to its shared group (a member left before acknowledging it), to be
   * sent to another member (MQTT 5 section 4.8.2 allows this as soon as the connection is lost).
   */
  requeueShared(group: SharedSubscription, message: Message): void {
    this.#enqueueShared(group, message);
    this.#pumpGroup(group);
  }

  /** Delivers pending shared messages to members that can take them now. */
  pumpSharedFor(session: Session): void {
    for (const filter of session.subscriptions.keys()) {
      const group = this.sharedGroup(filter);
      if (group && group.pending.length > 0) this.#pumpGroup(group);
    }
  }

  /** Routes a message to every matching subscription; returns the number of deliveries. */
  route(message: Message): number {
    // A delivery may close a connection whose will is published at once; such a nested route
    // must not clobber the reused match array.
    const matches = this.#routing === 0 ? this.#matches : [];
    matches.length = 0;
    this.#trie.match(message.topic, matches);
    let deliveries = 0;
    if (matches.length === 0) {
      this.lastDeliveries = 0;
      return 0;
    }
    this.#routing++;
    try {
      const seq = ++this.#seq;
      let overlapping = false;
      for (const entry of matches) {
        if (entry.shared) continue;
        if (entry.session.routeMark === seq) overlapping = true;
        else entry.session.routeMark = seq;
      }
      if (overlapping) deliveries = this.#routeOverlapping(message, matches);
      else {
        for (const entry of matches) {
          if (entry.shared) deliveries += this.#routeShared(entry, message);
          else if (this.#deliverTo(entry, message)) deliveries++;
        }
      }
    } finally {
      this.#routing--;
      if (matches === this.#matches) matches.length = 0;
    }
    this.lastDeliveries = deliveries;
    return deliveries;
  }

  #deliverTo(subscriber: Subscriber, message: Message): boolean {
    const { session, record } = subscriber;
    if (record.noLocal && message.origin === session.clientId) return false; // [MQTT-3.8.3-3]
    const qos = deliveryQos(message.qos, record.qos);
    // [MQTT-3.3.1-12] / [MQTT-3.3.1-13]; 3.1.1 always clears it on live delivery [MQTT-3.3.1-9].
    const retain = record.retainAsPublished && message.retain;
    const ids = record.subscriptionId === 0 ? undefined : [record.subscriptionId];
    this.#target.deliver(session, message, qos, retain, ids, undefined);
    return true;
  }

  #routeOverlapping(message: Message, matches: RouteEntry[]): number {
    let deliveries = 0;
    const merged = new Map<Session, Overlap>();
    for (const entry of matches) {
      if (entry.shared) {
        deliveries += this.#routeShared(entry, message);
        continue;
      }
      const { session, record } = entry;
      if (record.noLocal && message.origin === session.clientId) continue;
      const qos = deliveryQos(message.qos, record.qos);
      const retain = record.retainAsPublished && message.retain;
      const overlap = merged.get(session);
      if (!overlap) {
        merged.set(session, {
          qos,
          retain,
          subscriptionIds: record.subscriptionId === 0 ? undefined : [record.subscriptionId],
        });
        continue;
      }
      // One copy at the highest QoS carrying every identifier [MQTT-3.3.4-2], [MQTT-3.3.4-3].
      if (qos > overlap.qos) overlap.qos = qos;
      overlap.retain ||= retain;
      if (record.subscriptionId !== 0) {
        (overlap.subscriptionIds ??= []).push(record.subscriptionId);
      }
    }
    for (const [session, overlap] of merged) {
      this.#target.deliver(
        session,
        message,
        overlap.qos,
        overlap.retain,
        overlap.subscriptionIds,
        undefined,
      );
      deliveries++;
    }
    return deliveries;
  }

  /** One member per message, round robin, preferring members that can send at once. */
  #routeShared(group: SharedSubscription, message: Message): number {
    const target = this.#target;
    if (message.qos > 0 && group.pending.length > 0) {
      // Keep order: earlier messages are still waiting for a member.
      this.#enqueueShared(group, message);
      this.#pumpGroup(group);
      return 1;
    }
    const member = group.members.next((m) =>
      target.canSendNow(m.session, deliveryQos(message.qos, m.record.qos))
    );
    if (member && target.canSendNow(member.session, deliveryQos(message.qos, member.record.qos))) {
      this.#deliverShared(group, member, message);
      return 1;
    }
    if (message.qos === 0) {
      // QoS 0 goes to any connected member or nowhere.
      const online = group.members.next((m) => target.isOnline(m.session));
      if (online && target.isOnline(online.session)) {
        this.#deliverShared(group, online, message);
        return 1;
      }
      return 0;
    }
    this.#enqueueShared(group, message);
    return 1;
  }

  #deliverShared(group: SharedSubscription, member: Subscriber, message: Message): void {
    const { record } = member;
    const qos = deliveryQos(message.qos, record.qos);
    const ids = record.subscriptionId === 0 ? undefined : [record.subscriptionId];
    // Retained flag handling is the same as for non-shared subscriptions.
    const retain = record.retainAsPublished && message.retain;
    this.#target.deliver(member.session, message, qos, retain, ids, qos > 0 ? group : undefined);
  }

  #enqueueShared(group: SharedSubscription, message: Message): void {
    if (group.pending.length >= this.#options.maxSharedPending) {
      this.sharedDropped++;
      return;
    }
    group.pending.push(message);
    if (group.pending.length >= this.#highWater) this.#target.congested(group);
  }

  #pumpGroup(group: SharedSubscription): void {
    const target = this.#target;
    while (group.pending.length > 0) {
      const message = group.pending.peek()!;
      const member = group.members.next((m) =>
        target.canSendNow(m.session, deliveryQos(message.qos, m.record.qos))
      );
      if (
        !member || !target.canSendNow(member.session, deliveryQos(message.qos, member.record.qos))
      ) {
        return;
      }
      group.pending.shift();
      this.#deliverShared(group, member, message);
      if (group.pending.length < this.#lowWater) this.#target.drained(group);
    }
  }
}
