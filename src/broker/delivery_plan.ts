/**
 * How one message goes to one session: the effective QoS, the RETAIN flag and the subscription
 * identifiers, from the session's subscriptions that match it. The one place this is computed:
 * live routing, queued delivery and retained messages all use it.
 *
 * @module
 */

import type { QoS } from "../codec/packets.ts";
import type { Message, SubscriptionRecord } from "../domain/types.ts";
import { topicMatchesFilter } from "../topic/mod.ts";
import { ScratchList } from "../util/scratch_list.ts";

/** The delivery of one message to one session. */
export interface DeliveryPlan {
  qos: QoS;
  retain: boolean;
  /** MQTT 5 Subscription Identifiers of every matching subscription [MQTT-3.3.4-3]. */
  subscriptionIds: number[] | undefined;
}

/** Whether a subscription skips this message: No Local and the publisher's own [MQTT-3.8.3-3]. */
export function skipsOwn(record: SubscriptionRecord, message: Message, clientId: string): boolean {
  return record.noLocal && message.origin === clientId;
}

/**
 * Adds one matching subscription to a plan (undefined: none yet) and returns it. Several
 * overlapping subscriptions of a session make one delivery at the highest QoS carrying every
 * identifier [MQTT-3.3.4-2] [MQTT-3.3.4-3]; No Local skips the publisher's own [MQTT-3.8.3-3].
 */
export function addToPlan(
  plan: DeliveryPlan | undefined,
  message: Message,
  record: SubscriptionRecord,
  clientId: string,
): DeliveryPlan | undefined {
  if (skipsOwn(record, message, clientId)) return plan;
  // The lower of the message's and the granted QoS [MQTT-3.8.4-8].
  const qos = (message.qos < record.qos ? message.qos : record.qos) as QoS;
  // [MQTT-3.3.1-12] [MQTT-3.3.1-13]; 3.1.1 clients never ask for Retain As Published.
  const retain = record.retainAsPublished && message.retain;
  const id = record.subscriptionId;
  if (plan === undefined) return { qos, retain, subscriptionIds: id === 0 ? undefined : [id] };
  if (qos > plan.qos) plan.qos = qos;
  plan.retain ||= retain;
  if (id !== 0) (plan.subscriptionIds ??= []).push(id);
  return plan;
}

/** Plans kept for a single matching subscription: 3 QoS x 2 RETAIN. */
const SINGLE_PLANS = 6;

/**
 * Plans a session's queued deliveries from its non-shared subscriptions as they are when each
 * goes out (not as they were when it was queued). A queue hands out runs of messages on one
 * topic, so it remembers which subscriptions matched the last topic, for as long as the session's
 * list of subscriptions is the same array (a session makes a new one on every change). With one
 * matching subscription, the usual case, it also keeps the plans made for it, one per QoS and
 * RETAIN of the message: the plans it returns are shared, and nobody changes them.
 * Shared subscriptions are planned by their group (see `planShared`).
 */
export class QueuedPlanner {
  #subscriptions: readonly SubscriptionRecord[] | undefined = undefined;
  #topic = "";
  /** The subscriptions matching `#topic`; kept, not made anew, when the topic changes. */
  #matching = new ScratchList<SubscriptionRecord>();
  /** For a single matching subscription: its plan by the message's `qos * 2 + retain`. */
  #plans: (DeliveryPlan | undefined)[] = new Array(SINGLE_PLANS).fill(undefined);

  /**
   * The plan for a message; undefined when no subscription matches it any more.
   *
   * @param message The message handed out.
   * @param directSubscriptions The session's non-shared subscriptions now.
   * @param clientId The session's client id (for No Local).
   */
  plan(
    message: Message,
    directSubscriptions: readonly SubscriptionRecord[],
    clientId: string,
  ): DeliveryPlan | undefined {
    const topic = message.topic;
    if (directSubscriptions !== this.#subscriptions || topic !== this.#topic) {
      this.#subscriptions = directSubscriptions;
      this.#topic = topic;
      const matching = this.#matching;
      matching.clear();
      for (const record of directSubscriptions) {
        if (topicMatchesFilter(topic, record.filter)) matching.push(record);
      }
      const plans = this.#plans;
      for (let i = 0; i < SINGLE_PLANS; i++) plans[i] = undefined;
    }
    const matching = this.#matching;
    if (matching.length === 1) {
      const record = matching.at(0);
      if (skipsOwn(record, message, clientId)) return undefined;
      return this.#plans[message.qos * 2 + (message.retain ? 1 : 0)] ??= addToPlan(
        undefined,
        message,
        record,
        clientId,
      );
    }
    let plan: DeliveryPlan | undefined;
    for (let i = 0; i < matching.length; i++) {
      plan = addToPlan(plan, message, matching.at(i), clientId);
    }
    return plan;
  }
}

/** A live QoS 0 delivery through one subscription without an identifier, by RETAIN: shared. */
const LIVE_PLANS: readonly DeliveryPlan[] = [
  Object.freeze({ qos: 0, retain: false, subscriptionIds: undefined }),
  Object.freeze({ qos: 0, retain: true, subscriptionIds: undefined }),
];

/**
 * The plan for a QoS 0 delivery through one subscription that does not skip it (see
 * {@linkcode skipsOwn}): without a subscription identifier, a shared plan nobody changes (no
 * object per delivered message).
 */
export function planLive(
  message: Message,
  record: SubscriptionRecord,
  clientId: string,
): DeliveryPlan {
  if (record.subscriptionId !== 0) return addToPlan(undefined, message, record, clientId)!;
  return LIVE_PLANS[record.retainAsPublished && message.retain ? 1 : 0];
}

/** The plan for a message a share group hands to one member (its own subscription record). */
export function planShared(message: Message, record: SubscriptionRecord): DeliveryPlan {
  return addToPlan(undefined, message, { ...record, noLocal: false }, "")!;
}

/** The plan for a retained message sent because of a new subscription: RETAIN set [MQTT-3.3.1-8]. */
export function planRetained(message: Message, record: SubscriptionRecord): DeliveryPlan {
  const plan = addToPlan(undefined, message, { ...record, noLocal: false }, "")!;
  plan.retain = true;
  return plan;
}
