/**
 * Live routing on this node: the subscriptions of the sessions attached here, in a topic trie.
 * `route()` sends a message to every matching session that receives it at QoS 0 now; a session
 * that receives it at QoS 1 or 2 gets it from its queue instead, where the backbone stored it
 * before the publisher was acknowledged. Share groups take live (QoS 0) messages from the bus,
 * one member per message.
 *
 * @module
 */

import type { Message, SubscriptionRecord } from "../domain/types.ts";
import { type SharedFilter, SharedGroup, SubscriptionTrie } from "../topic/mod.ts";
import { ScratchList } from "../util/scratch_list.ts";
import type { BrokerSession } from "./context.ts";
import { addToPlan, type DeliveryPlan, planLive, planShared, skipsOwn } from "./delivery_plan.ts";

/** A session's non-shared subscription, as stored in the trie. */
interface Subscriber {
  readonly shared: false;
  readonly session: BrokerSession;
  record: SubscriptionRecord;
}

/** The local members of a share group (`$share/{name}/{filter}` or legacy `$queue/{filter}`). */
interface LocalGroup {
  readonly shared: true;
  readonly name: string;
  readonly members: SharedGroup<Subscriber>;
}

type RouteEntry = Subscriber | LocalGroup;

/** The live subscription table of this node. */
export class Router {
  #trie = new SubscriptionTrie<RouteEntry>();
  #matches = new ScratchList<RouteEntry>();
  #routing = 0;
  #seq = 0;
  #size = 0;

  /** Number of (session, filter) subscriptions, shared members included. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds or updates a session's subscription (`share`: its parsed share prefix, if any). Returns
   * true when the subscription is new for the session.
   */
  add(
    session: BrokerSession,
    record: SubscriptionRecord,
    share: SharedFilter | undefined,
  ): boolean {
    if (!share) {
      const existing = this.#trie.get(record.filter, session) as Subscriber | undefined;
      if (existing) {
        existing.record = record;
        return false;
      }
      this.#trie.add(record.filter, session, { shared: false, session, record });
      this.#size++;
      return true;
    }
    let group = this.#trie.get(share.filter, share.group) as LocalGroup | undefined;
    if (!group) {
      group = { shared: true, name: share.group, members: new SharedGroup<Subscriber>() };
      this.#trie.add(share.filter, share.group, group);
    }
    for (const member of group.members) {
      if (member.session === session) {
        member.record = record;
        return false;
      }
    }
    group.members.add({ shared: false, session, record });
    this.#size++;
    return true;
  }

  /** Removes a session's subscription by the filter string it subscribed with. */
  remove(session: BrokerSession, filter: string, share: SharedFilter | undefined): boolean {
    if (!share) {
      const removed = this.#trie.remove(filter, session);
      if (removed) this.#size--;
      return removed;
    }
    const group = this.#trie.get(share.filter, share.group) as LocalGroup | undefined;
    if (!group) return false;
    for (const member of group.members) {
      if (member.session !== session) continue;
      group.members.remove(member);
      this.#size--;
      if (group.members.size === 0) this.#trie.remove(share.filter, share.group);
      return true;
    }
    return false;
  }

  /**
   * Sends a message live to every local session whose matching non-shared subscriptions give it
   * QoS 0; returns how many matched at all (live or through their queue).
   */
  route(message: Message): number {
    // A delivery may close a connection whose will is published at once; such a nested route
    // must not clobber the reused match list.
    const matches = this.#routing === 0 ? this.#matches : new ScratchList<RouteEntry>();
    this.#trie.match(message.topic, matches);
    const count = matches.length;
    if (count === 0) return 0;
    let matched = 0;
    this.#routing++;
    try {
      const seq = ++this.#seq;
      let overlapping = false;
      for (let i = 0; i < count; i++) {
        const entry = matches.at(i);
        if (entry.shared) continue;
        if (entry.session.routeMark === seq) overlapping = true;
        else entry.session.routeMark = seq;
      }
      if (overlapping) matched = this.#routeOverlapping(message, matches);
      else {
        for (let i = 0; i < count; i++) {
          const entry = matches.at(i);
          if (entry.shared) continue;
          const record = entry.record;
          const clientId = entry.session.clientId;
          if (skipsOwn(record, message, clientId)) continue;
          matched++;
          // Only a QoS 0 delivery goes out live: a QoS 1/2 one is planned when its queue hands
          // it out, so no plan is made for it here.
          if (message.qos === 0 || record.qos === 0) {
            entry.session.connection?.outbound.live(message, planLive(message, record, clientId));
          }
        }
      }
    } finally {
      this.#routing--;
      matches.clear();
    }
    return matched;
  }

  #routeOverlapping(message: Message, matches: ScratchList<RouteEntry>): number {
    const plans = new Map<BrokerSession, DeliveryPlan>();
    for (let i = 0; i < matches.length; i++) {
      const entry = matches.at(i);
      if (entry.shared) continue;
      const session = entry.session;
      const plan = addToPlan(plans.get(session), message, entry.record, session.clientId);
      if (plan !== undefined) plans.set(session, plan);
    }
    for (const [session, plan] of plans) {
      if (plan.qos === 0) session.connection?.outbound.live(message, plan);
    }
    return plans.size;
  }

  /**
   * A live message for share group `group` on `filter`: one local member takes it, round robin,
   * preferring a member whose socket keeps up. False when the group has no member here.
   */
  routeToGroup(message: Message, group: string, filter: string): boolean {
    const entry = this.#trie.get(filter, group) as LocalGroup | undefined;
    if (!entry) return false;
    const member = entry.members.next((m) => m.session.connection !== undefined);
    const connection = member?.session.connection;
    if (!member || !connection) return false;
    connection.outbound.live(message, planShared(message, member.record));
    return true;
  }
}
