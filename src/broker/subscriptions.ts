/**
 * SUBSCRIBE and UNSUBSCRIBE from a client: each filter is checked (syntax, features, limits,
 * authorization), the grants are stored through the session registry (all or nothing), then
 * SUBACK, then the retained messages the new subscriptions ask for.
 *
 * @module
 */

import {
  MqttError,
  PacketType,
  protocolError,
  ReasonCode,
  validateSubscribe,
  validateUnsubscribe,
} from "../codec/mod.ts";
import type { QoS, SubscribePacket, UnsubscribePacket } from "../codec/packets.ts";
import type { SubscriptionRecord } from "../domain/types.ts";
import { parseSharedFilter, validateTopicFilter } from "../topic/mod.ts";
import type { ConnectionControl } from "./connection_control.ts";
import type { BrokerContext, BrokerSession } from "./context.ts";
import type { Grant } from "./session_registry.ts";

/** Handles a SUBSCRIBE: checks each filter, stores the grants, answers, sends retained messages. */
export function handleSubscribe(connection: ConnectionControl, packet: SubscribePacket): void {
  const context = connection.services.context;
  const options = context.options;
  const invalid = validateSubscribe(packet, connection.protocolVersion);
  if (invalid) throw invalid;
  const subscriptionId = packet.properties?.subscriptionIdentifiers?.[0] ?? 0;
  if (subscriptionId !== 0 && !options.subscriptionIdentifierAvailable) {
    // CONNACK said so (section 3.2.2.3.12): using it anyway is a protocol error, DISCONNECT 0xA1.
    throw new MqttError(
      ReasonCode.SubscriptionIdentifiersNotSupported,
      "Subscription identifiers are not supported",
    );
  }
  const session = connection.session!;
  const v5 = connection.protocolVersion === 5;
  /** The reason code of each filter, in request order [MQTT-3.9.3-1]; granted ones filled later. */
  const reasonCodes: (number | undefined)[] = [];
  const grants: Grant[] = [];
  const grantIndex: number[] = [];
  let failureReason: string | undefined;
  let count = session.subscriptionCount;
  for (const sub of packet.subscriptions) {
    const failure = (code: number, reason: string) => {
      reasonCodes.push(v5 ? code : 0x80);
      failureReason ??= `${reason}: "${sub.filter}"`;
    };
    const shared = parseSharedFilter(sub.filter);
    // A filter that breaks the format of section 4.7 makes the packet malformed: the connection
    // closes (3.1.1 section 4.8 requires it); one beyond a configured limit is refused in SUBACK.
    const invalid = shared instanceof MqttError
      ? shared
      : validateTopicFilter(shared ? shared.filter : sub.filter, context.topicLimits);
    if (invalid?.reasonCode === ReasonCode.MalformedPacket) throw invalid; // [MQTT-4.8.2-2]
    if (invalid || shared instanceof MqttError) {
      failure(ReasonCode.TopicFilterInvalid, "Invalid topic filter");
      continue;
    }
    const filter = shared ? shared.filter : sub.filter;
    if (shared && sub.noLocal) {
      throw protocolError("No Local on a shared subscription [MQTT-3.8.3-4]");
    }
    if (shared && !options.sharedSubscriptionAvailable) {
      // CONNACK told an MQTT 5 client so: using it is a protocol error, DISCONNECT 0x9E
      // (section 3.2.2.3.13); a 3.1.1 client was not told and gets a SUBACK failure.
      if (v5) {
        throw new MqttError(
          ReasonCode.SharedSubscriptionsNotSupported,
          "Shared subscriptions are not supported",
        );
      }
      failure(ReasonCode.SharedSubscriptionsNotSupported, "Shared subscriptions not supported");
      continue;
    }
    if (!options.wildcardSubscriptionAvailable && /[+#]/.test(filter)) {
      // As above, DISCONNECT 0xA2 for MQTT 5 (section 3.2.2.3.11).
      if (v5) {
        throw new MqttError(
          ReasonCode.WildcardSubscriptionsNotSupported,
          "Wildcard subscriptions are not supported",
        );
      }
      failure(ReasonCode.WildcardSubscriptionsNotSupported, "Wildcard subscriptions not supported");
      continue;
    }
    const exists = session.subscriptions.has(sub.filter) ||
      grants.some((g) => g.record.filter === sub.filter);
    if (!exists && count >= options.maxSubscriptionsPerClient) {
      failure(ReasonCode.QuotaExceeded, "Too many subscriptions");
      continue;
    }
    const authorize = context.hooks.authorizeSubscribe;
    if (authorize) {
      const ok = authorize(connection.info, {
        filter,
        shareGroup: shared ? shared.group : undefined,
        qos: sub.qos,
      });
      if (ok instanceof Promise) {
        throw new TypeError("Asynchronous authorizeSubscribe is not supported");
      }
      if (!ok) {
        failure(ReasonCode.NotAuthorized, "Not authorized to subscribe");
        continue;
      }
    }
    const qos = (sub.qos < options.maxQos ? sub.qos : options.maxQos) as QoS;
    if (!exists) count++;
    grantIndex.push(reasonCodes.length);
    reasonCodes.push(undefined);
    grants.push({
      record: {
        filter: sub.filter,
        qos,
        noLocal: sub.noLocal,
        retainAsPublished: sub.retainAsPublished,
        retainHandling: sub.retainHandling,
        subscriptionId,
      },
      share: shared,
    });
  }
  const answer = (isNew: boolean[] | undefined) => {
    if (isNew === undefined) failureReason ??= "The subscription could not be stored";
    grants.forEach((grant, i) => {
      // Granted QoS in request order [MQTT-3.9.3-1]; 0x80 when the store refused the change.
      reasonCodes[grantIndex[i]] = isNew === undefined
        ? ReasonCode.UnspecifiedError
        : grant.record.qos;
    });
    connection.send({
      type: PacketType.SUBACK,
      packetId: packet.packetId,
      reasonCodes: reasonCodes as number[],
      properties: connection.problemInformation(failureReason),
    });
  };
  if (grants.length === 0) {
    answer([]);
    return;
  }
  connection.runAsync(
    connection.services.sessions.subscribe(session, grants).then((isNew) => {
      if (connection.closed) return;
      answer(isNew);
      context.hooks.onSubscribe?.(connection.info, grants.map((g) => g.record.filter));
      grants.forEach((grant, i) => sendRetained(context, session, grant.record, isNew[i]));
    }, (error) => {
      if (connection.closed) return;
      context.logger.warn("subscription not stored", {
        clientId: connection.info.clientId,
        error,
      });
      answer(undefined);
    }),
  );
}

/**
 * Sends the retained messages a new subscription asks for [MQTT-3.3.1-9] [MQTT-3.8.4-4]; also
 * used when the admin API subscribes a connected session. Shared subscriptions get none
 * (section 3.3.1.3).
 */
export function sendRetained(
  context: BrokerContext,
  session: BrokerSession,
  record: SubscriptionRecord,
  isNew: boolean,
): void {
  if (record.retainHandling === 2 || (record.retainHandling === 1 && !isNew)) return;
  if (session.shareOf(record.filter)) return;
  const connection = session.connection;
  if (!connection) return;
  context.backbone.retained.match(record.filter).then((messages) => {
    if (connection.closed || session.connection !== connection) return;
    for (const message of messages) connection.outbound.retained(message, record);
  }, (error) => {
    context.logger.warn("retained messages not sent: the retained store is unavailable", {
      clientId: session.clientId,
      filter: record.filter,
      error,
    });
  });
}

/** Handles an UNSUBSCRIBE: removes the subscriptions and answers with one code per filter. */
export function handleUnsubscribe(connection: ConnectionControl, packet: UnsubscribePacket): void {
  const invalid = validateUnsubscribe(packet);
  if (invalid) throw invalid;
  const context = connection.services.context;
  for (const filter of packet.filters) {
    const shared = parseSharedFilter(filter);
    const invalid = shared instanceof MqttError
      ? shared
      : validateTopicFilter(shared ? shared.filter : filter, context.topicLimits);
    if (invalid?.reasonCode === ReasonCode.MalformedPacket) throw invalid;
  }
  const session = connection.session!;
  const answer = (codes: number[]) =>
    connection.send({
      type: PacketType.UNSUBACK,
      packetId: packet.packetId,
      reasonCodes: connection.protocolVersion === 5 ? codes : [],
      properties: undefined,
    });
  // A filter named twice existed only for its first mention.
  const seen = new Set<string>();
  const existed = packet.filters.map((filter) => {
    const had = session.subscriptions.has(filter) && !seen.has(filter);
    seen.add(filter);
    return had;
  });
  connection.runAsync(
    connection.services.sessions.unsubscribe(session, packet.filters).then((removed) => {
      if (connection.closed) return;
      // [MQTT-3.11.3-2]: 0x11 for a filter with no subscription.
      answer(existed.map((had) => had ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted));
      if (removed.length > 0) context.hooks.onUnsubscribe?.(connection.info, removed);
    }, (error) => {
      if (connection.closed) return;
      context.logger.warn("unsubscription not stored", {
        clientId: connection.info.clientId,
        error,
      });
      answer(existed.map(() => ReasonCode.UnspecifiedError));
    }),
  );
}
