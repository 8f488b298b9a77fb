/**
 * Per-type packet decoders: the bytes after the fixed header (the body) become one packet object.
 *
 * Decoding enforces the packet grammar and throws {@linkcode MqttError} with the reason code the
 * broker answers with: Malformed Packet (0x81) for bytes that break the grammar (reserved flags,
 * truncation, trailing bytes, bad UTF-8, QoS 3 in PUBLISH or in a 3.1.1 SUBSCRIBE), Protocol Error
 * (0x82) where the specification names that code for a grammar-level rule (an empty SUBSCRIBE or
 * UNSUBSCRIBE, MQTT 5 subscription options with QoS 3 or Retain Handling 3, a duplicate property),
 * and Unsupported Protocol Version (0x84) for a CONNECT with a known protocol name but an unknown
 * level. Rules about values (packet identifier 0, DUP on QoS 0, property values) are left to
 * `validate.ts` so that the broker chooses how to answer.
 *
 * Every decoder takes the fixed-header flags, the body and, where the grammar differs, the protocol
 * version. The optional `start`/`end` select the body inside a larger buffer so that the streaming
 * decoder needs no intermediate view. Payloads, passwords, will payloads and binary properties are
 * zero-copy views into that buffer.
 *
 * @module
 */

import { PACKET_TYPE_NAMES } from "./_names.ts";
import { malformed, MqttError, protocolError } from "./errors.ts";
import {
  type AuthPacket,
  type ConnackPacket,
  type ConnectPacket,
  type DisconnectPacket,
  type Packet,
  PacketType,
  type PingreqPacket,
  type PingrespPacket,
  type Properties,
  type ProtocolVersion,
  type PubAckLikePacket,
  type PubackPacket,
  type PubcompPacket,
  type PublishPacket,
  type PubrecPacket,
  type PubrelPacket,
  type QoS,
  type SubackPacket,
  type SubscribePacket,
  type Subscription,
  type UnsubackPacket,
  type UnsubscribePacket,
  type Will,
} from "./packets.ts";
import { decodeProperties, type PropertyContext, WILL_PROPERTIES } from "./properties.ts";
import { ReasonCode } from "./reason_codes.ts";
import { decodeUtf8 } from "./utf8.ts";
import { decodeVarByteInt, varByteIntLength } from "./vbi.ts";

/**
 * The fixed-header flags each packet type must carry [MQTT-2.1.3-1] (3.1.1: [MQTT-2.2.2-1]);
 * -1 where the flags carry data (PUBLISH) or the type is reserved.
 */
const REQUIRED_FLAGS: readonly number[] = [-1, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];

/**
 * Checks a fixed-header byte before any of the body is read, so that the streaming decoder can
 * refuse a bad packet before buffering it. The per-type decoders make the same checks.
 *
 * @param header The first byte of the packet.
 * @param version The protocol version in force.
 * @throws {MqttError} Malformed Packet (0x81) for packet type 0, AUTH before MQTT 5, PUBLISH with
 * QoS 3, or flags other than the required ones.
 */
export function checkFixedHeader(header: number, version: ProtocolVersion): void {
  const type = header >> 4;
  const flags = header & 0x0f;
  if (type === 0) throw malformed("Invalid fixed header: packet type 0 is reserved");
  if (type === PacketType.AUTH) checkAuthVersion(version);
  if (type === PacketType.PUBLISH) {
    if ((flags & 0x06) === 0x06) throw publishQos3();
  } else {
    checkFlags(type, flags);
  }
}

/**
 * Decodes a CONNECT body. The packet must end where its payload ends [MQTT-3.1.4-1]; see
 * {@linkcode decodeConnectWithTrailingData} for clients that append data.
 *
 * The CONNECT's own protocol level decides the grammar, so there is no version parameter.
 *
 * @param flags The fixed-header flags (low four bits of the first byte).
 * @param body The bytes after the fixed header.
 * @returns The packet.
 * @throws {MqttError} Unsupported Protocol Version (0x84) for "MQTT" with a level other than 4 or
 * 5, or "MQIsdp" with a level other than 3 [MQTT-3.1.2-2]; Malformed Packet (0x81) for any other
 * protocol name [MQTT-3.1.2-1] and for grammar errors.
 */
export function decodeConnect(flags: number, body: Uint8Array): ConnectPacket {
  const reader = new Reader(body, 0, body.length, PacketType.CONNECT);
  const packet = readConnect(flags, reader);
  reader.expectEnd();
  return packet;
}

/** A CONNECT and the bytes that followed its payload. */
export interface ConnectWithTrailingData {
  /** The decoded CONNECT. */
  packet: ConnectPacket;
  /** The bytes after the last payload field (a view, empty when there are none). */
  trailingData: Uint8Array;
}

/**
 * Decodes a CONNECT body that may carry bytes after its last payload field. Some legacy agents
 * append a JSON document with host facts there; the specification makes such a packet malformed
 * [MQTT-3.1.4-1], so use this only when that compatibility is switched on.
 *
 * @param flags The fixed-header flags.
 * @param body The bytes after the fixed header.
 * @returns The packet and the trailing bytes.
 * @throws {MqttError} As {@linkcode decodeConnect}, except for trailing bytes.
 */
export function decodeConnectWithTrailingData(
  flags: number,
  body: Uint8Array,
): ConnectWithTrailingData {
  const reader = new Reader(body, 0, body.length, PacketType.CONNECT);
  const packet = readConnect(flags, reader);
  return { packet, trailingData: body.subarray(reader.offset) };
}

/**
 * Decodes a CONNACK body.
 *
 * @param flags The fixed-header flags.
 * @param body The buffer holding the body.
 * @param version The protocol version of the connection.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for grammar errors, including reserved acknowledge
 * flags [MQTT-3.2.2-1].
 */
export function decodeConnack(
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start = 0,
  end: number = body.length,
): ConnackPacket {
  checkFlags(PacketType.CONNACK, flags);
  const reader = new Reader(body, start, end, PacketType.CONNACK);
  const acknowledgeFlags = reader.u8();
  // Bits 7-1 of the Connect Acknowledge Flags are reserved [MQTT-3.2.2-1].
  if ((acknowledgeFlags & 0xfe) !== 0) {
    throw malformed("Invalid CONNACK: reserved acknowledge flags are set");
  }
  const reasonCode = reader.u8();
  const properties = version === 5 ? reader.properties(PacketType.CONNACK) : undefined;
  reader.expectEnd();
  return {
    type: PacketType.CONNACK,
    sessionPresent: (acknowledgeFlags & 0x01) !== 0,
    reasonCode,
    properties,
  };
}

/**
 * Decodes a PUBLISH body. The payload is a view into `body`.
 *
 * @param flags The fixed-header flags: DUP, QoS and RETAIN.
 * @param body The buffer holding the body.
 * @param version The protocol version of the connection.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for QoS 3 [MQTT-3.3.1-4], a truncated variable
 * header or an invalid topic string [MQTT-3.3.2-1].
 */
export function decodePublish(
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start = 0,
  end: number = body.length,
): PublishPacket {
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) throw publishQos3();
  let pos = start + 2;
  if (pos > end) throw truncated(PacketType.PUBLISH);
  const topicEnd = pos + ((body[start] << 8) | body[start + 1]);
  if (topicEnd > end) throw truncated(PacketType.PUBLISH);
  const topic = decodeUtf8(body, pos, topicEnd);
  pos = topicEnd;
  let packetId = 0;
  if (qos !== 0) {
    // A PUBLISH carries a Packet Identifier only when QoS > 0 [MQTT-2.2.1-2] (3.1.1: [MQTT-2.3.1-5]).
    if (pos + 2 > end) throw truncated(PacketType.PUBLISH);
    packetId = (body[pos] << 8) | body[pos + 1];
    pos += 2;
  }
  let properties: Properties | undefined = undefined;
  if (version === 5) {
    const length = decodeVarByteInt(body, pos, end);
    if (length < 0) throw truncated(PacketType.PUBLISH);
    pos += varByteIntLength(length);
    if (pos + length > end) throw truncated(PacketType.PUBLISH);
    if (length !== 0) {
      properties = decodeProperties(body, pos, pos + length, PacketType.PUBLISH);
      pos += length;
    }
  }
  return {
    type: PacketType.PUBLISH,
    dup: (flags & 0x08) !== 0,
    qos: qos as QoS,
    retain: (flags & 0x01) !== 0,
    topic,
    packetId,
    properties,
    payload: body.subarray(pos, end),
  };
}

/**
 * Decodes a PUBACK body. Under MQTT 5 a remaining length of 2 means Success without properties,
 * and one below 4 means no properties (section 3.4.2.1).
 *
 * @param flags The fixed-header flags.
 * @param body The buffer holding the body.
 * @param version The protocol version of the connection.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for grammar errors.
 */
export function decodePuback(
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start = 0,
  end: number = body.length,
): PubackPacket {
  return decodeAckLike(PacketType.PUBACK, flags, body, version, start, end);
}

/**
 * Decodes a PUBREC body, with the same short forms as PUBACK (section 3.5.2.1).
 *
 * @param flags The fixed-header flags.
 * @param body The buffer holding the body.
 * @param version The protocol version of the connection.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for grammar errors.
 */
export function decodePubrec(
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start = 0,
  end: number = body.length,
): PubrecPacket {
  return decodeAckLike(PacketType.PUBREC, flags, body, version, start, end);
}

/**
 * Decodes a PUBREL body, with the same short forms as PUBACK (section 3.6.2.1).
 *
 * @param flags The fixed-header flags, which must be 0b0010 [MQTT-3.6.1-1].
 * @param body The buffer holding the body.
 * @param version The protocol version of the connection.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for grammar errors.
 */
export function decodePubrel(
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start = 0,
  end: number = body.length,
): PubrelPacket {
  return decodeAckLike(PacketType.PUBREL, flags, body, version, start, end);
}

/**
 * Decodes a PUBCOMP body, with the same short forms as PUBACK (section 3.7.2.1).
 *
 * @param flags The fixed-header flags.
 * @param body The buffer holding the body.
 * @param version The protocol version of the connection.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for grammar errors.
 */
export function decodePubcomp(
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start = 0,
  end: number = body.length,
): PubcompPacket {
  return decodeAckLike(PacketType.PUBCOMP, flags, body, version, start, end);
}

/**
 * Decodes a SUBSCRIBE body.
 *
 * @param flags The fixed-header flags, which must be 0b0010 [MQTT-3.8.1-1].
 * @param body The buffer holding the body.
 * @param version The protocol version of the connection.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for grammar errors and reserved option bits
 * [MQTT-3.8.3-5] (3.1.1: [MQTT-3-8.3-4], which also covers QoS 3); Protocol Error (0x82) for no
 * topic filter [MQTT-3.8.3-2] (3.1.1: [MQTT-3.8.3-3]) and, under MQTT 5, for Maximum QoS 3 or
 * Retain Handling 3 (section 3.8.3.1).
 */
export function decodeSubscribe(
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start = 0,
  end: number = body.length,
): SubscribePacket {
  checkFlags(PacketType.SUBSCRIBE, flags);
  const reader = new Reader(body, start, end, PacketType.SUBSCRIBE);
  const packetId = reader.u16();
  const properties = version === 5 ? reader.properties(PacketType.SUBSCRIBE) : undefined;
  const subscriptions: Subscription[] = [];
  while (reader.remaining > 0) {
    const filter = reader.utf8();
    const options = reader.u8();
    subscriptions.push(
      version === 5 ? subscriptionV5(filter, options) : subscriptionV311(filter, options),
    );
  }
  if (subscriptions.length === 0) {
    throw protocolError("Invalid SUBSCRIBE: no topic filter");
  }
  return { type: PacketType.SUBSCRIBE, packetId, subscriptions, properties };
}

/**
 * Decodes a SUBACK body.
 *
 * @param flags The fixed-header flags.
 * @param body The buffer holding the body.
 * @param version The protocol version of the connection.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for grammar errors.
 */
export function decodeSuback(
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start = 0,
  end: number = body.length,
): SubackPacket {
  checkFlags(PacketType.SUBACK, flags);
  const reader = new Reader(body, start, end, PacketType.SUBACK);
  const packetId = reader.u16();
  const properties = version === 5 ? reader.properties(PacketType.SUBACK) : undefined;
  const reasonCodes = reader.restAsNumbers();
  return { type: PacketType.SUBACK, packetId, reasonCodes, properties };
}

/**
 * Decodes an UNSUBSCRIBE body.
 *
 * @param flags The fixed-header flags, which must be 0b0010 [MQTT-3.10.1-1].
 * @param body The buffer holding the body.
 * @param version The protocol version of the connection.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for grammar errors; Protocol Error (0x82) for no
 * topic filter [MQTT-3.10.3-2].
 */
export function decodeUnsubscribe(
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start = 0,
  end: number = body.length,
): UnsubscribePacket {
  checkFlags(PacketType.UNSUBSCRIBE, flags);
  const reader = new Reader(body, start, end, PacketType.UNSUBSCRIBE);
  const packetId = reader.u16();
  const properties = version === 5 ? reader.properties(PacketType.UNSUBSCRIBE) : undefined;
  const filters: string[] = [];
  while (reader.remaining > 0) filters.push(reader.utf8());
  if (filters.length === 0) {
    throw protocolError("Invalid UNSUBSCRIBE: no topic filter");
  }
  return { type: PacketType.UNSUBSCRIBE, packetId, filters, properties };
}

/**
 * Decodes an UNSUBACK body. Under 3.1.1 it holds only the packet identifier.
 *
 * @param flags The fixed-header flags.
 * @param body The buffer holding the body.
 * @param version The protocol version of the connection.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for grammar errors.
 */
export function decodeUnsuback(
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start = 0,
  end: number = body.length,
): UnsubackPacket {
  checkFlags(PacketType.UNSUBACK, flags);
  const reader = new Reader(body, start, end, PacketType.UNSUBACK);
  const packetId = reader.u16();
  let properties: Properties | undefined = undefined;
  let reasonCodes: number[] = [];
  if (version === 5) {
    properties = reader.properties(PacketType.UNSUBACK);
    reasonCodes = reader.restAsNumbers();
  }
  reader.expectEnd();
  return { type: PacketType.UNSUBACK, packetId, reasonCodes, properties };
}

/**
 * Decodes a PINGREQ body, which must be empty.
 *
 * @param flags The fixed-header flags.
 * @param body The buffer holding the body.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for flags or a body.
 */
export function decodePingreq(
  flags: number,
  body: Uint8Array,
  start = 0,
  end: number = body.length,
): PingreqPacket {
  checkFlags(PacketType.PINGREQ, flags);
  new Reader(body, start, end, PacketType.PINGREQ).expectEnd();
  return { type: PacketType.PINGREQ };
}

/**
 * Decodes a PINGRESP body, which must be empty.
 *
 * @param flags The fixed-header flags.
 * @param body The buffer holding the body.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for flags or a body.
 */
export function decodePingresp(
  flags: number,
  body: Uint8Array,
  start = 0,
  end: number = body.length,
): PingrespPacket {
  checkFlags(PacketType.PINGRESP, flags);
  new Reader(body, start, end, PacketType.PINGRESP).expectEnd();
  return { type: PacketType.PINGRESP };
}

/**
 * Decodes a DISCONNECT body. Under MQTT 5 an empty body means Normal disconnection, and one below
 * 2 bytes means no properties (section 3.14.2.1); under 3.1.1 the body must be empty.
 *
 * @param flags The fixed-header flags, which must be 0 [MQTT-3.14.1-1].
 * @param body The buffer holding the body.
 * @param version The protocol version of the connection.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) for grammar errors.
 */
export function decodeDisconnect(
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start = 0,
  end: number = body.length,
): DisconnectPacket {
  checkFlags(PacketType.DISCONNECT, flags);
  const reader = new Reader(body, start, end, PacketType.DISCONNECT);
  let reasonCode = 0;
  let properties: Properties | undefined = undefined;
  if (version === 5 && reader.remaining > 0) {
    reasonCode = reader.u8();
    if (reader.remaining > 0) properties = reader.properties(PacketType.DISCONNECT);
  }
  reader.expectEnd();
  return { type: PacketType.DISCONNECT, reasonCode, properties };
}

/**
 * Decodes an AUTH body (MQTT 5 only). An empty body means Success without properties (section
 * 3.15.2.1); a lone reason code is accepted without properties, as in DISCONNECT.
 *
 * @param flags The fixed-header flags, which must be 0 [MQTT-3.15.1-1].
 * @param body The buffer holding the body.
 * @param version The protocol version of the connection.
 * @param start Where the body starts in `body` (default 0).
 * @param end Where it ends, exclusive (default `body.length`).
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) before MQTT 5, where type 15 is reserved, and for
 * grammar errors.
 */
export function decodeAuth(
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start = 0,
  end: number = body.length,
): AuthPacket {
  checkAuthVersion(version);
  checkFlags(PacketType.AUTH, flags);
  const reader = new Reader(body, start, end, PacketType.AUTH);
  let reasonCode = 0;
  let properties: Properties | undefined = undefined;
  if (reader.remaining > 0) {
    reasonCode = reader.u8();
    if (reader.remaining > 0) properties = reader.properties(PacketType.AUTH);
  }
  reader.expectEnd();
  return { type: PacketType.AUTH, reasonCode, properties };
}

/**
 * Decodes the body `buf[start..end)` of a packet whose fixed header starts with `header`,
 * dispatching on the packet type. A CONNECT is decoded strictly ({@linkcode decodeConnect}).
 *
 * @param header The first byte of the packet (type and flags).
 * @param buf The buffer holding the body.
 * @param start Where the body starts.
 * @param end Where it ends, exclusive.
 * @param version The protocol version of the connection.
 * @returns The packet.
 * @throws {MqttError} As the per-type decoder; Malformed Packet (0x81) for packet type 0.
 */
export function decodeBody(
  header: number,
  buf: Uint8Array,
  start: number,
  end: number,
  version: ProtocolVersion,
): Packet {
  const flags = header & 0x0f;
  switch (header >> 4) {
    case PacketType.CONNECT:
      return decodeConnect(flags, buf.subarray(start, end));
    case PacketType.CONNACK:
      return decodeConnack(flags, buf, version, start, end);
    case PacketType.PUBLISH:
      return decodePublish(flags, buf, version, start, end);
    case PacketType.PUBACK:
      return decodePuback(flags, buf, version, start, end);
    case PacketType.PUBREC:
      return decodePubrec(flags, buf, version, start, end);
    case PacketType.PUBREL:
      return decodePubrel(flags, buf, version, start, end);
    case PacketType.PUBCOMP:
      return decodePubcomp(flags, buf, version, start, end);
    case PacketType.SUBSCRIBE:
      return decodeSubscribe(flags, buf, version, start, end);
    case PacketType.SUBACK:
      return decodeSuback(flags, buf, version, start, end);
    case PacketType.UNSUBSCRIBE:
      return decodeUnsubscribe(flags, buf, version, start, end);
    case PacketType.UNSUBACK:
      return decodeUnsuback(flags, buf, version, start, end);
    case PacketType.PINGREQ:
      return decodePingreq(flags, buf, start, end);
    case PacketType.PINGRESP:
      return decodePingresp(flags, buf, start, end);
    case PacketType.DISCONNECT:
      return decodeDisconnect(flags, buf, version, start, end);
    case PacketType.AUTH:
      return decodeAuth(flags, buf, version, start, end);
    default:
      throw malformed("Invalid fixed header: packet type 0 is reserved");
  }
}

/**
 * Decodes one complete packet, fixed header included. `bytes` must hold exactly that packet.
 *
 * @example Decode a PINGREQ
 * ```ts
 * import { decodePacket } from "./decode.ts";
 *
 * const packet = decodePacket(new Uint8Array([0xc0, 0x00]), 4);
 * console.log(packet.type); // 12
 * ```
 *
 * @param bytes The packet.
 * @param version The protocol version of the connection.
 * @returns The packet.
 * @throws {MqttError} Malformed Packet (0x81) when `bytes` is shorter or longer than the packet
 * its fixed header announces, and as {@linkcode decodeBody}.
 */
export function decodePacket(bytes: Uint8Array, version: ProtocolVersion): Packet {
  const remainingLength = decodeVarByteInt(bytes, 1, bytes.length);
  if (bytes.length === 0 || remainingLength < 0) {
    throw malformed("Invalid packet: fixed header is incomplete");
  }
  const start = 1 + varByteIntLength(remainingLength);
  if (start + remainingLength !== bytes.length) {
    throw malformed(
      `Invalid packet: remaining length ${remainingLength} does not match ${
        bytes.length - start
      } bytes`,
    );
  }
  return decodeBody(bytes[0], bytes, start, bytes.length, version);
}

/** Sequential reads over `buf[offset..end)` with bounds checks; used for all but PUBLISH. */
class Reader {
  readonly #buf: Uint8Array;
  readonly #end: number;
  readonly #type: PacketType;
  #pos: number;

  constructor(buf: Uint8Array, start: number, end: number, type: PacketType) {
    this.#buf = buf;
    this.#end = end;
    this.#type = type;
    this.#pos = start;
  }

  get offset(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  u8(): number {
    this.#need(1);
    return this.#buf[this.#pos++];
  }

  u16(): number {
    this.#need(2);
    const value = (this.#buf[this.#pos] << 8) | this.#buf[this.#pos + 1];
    this.#pos += 2;
    return value;
  }

  utf8(): string {
    const length = this.u16();
    this.#need(length);
    const value = decodeUtf8(this.#buf, this.#pos, this.#pos + length);
    this.#pos += length;
    return value;
  }

  binary(): Uint8Array {
    const length = this.u16();
    this.#need(length);
    const value = this.#buf.subarray(this.#pos, this.#pos + length);
    this.#pos += length;
    return value;
  }

  /** Reads a Property Length and the properties; `undefined` when the length is 0. */
  properties(context: PropertyContext): Properties | undefined {
    const length = decodeVarByteInt(this.#buf, this.#pos, this.#end);
    if (length < 0) throw truncated(this.#type);
    this.#pos += varByteIntLength(length);
    this.#need(length);
    if (length === 0) return undefined;
    const start = this.#pos;
    this.#pos += length;
    return decodeProperties(this.#buf, start, this.#pos, context);
  }

  /** Reads every remaining byte as a number (SUBACK and UNSUBACK reason codes). */
  restAsNumbers(): number[] {
    const values: number[] = [];
    while (this.#pos < this.#end) values.push(this.#buf[this.#pos++]);
    return values;
  }

  /** Throws unless every byte was read: a packet longer than its grammar is malformed. */
  expectEnd(): void {
    const extra = this.#end - this.#pos;
    if (extra !== 0) {
      throw malformed(
        `Invalid ${PACKET_TYPE_NAMES[this.#type]}: ${extra} ${
          extra === 1 ? "byte" : "bytes"
        } past the end of the packet grammar`,
      );
    }
  }

  #need(count: number): void {
    if (this.#pos + count > this.#end) throw truncated(this.#type);
  }
}

function readConnect(flags: number, reader: Reader): ConnectPacket {
  checkFlags(PacketType.CONNECT, flags);
  const protocolName = reader.utf8();
  const level = reader.u8();
  let protocolVersion: ProtocolVersion;
  if (protocolName === "MQTT" && (level === 4 || level === 5)) {
    protocolVersion = level;
  } else if (protocolName === "MQIsdp" && level === 3) {
    protocolVersion = 3;
  } else if (protocolName === "MQTT" || protocolName === "MQIsdp") {
    // The broker answers CONNACK 0x84 (5.0) or return code 0x01 (3.1.1) [MQTT-3.1.2-2].
    throw new MqttError(
      ReasonCode.UnsupportedProtocolVersion,
      `Unsupported protocol version: "${protocolName}" level ${level}`,
    );
  } else {
    // [MQTT-3.1.2-1]: anything but "MQTT" (or the MQTT 3.1 "MQIsdp") is not this protocol.
    throw malformed(`Invalid CONNECT: unknown protocol name "${protocolName}"`);
  }

  const connectFlags = reader.u8();
  // [MQTT-3.1.2-3] (3.1.1 as well): bit 0 is reserved and must be 0.
  if ((connectFlags & 0x01) !== 0) throw malformed("Invalid CONNECT: reserved flag is set");
  const willFlag = (connectFlags & 0x04) !== 0;
  const willQos = (connectFlags >> 3) & 0x03;
  const willRetain = (connectFlags & 0x20) !== 0;
  const hasPassword = (connectFlags & 0x40) !== 0;
  const hasUsername = (connectFlags & 0x80) !== 0;
  if (!willFlag) {
    // [MQTT-3.1.2-11] and [MQTT-3.1.2-13] (3.1.1: [MQTT-3.1.2-13] and [MQTT-3.1.2-15]).
    if (willQos !== 0) throw malformed("Invalid CONNECT: will QoS is set without a will");
    if (willRetain) throw malformed("Invalid CONNECT: will retain is set without a will");
  } else if (willQos === 3) {
    // [MQTT-3.1.2-12] (3.1.1: [MQTT-3.1.2-14]).
    throw malformed("Invalid CONNECT: will QoS is 3");
  }
  // [MQTT-3.1.2-22] (3.1.1): no password without a user name; MQTT 5 allows it (3.1.2.9).
  if (protocolVersion !== 5 && hasPassword && !hasUsername) {
    throw malformed("Invalid CONNECT: password flag is set without the user name flag");
  }
  const keepAlive = reader.u16();
  const properties = protocolVersion === 5 ? reader.properties(PacketType.CONNECT) : undefined;

  // Payload order: client identifier, will properties, will topic, will payload, user name,
  // password [MQTT-3.1.3-1].
  const clientId = reader.utf8();
  let will: Will | undefined = undefined;
  if (willFlag) {
    const willProperties = protocolVersion === 5 ? reader.properties(WILL_PROPERTIES) : undefined;
    const topic = reader.utf8();
    const payload = reader.binary();
    will = { topic, payload, qos: willQos as QoS, retain: willRetain, properties: willProperties };
  }
  const username = hasUsername ? reader.utf8() : undefined;
  const password = hasPassword ? reader.binary() : undefined;
  return {
    type: PacketType.CONNECT,
    protocolName,
    protocolVersion,
    cleanStart: (connectFlags & 0x02) !== 0,
    keepAlive,
    clientId,
    username,
    password,
    will,
    properties,
  };
}

type AckLikeType =
  | typeof PacketType.PUBACK
  | typeof PacketType.PUBREC
  | typeof PacketType.PUBREL
  | typeof PacketType.PUBCOMP;

function decodeAckLike<T extends AckLikeType>(
  type: T,
  flags: number,
  body: Uint8Array,
  version: ProtocolVersion,
  start: number,
  end: number,
): PubAckLikePacket<T> {
  checkFlags(type, flags);
  if (end - start === 2) {
    // The common case (3.1.1, or a 5.0 success without properties): no reader to make.
    return {
      type,
      packetId: (body[start] << 8) | body[start + 1],
      reasonCode: 0,
      properties: undefined,
    };
  }
  const reader = new Reader(body, start, end, type);
  const packetId = reader.u16();
  let reasonCode = 0;
  let properties: Properties | undefined = undefined;
  // MQTT 5 omits the reason code for Success without properties (remaining length 2) and the
  // Property Length below a remaining length of 4; 3.1.1 has only the packet identifier.
  if (version === 5 && reader.remaining > 0) {
    reasonCode = reader.u8();
    if (reader.remaining > 0) properties = reader.properties(type);
  }
  reader.expectEnd();
  return { type, packetId, reasonCode, properties };
}

function subscriptionV311(filter: string, options: number): Subscription {
  // [MQTT-3-8.3-4] (numbered so in the 3.1.1 text): bits 7-2 are reserved, QoS 3 is malformed.
  if ((options & 0xfc) !== 0) {
    throw malformed("Invalid SUBSCRIBE: reserved bits of the requested QoS byte are set");
  }
  if (options === 3) throw malformed("Invalid SUBSCRIBE: requested QoS is 3");
  return {
    filter,
    qos: options as QoS,
    noLocal: false,
    retainAsPublished: false,
    retainHandling: 0,
  };
}

function subscriptionV5(filter: string, options: number): Subscription {
  // [MQTT-3.8.3-5]: bits 7-6 of the Subscription Options are reserved.
  if ((options & 0xc0) !== 0) {
    throw malformed("Invalid SUBSCRIBE: reserved subscription option bits are set");
  }
  const qos = options & 0x03;
  // Section 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3."
  if (qos === 3) throw protocolError("Invalid SUBSCRIBE: maximum QoS is 3");
  const retainHandling = (options >> 4) & 0x03;
  // Section 3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3."
  if (retainHandling === 3) throw protocolError("Invalid SUBSCRIBE: retain handling is 3");
  return {
    filter,
    qos: qos as QoS,
    noLocal: (options & 0x04) !== 0,
    retainAsPublished: (options & 0x08) !== 0,
    retainHandling: retainHandling as 0 | 1 | 2,
  };
}

function checkFlags(type: number, flags: number): void {
  const required = REQUIRED_FLAGS[type];
  if (flags !== required) {
    throw malformed(
      `Invalid ${PACKET_TYPE_NAMES[type]}: fixed header flags are 0b${bits(flags)}, expected 0b${
        bits(required)
      }`,
    );
  }
}

function checkAuthVersion(version: ProtocolVersion): void {
  // Packet type 15 is reserved (forbidden) before MQTT 5 (3.1.1 section 2.2.1).
  if (version !== 5) throw malformed("Invalid fixed header: AUTH requires MQTT 5");
}

function bits(flags: number): string {
  return flags.toString(2).padStart(4, "0");
}

function publishQos3(): MqttError {
  // [MQTT-3.3.1-4] (3.1.1 as well).
  return malformed("Invalid PUBLISH: QoS is 3");
}

function truncated(type: PacketType): MqttError {
  return malformed(`Invalid ${PACKET_TYPE_NAMES[type]}: packet ends early`);
}
