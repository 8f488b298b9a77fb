/**
 * Semantic checks of decoded packets received by the server, kept apart from decoding so that the
 * broker decides how to answer: each check returns an {@linkcode MqttError} carrying the reason
 * code to use (CONNACK for CONNECT, DISCONNECT otherwise), or `undefined` when the packet passes.
 *
 * Not here: topic name and filter syntax, wildcards and shared-subscription names (`src/topic`),
 * and rules that need connection state (topic alias range, Receive Maximum, a non-zero Session
 * Expiry Interval in DISCONNECT after 0 in CONNECT, authentication method matching), which the
 * broker checks.
 *
 * @module
 */

import { PACKET_TYPE_NAMES } from "./_names.ts";
import { MqttError, protocolError } from "./errors.ts";
import {
  type AuthPacket,
  type ConnectPacket,
  type DisconnectPacket,
  type Packet,
  PacketType,
  type Properties,
  type ProtocolVersion,
  type PubAckLikePacket,
  type PublishPacket,
  type SubscribePacket,
  type UnsubscribePacket,
} from "./packets.ts";
import { ReasonCode } from "./reason_codes.ts";

const R = ReasonCode;

/** PUBACK and PUBREC reason codes [MQTT-3.4.2-1] [MQTT-3.5.2-1]. */
const PUBACK_REASON_CODES: ReadonlySet<number> = new Set([
  R.Success,
  R.NoMatchingSubscribers,
  R.UnspecifiedError,
  R.ImplementationSpecificError,
  R.NotAuthorized,
  R.TopicNameInvalid,
  R.PacketIdentifierInUse,
  R.QuotaExceeded,
  R.PayloadFormatInvalid,
]);

/** PUBREL and PUBCOMP reason codes [MQTT-3.6.2-1] [MQTT-3.7.2-1]. */
const PUBREL_REASON_CODES: ReadonlySet<number> = new Set([
  R.Success,
  R.PacketIdentifierNotFound,
]);

/** DISCONNECT reason codes (section 3.14.2.1, both directions) [MQTT-3.14.2-1]. */
const DISCONNECT_REASON_CODES: ReadonlySet<number> = new Set([
  R.NormalDisconnection,
  R.DisconnectWithWillMessage,
  R.UnspecifiedError,
  R.MalformedPacket,
  R.ProtocolError,
  R.ImplementationSpecificError,
  R.NotAuthorized,
  R.ServerBusy,
  R.ServerShuttingDown,
  R.KeepAliveTimeout,
  R.SessionTakenOver,
  R.TopicFilterInvalid,
  R.TopicNameInvalid,
  R.ReceiveMaximumExceeded,
  R.TopicAliasInvalid,
  R.PacketTooLarge,
  R.MessageRateTooHigh,
  R.QuotaExceeded,
  R.AdministrativeAction,
  R.PayloadFormatInvalid,
  R.RetainNotSupported,
  R.QoSNotSupported,
  R.UseAnotherServer,
  R.ServerMoved,
  R.SharedSubscriptionsNotSupported,
  R.ConnectionRateExceeded,
  R.MaximumConnectTime,
  R.SubscriptionIdentifiersNotSupported,
  R.WildcardSubscriptionsNotSupported,
]);

/** AUTH reason codes [MQTT-3.15.2-1]. */
const AUTH_REASON_CODES: ReadonlySet<number> = new Set([
  R.Success,
  R.ContinueAuthentication,
  R.ReAuthenticate,
]);

/**
 * Checks a CONNECT. The reason codes are MQTT 5 ones; answer a 3.1.1 client with
 * `connackReturnCodeFor311(error.reasonCode)`.
 *
 * @example Refuse a 3.1.1 client without a client identifier that wants a persistent session
 * ```ts
 * import { validateConnect } from "./validate.ts";
 *
 * const error = validateConnect({
 *   type: 1, protocolName: "MQTT", protocolVersion: 4, cleanStart: false, keepAlive: 60,
 *   clientId: "", username: undefined, password: undefined, will: undefined,
 *   properties: undefined,
 * });
 * console.log(error?.reasonCode); // 133 (0x85 Client Identifier not valid)
 * ```
 *
 * @param packet A decoded CONNECT.
 * @returns The error to answer with, or `undefined`.
 */
export function validateConnect(packet: ConnectPacket): MqttError | undefined {
  if (packet.clientId === "") {
    // MQTT 3.1 requires 1 to 23 characters (3.1 section 3.1, "Client Identifier").
    if (packet.protocolVersion === 3) {
      return new MqttError(
        R.ClientIdentifierNotValid,
        "Invalid CONNECT: MQTT 3.1 requires a client identifier",
      );
    }
    // [MQTT-3.1.3-8] (3.1.1): an empty client identifier needs CleanSession 1 (return code 0x02).
    if (packet.protocolVersion === 4 && !packet.cleanStart) {
      return new MqttError(
        R.ClientIdentifierNotValid,
        "Invalid CONNECT: an empty client identifier requires clean session",
      );
    }
  }
  const props = packet.properties;
  if (props !== undefined) {
    // Section 3.1.2.11.3: "It is a Protocol Error ... for it to have the value 0."
    if (props.receiveMaximum === 0) {
      return protocolError("Invalid CONNECT: receive maximum is 0");
    }
    // Section 3.1.2.11.4: "It is a Protocol Error ... for the value to be set to zero."
    if (props.maximumPacketSize === 0) {
      return protocolError("Invalid CONNECT: maximum packet size is 0");
    }
    // Section 3.1.2.11.6: "It is Protocol Error to ... have a value other than 0 or 1."
    if (!isFlag(props.requestResponseInformation)) {
      return protocolError(
        `Invalid CONNECT: request response information is ${props.requestResponseInformation}`,
      );
    }
    // Section 3.1.2.11.7: "It is a Protocol Error to ... have a value other than 0 or 1."
    if (!isFlag(props.requestProblemInformation)) {
      return protocolError(
        `Invalid CONNECT: request problem information is ${props.requestProblemInformation}`,
      );
    }
    // Section 3.1.2.11.10: "It is a Protocol Error to include Authentication Data if there is no
    // Authentication Method."
    if (props.authenticationData !== undefined && props.authenticationMethod === undefined) {
      return protocolError("Invalid CONNECT: authentication data without a method");
    }
  }
  const willProps = packet.will?.properties;
  // Section 3.1.3.2.3: the Payload Format Indicator is 0 or 1.
  if (willProps !== undefined && !isFlag(willProps.payloadFormatIndicator)) {
    return protocolError(
      `Invalid CONNECT: will payload format indicator is ${willProps.payloadFormatIndicator}`,
    );
  }
  return undefined;
}

/**
 * Checks a PUBLISH received from a client.
 *
 * @param packet A decoded PUBLISH.
 * @param version The protocol version of the connection.
 * @returns The error to answer with, or `undefined`.
 */
export function validatePublish(
  packet: PublishPacket,
  version: ProtocolVersion,
): MqttError | undefined {
  // [MQTT-3.3.1-2] (3.1.1 as well): the DUP flag is 0 for QoS 0.
  if (packet.dup && packet.qos === 0) {
    return protocolError("Invalid PUBLISH: DUP is set on a QoS 0 message");
  }
  // [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-1]): a QoS 1 or 2 PUBLISH has a non-zero identifier.
  if (packet.qos !== 0 && packet.packetId === 0) {
    return protocolError("Invalid PUBLISH: packet identifier is 0");
  }
  if (version !== 5) return undefined;
  const props: Properties | undefined = packet.properties;
  if (props?.topicAlias === 0) {
    // [MQTT-3.3.2-8]; section 3.3.2.3.4 names 0x94 Topic Alias invalid.
    return new MqttError(R.TopicAliasInvalid, "Invalid PUBLISH: topic alias is 0");
  }
  if (packet.topic === "" && props?.topicAlias === undefined) {
    // Section 3.3.2.1: "It is a Protocol Error if the Topic Name is zero length and there is no
    // Topic Alias."
    return protocolError("Invalid PUBLISH: empty topic name without a topic alias");
  }
  if (props === undefined) return undefined;
  // [MQTT-3.3.4-6]: a client never sends a Subscription Identifier.
  if (props.subscriptionIdentifiers !== undefined) {
    return protocolError("Invalid PUBLISH: a client sent a subscription identifier");
  }
  // Section 3.3.2.3.2: the Payload Format Indicator is 0 or 1.
  if (!isFlag(props.payloadFormatIndicator)) {
    return protocolError(
      `Invalid PUBLISH: payload format indicator is ${props.payloadFormatIndicator}`,
    );
  }
  return undefined;
}

/**
 * Checks a PUBACK, PUBREC, PUBREL or PUBCOMP received from a client.
 *
 * @param packet A decoded acknowledgement.
 * @param version The protocol version of the connection.
 * @returns The error to answer with, or `undefined`.
 */
export function validatePubAckLike(
  packet: PubAckLikePacket<
    | typeof PacketType.PUBACK
    | typeof PacketType.PUBREC
    | typeof PacketType.PUBREL
    | typeof PacketType.PUBCOMP
  >,
  version: ProtocolVersion,
): MqttError | undefined {
  // Identifiers are non-zero (section 2.2.1), so 0 matches no PUBLISH [MQTT-2.2.1-5] (3.1.1:
  // [MQTT-2.3.1-6]).
  if (packet.packetId === 0) {
    return protocolError(`Invalid ${PACKET_TYPE_NAMES[packet.type]}: packet identifier is 0`);
  }
  if (version !== 5) return undefined;
  // [MQTT-3.4.2-1] [MQTT-3.5.2-1] [MQTT-3.6.2-1] [MQTT-3.7.2-1]: only the listed reason codes.
  const allowed = packet.type === PacketType.PUBACK || packet.type === PacketType.PUBREC
    ? PUBACK_REASON_CODES
    : PUBREL_REASON_CODES;
  if (!allowed.has(packet.reasonCode)) {
    return protocolError(
      `Invalid ${PACKET_TYPE_NAMES[packet.type]}: reason code 0x${
        hex(packet.reasonCode)
      } is not allowed`,
    );
  }
  return undefined;
}

/**
 * Checks a SUBSCRIBE. Filter syntax is checked by `src/topic`.
 *
 * @param packet A decoded SUBSCRIBE.
 * @param version The protocol version of the connection.
 * @returns The error to answer with, or `undefined`.
 */
export function validateSubscribe(
  packet: SubscribePacket,
  version: ProtocolVersion,
): MqttError | undefined {
  // [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-1]).
  if (packet.packetId === 0) return protocolError("Invalid SUBSCRIBE: packet identifier is 0");
  if (version !== 5) return undefined;
  // Section 3.8.2.1.2: "It is a Protocol Error if the Subscription Identifier has a value of 0."
  if (packet.properties?.subscriptionIdentifiers?.[0] === 0) {
    return protocolError("Invalid SUBSCRIBE: subscription identifier is 0");
  }
  for (const subscription of packet.subscriptions) {
    // [MQTT-3.8.3-4]: No Local on a shared subscription.
    if (subscription.noLocal && subscription.filter.startsWith("$share/")) {
      return protocolError(
        `Invalid SUBSCRIBE: no local is set on shared subscription "${subscription.filter}"`,
      );
    }
  }
  return undefined;
}

/**
 * Checks an UNSUBSCRIBE. Filter syntax is checked by `src/topic`.
 *
 * @param packet A decoded UNSUBSCRIBE.
 * @returns The error to answer with, or `undefined`.
 */
export function validateUnsubscribe(packet: UnsubscribePacket): MqttError | undefined {
  // [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-1]).
  if (packet.packetId === 0) return protocolError("Invalid UNSUBSCRIBE: packet identifier is 0");
  return undefined;
}

/**
 * Checks a DISCONNECT received from a client. Whether a Session Expiry Interval may be set here
 * depends on the CONNECT (section 3.14.2.2.2) and is the broker's check.
 *
 * @param packet A decoded DISCONNECT.
 * @returns The error to answer with, or `undefined`.
 */
export function validateDisconnect(packet: DisconnectPacket): MqttError | undefined {
  // [MQTT-3.14.2-1]: only the DISCONNECT reason codes (always 0 under 3.1.1).
  if (!DISCONNECT_REASON_CODES.has(packet.reasonCode)) {
    return protocolError(
      `Invalid DISCONNECT: reason code 0x${hex(packet.reasonCode)} is not allowed`,
    );
  }
  return undefined;
}

/**
 * Checks an AUTH. That its method matches the CONNECT's is the broker's check.
 *
 * @param packet A decoded AUTH.
 * @returns The error to answer with, or `undefined`.
 */
export function validateAuth(packet: AuthPacket): MqttError | undefined {
  // [MQTT-3.15.2-1]: only Success, Continue authentication and Re-authenticate.
  if (!AUTH_REASON_CODES.has(packet.reasonCode)) {
    return protocolError(`Invalid AUTH: reason code 0x${hex(packet.reasonCode)} is not allowed`);
  }
  // [MQTT-4.12.0-5]: every AUTH carries the Authentication Method of the CONNECT.
  if (packet.properties?.authenticationMethod === undefined) {
    return protocolError("Invalid AUTH: no authentication method");
  }
  return undefined;
}

/**
 * Checks any packet received from a client, dispatching on its type. Packets only a server sends
 * (CONNACK, SUBACK, UNSUBACK, PINGRESP) and PINGREQ have nothing to check here; receiving a
 * server-only packet is a protocol error the broker's state machine reports.
 *
 * @param packet A decoded packet.
 * @param version The protocol version of the connection.
 * @returns The error to answer with, or `undefined`.
 */
export function validatePacket(packet: Packet, version: ProtocolVersion): MqttError | undefined {
  switch (packet.type) {
    case PacketType.CONNECT:
      return validateConnect(packet);
    case PacketType.PUBLISH:
      return validatePublish(packet, version);
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      return validatePubAckLike(packet, version);
    case PacketType.SUBSCRIBE:
      return validateSubscribe(packet, version);
    case PacketType.UNSUBSCRIBE:
      return validateUnsubscribe(packet);
    case PacketType.DISCONNECT:
      return validateDisconnect(packet);
    case PacketType.AUTH:
      return validateAuth(packet);
    default:
      return undefined;
  }
}

/** True for an absent byte flag or one that is 0 or 1. */
function isFlag(value: number | undefined): boolean {
  return value === undefined || value === 0 || value === 1;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
