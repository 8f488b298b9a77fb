/**
 * Packet encoders. Each computes the exact size first (MQTT puts the remaining length up front),
 * allocates one buffer of that size and writes into it: no growth, no concatenation.
 *
 * MQTT 3.1.1 forms (protocol levels 3 and 4) leave out reason codes and properties. MQTT 5 forms
 * are the shortest legal ones: PUBACK, PUBREC, PUBREL and PUBCOMP drop a Success reason code and
 * an empty property list, DISCONNECT and AUTH drop them likewise. Properties not allowed in a
 * packet are not written. The encoders trust their input beyond sizes: validate packets built
 * from untrusted data first.
 *
 * @module
 */

import { binaryDataSize, writeBinaryData } from "./binary.ts";
import {
  type AuthPacket,
  type ConnackPacket,
  type ConnectPacket,
  type DisconnectPacket,
  type Packet,
  PacketType,
  type ProtocolVersion,
  type PubAckLikePacket,
  type PublishPacket,
  type SubackPacket,
  type SubscribePacket,
  type UnsubackPacket,
  type UnsubscribePacket,
} from "./packets.ts";
import { propertiesLength, WILL_PROPERTIES, writeProperties } from "./properties.ts";
import type { BufferAllocator } from "./slab_allocator.ts";
import { utf8StringSize, writeUtf8String } from "./utf8.ts";
import { decodeVarByteInt, varByteIntLength, writeVarByteInt } from "./vbi.ts";

/** Options of the encoders. */
export interface EncodeOptions {
  /** Where the output buffer comes from (default: a new `Uint8Array` per packet). */
  allocator?: BufferAllocator;
}

/**
 * Encodes any packet for a connection speaking `version`.
 *
 * @example Encode a PUBACK
 * ```ts
 * import { encodePacket } from "./encode.ts";
 *
 * const bytes = encodePacket({ type: 4, packetId: 1, reasonCode: 0, properties: undefined }, 5);
 * console.log(bytes); // Uint8Array(4) [ 64, 2, 0, 1 ]
 * ```
 *
 * @param packet The packet.
 * @param version The protocol version of the connection.
 * @param options The output allocator, if any.
 * @returns The encoded packet in a new buffer.
 * @throws {RangeError} When a string or binary field exceeds 65,535 bytes or the packet exceeds
 * the largest remaining length.
 * @throws {TypeError} When encoding AUTH for a version before MQTT 5.
 */
export function encodePacket(
  packet: Packet,
  version: ProtocolVersion,
  options?: EncodeOptions,
): Uint8Array {
  switch (packet.type) {
    case PacketType.CONNECT:
      return encodeConnect(packet, version, options);
    case PacketType.CONNACK:
      return encodeConnack(packet, version, options);
    case PacketType.PUBLISH:
      return encodePublish(packet, version, options);
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      return encodePubAckLike(packet, version, options);
    case PacketType.SUBSCRIBE:
      return encodeSubscribe(packet, version, options);
    case PacketType.SUBACK:
      return encodeSuback(packet, version, options);
    case PacketType.UNSUBSCRIBE:
      return encodeUnsubscribe(packet, version, options);
    case PacketType.UNSUBACK:
      return encodeUnsuback(packet, version, options);
    case PacketType.PINGREQ:
      return allocate(0xc0, 0, options);
    case PacketType.PINGRESP:
      return allocate(0xd0, 0, options);
    case PacketType.DISCONNECT:
      return encodeDisconnect(packet, version, options);
    case PacketType.AUTH:
      return encodeAuth(packet, version, options);
  }
}

/**
 * Encodes a CONNECT. The grammar and the protocol level byte follow `version`; the protocol name
 * is written as given ("MQTT", or "MQIsdp" for level 3).
 *
 * @param packet The packet.
 * @param version The protocol version to speak.
 * @param options The output allocator, if any.
 * @returns The encoded packet.
 */
export function encodeConnect(
  packet: ConnectPacket,
  version: ProtocolVersion,
  options?: EncodeOptions,
): Uint8Array {
  const { will, username, password } = packet;
  const v5 = version === 5;
  let propsLength = 0;
  let willPropsLength = 0;
  let remainingLength = utf8StringSize(packet.protocolName) + 4 + utf8StringSize(packet.clientId);
  if (v5) {
    propsLength = propertiesLength(packet.properties, PacketType.CONNECT);
    remainingLength += varByteIntLength(propsLength) + propsLength;
  }
  let connectFlags = packet.cleanStart ? 0x02 : 0;
  if (will !== undefined) {
    connectFlags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0);
    if (v5) {
      willPropsLength = propertiesLength(will.properties, WILL_PROPERTIES);
      remainingLength += varByteIntLength(willPropsLength) + willPropsLength;
    }
    remainingLength += utf8StringSize(will.topic) + binaryDataSize(will.payload);
  }
  if (username !== undefined) {
    connectFlags |= 0x80;
    remainingLength += utf8StringSize(username);
  }
  if (password !== undefined) {
    connectFlags |= 0x40;
    remainingLength += binaryDataSize(password);
  }

  const buf = allocate(0x10, remainingLength, options);
  let pos = writeUtf8String(buf, buf.length - remainingLength, packet.protocolName);
  buf[pos++] = version;
  buf[pos++] = connectFlags;
  pos = writeUint16(buf, pos, packet.keepAlive);
  if (v5) pos = writeProperties(buf, pos, packet.properties, PacketType.CONNECT, propsLength);
  pos = writeUtf8String(buf, pos, packet.clientId);
  if (will !== undefined) {
    if (v5) pos = writeProperties(buf, pos, will.properties, WILL_PROPERTIES, willPropsLength);
    pos = writeUtf8String(buf, pos, will.topic);
    pos = writeBinaryData(buf, pos, will.payload);
  }
  if (username !== undefined) pos = writeUtf8String(buf, pos, username);
  if (password !== undefined) writeBinaryData(buf, pos, password);
  return buf;
}

/**
 * Encodes a CONNACK. Under 3.1.1 `reasonCode` is the return code (0 to 5).
 *
 * @param packet The packet.
 * @param version The protocol version of the connection.
 * @param options The output allocator, if any.
 * @returns The encoded packet.
 */
export function encodeConnack(
  packet: ConnackPacket,
  version: ProtocolVersion,
  options?: EncodeOptions,
): Uint8Array {
  const propsLength = version === 5 ? propertiesLength(packet.properties, PacketType.CONNACK) : 0;
  const remainingLength = version === 5 ? 2 + varByteIntLength(propsLength) + propsLength : 2;
  const buf = allocate(0x20, remainingLength, options);
  let pos = buf.length - remainingLength;
  buf[pos++] = packet.sessionPresent ? 0x01 : 0;
  buf[pos++] = packet.reasonCode;
  if (version === 5) {
    writeProperties(buf, pos, packet.properties, PacketType.CONNACK, propsLength);
  }
  return buf;
}

/**
 * Encodes a whole PUBLISH: fixed header, variable header and payload in one buffer.
 *
 * @param packet The packet.
 * @param version The protocol version of the connection.
 * @param options The output allocator, if any.
 * @returns The encoded packet.
 */
export function encodePublish(
  packet: PublishPacket,
  version: ProtocolVersion,
  options?: EncodeOptions,
): Uint8Array {
  return encodePublishParts(packet, version, true, options);
}

/**
 * Encodes the fixed header and variable header of a PUBLISH, without the payload; the remaining
 * length still counts `packet.payload.length`. Writing the result and then the payload sends one
 * valid packet, so a payload shared by many subscribers is never copied per subscriber.
 *
 * @example Send a header and a shared payload as two frames
 * ```ts
 * import { encodePublishHeader } from "./encode.ts";
 *
 * const payload = new TextEncoder().encode("21.5");
 * const header = encodePublishHeader({
 *   type: 3, dup: false, qos: 0, retain: false, topic: "t", packetId: 0,
 *   properties: undefined, payload,
 * }, 4);
 * console.log(header); // Uint8Array(5) [ 48, 7, 0, 1, 116 ]
 * ```
 *
 * @param packet The packet.
 * @param version The protocol version of the connection.
 * @param options The output allocator, if any.
 * @returns The encoded headers.
 */
export function encodePublishHeader(
  packet: PublishPacket,
  version: ProtocolVersion,
  options?: EncodeOptions,
): Uint8Array {
  return encodePublishParts(packet, version, false, options);
}

/**
 * Finds the packet identifier in an encoded PUBLISH (whole, or from
 * {@linkcode encodePublishHeader}) so that a PUBLISH encoded once can be sent to many
 * subscribers with a different identifier each: copy the header and patch two bytes there (see
 * {@linkcode setPublishPacketId}). The offset is the same for every copy and can be cached.
 *
 * @param encoded An encoded PUBLISH with QoS 1 or 2.
 * @returns The offset of the two-byte packet identifier.
 * @throws {TypeError} When `encoded` is not a PUBLISH with QoS 1 or 2.
 */
export function publishPacketIdOffset(encoded: Uint8Array): number {
  const header = encoded[0];
  if (header >> 4 !== PacketType.PUBLISH || (header & 0x06) === 0) {
    throw new TypeError("Cannot find packet identifier: not a PUBLISH with QoS 1 or 2");
  }
  const remainingLength = decodeVarByteInt(encoded, 1, encoded.length);
  const topicAt = remainingLength < 0 ? encoded.length : 1 + varByteIntLength(remainingLength);
  const offset = topicAt + 2 + ((encoded[topicAt] << 8) | encoded[topicAt + 1]);
  // Missing bytes read as `undefined`, which the bit operations turn into 0: still past the end.
  if (offset + 2 > encoded.length) {
    throw new TypeError("Cannot find packet identifier: PUBLISH header is truncated");
  }
  return offset;
}

/**
 * Writes `packetId` into an encoded PUBLISH with QoS 1 or 2, in place.
 *
 * @example Give each subscriber its own packet identifier
 * ```ts
 * import { encodePublishHeader, setPublishPacketId } from "./encode.ts";
 *
 * const shared = encodePublishHeader({
 *   type: 3, dup: false, qos: 1, retain: false, topic: "t", packetId: 0,
 *   properties: undefined, payload: new Uint8Array(4),
 * }, 4);
 * const forSubscriber = shared.slice();
 * setPublishPacketId(forSubscriber, 42);
 * ```
 *
 * @param encoded An encoded PUBLISH with QoS 1 or 2.
 * @param packetId The identifier, 1 to 65,535.
 * @throws {TypeError} When `encoded` is not a PUBLISH with QoS 1 or 2.
 */
export function setPublishPacketId(encoded: Uint8Array, packetId: number): void {
  writeUint16(encoded, publishPacketIdOffset(encoded), packetId);
}

/**
 * Encodes a PUBACK, PUBREC, PUBREL or PUBCOMP. Under MQTT 5, Success without properties takes 4
 * bytes and another reason code without properties 5.
 *
 * @param packet The packet.
 * @param version The protocol version of the connection.
 * @param options The output allocator, if any.
 * @returns The encoded packet.
 */
export function encodePubAckLike(
  packet: PubAckLikePacket<
    | typeof PacketType.PUBACK
    | typeof PacketType.PUBREC
    | typeof PacketType.PUBREL
    | typeof PacketType.PUBCOMP
  >,
  version: ProtocolVersion,
  options?: EncodeOptions,
): Uint8Array {
  // PUBREL's reserved flags are 0b0010 [MQTT-3.6.1-1].
  const header = (packet.type << 4) | (packet.type === PacketType.PUBREL ? 0x02 : 0);
  const propsLength = version === 5 ? propertiesLength(packet.properties, packet.type) : 0;
  let remainingLength = 2;
  if (propsLength !== 0) {
    remainingLength = 3 + varByteIntLength(propsLength) + propsLength;
  } else if (version === 5 && packet.reasonCode !== 0) {
    remainingLength = 3;
  }
  const buf = allocate(header, remainingLength, options);
  let pos = writeUint16(buf, buf.length - remainingLength, packet.packetId);
  if (remainingLength > 2) {
    buf[pos++] = packet.reasonCode;
    if (propsLength !== 0) writeProperties(buf, pos, packet.properties, packet.type, propsLength);
  }
  return buf;
}

/**
 * Encodes a SUBSCRIBE. Under 3.1.1 only the requested QoS of each subscription is written.
 *
 * @param packet The packet.
 * @param version The protocol version of the connection.
 * @param options The output allocator, if any.
 * @returns The encoded packet.
 */
export function encodeSubscribe(
  packet: SubscribePacket,
  version: ProtocolVersion,
  options?: EncodeOptions,
): Uint8Array {
  const v5 = version === 5;
  const propsLength = v5 ? propertiesLength(packet.properties, PacketType.SUBSCRIBE) : 0;
  let remainingLength = 2 + (v5 ? varByteIntLength(propsLength) + propsLength : 0);
  for (const subscription of packet.subscriptions) {
    remainingLength += utf8StringSize(subscription.filter) + 1;
  }
  // SUBSCRIBE's reserved flags are 0b0010 [MQTT-3.8.1-1].
  const buf = allocate(0x82, remainingLength, options);
  let pos = writeUint16(buf, buf.length - remainingLength, packet.packetId);
  if (v5) pos = writeProperties(buf, pos, packet.properties, PacketType.SUBSCRIBE, propsLength);
  for (const subscription of packet.subscriptions) {
    pos = writeUtf8String(buf, pos, subscription.filter);
    buf[pos++] = v5
      ? subscription.qos | (subscription.noLocal ? 0x04 : 0) |
        (subscription.retainAsPublished ? 0x08 : 0) | (subscription.retainHandling << 4)
      : subscription.qos;
  }
  return buf;
}

/**
 * Encodes a SUBACK.
 *
 * @param packet The packet.
 * @param version The protocol version of the connection.
 * @param options The output allocator, if any.
 * @returns The encoded packet.
 */
export function encodeSuback(
  packet: SubackPacket,
  version: ProtocolVersion,
  options?: EncodeOptions,
): Uint8Array {
  return encodeAckWithCodes(0x90, packet, version, packet.reasonCodes, options);
}

/**
 * Encodes an UNSUBSCRIBE.
 *
 * @param packet The packet.
 * @param version The protocol version of the connection.
 * @param options The output allocator, if any.
 * @returns The encoded packet.
 */
export function encodeUnsubscribe(
  packet: UnsubscribePacket,
  version: ProtocolVersion,
  options?: EncodeOptions,
): Uint8Array {
  const v5 = version === 5;
  const propsLength = v5 ? propertiesLength(packet.properties, PacketType.UNSUBSCRIBE) : 0;
  let remainingLength = 2 + (v5 ? varByteIntLength(propsLength) + propsLength : 0);
  for (const filter of packet.filters) remainingLength += utf8StringSize(filter);
  // UNSUBSCRIBE's reserved flags are 0b0010 [MQTT-3.10.1-1].
  const buf = allocate(0xa2, remainingLength, options);
  let pos = writeUint16(buf, buf.length - remainingLength, packet.packetId);
  if (v5) pos = writeProperties(buf, pos, packet.properties, PacketType.UNSUBSCRIBE, propsLength);
  for (const filter of packet.filters) pos = writeUtf8String(buf, pos, filter);
  return buf;
}

/**
 * Encodes an UNSUBACK. Under 3.1.1 it carries only the packet identifier.
 *
 * @param packet The packet.
 * @param version The protocol version of the connection.
 * @param options The output allocator, if any.
 * @returns The encoded packet.
 */
export function encodeUnsuback(
  packet: UnsubackPacket,
  version: ProtocolVersion,
  options?: EncodeOptions,
): Uint8Array {
  return encodeAckWithCodes(
    0xb0,
    packet,
    version,
    version === 5 ? packet.reasonCodes : [],
    options,
  );
}

/**
 * Encodes a DISCONNECT. Under MQTT 5 a Normal disconnection without properties is 2 bytes and
 * another reason code without properties 3.
 *
 * @param packet The packet.
 * @param version The protocol version of the connection.
 * @param options The output allocator, if any.
 * @returns The encoded packet.
 */
export function encodeDisconnect(
  packet: DisconnectPacket,
  version: ProtocolVersion,
  options?: EncodeOptions,
): Uint8Array {
  if (version !== 5) return allocate(0xe0, 0, options);
  return encodeReasonAndProperties(0xe0, packet, true, options);
}

/**
 * Encodes an AUTH (MQTT 5 only). Success without properties is 2 bytes; any other AUTH carries
 * its reason code and a Property Length.
 *
 * @param packet The packet.
 * @param version The protocol version of the connection.
 * @param options The output allocator, if any.
 * @returns The encoded packet.
 * @throws {TypeError} When `version` is before MQTT 5.
 */
export function encodeAuth(
  packet: AuthPacket,
  version: ProtocolVersion,
  options?: EncodeOptions,
): Uint8Array {
  if (version !== 5) throw new TypeError(`Cannot encode AUTH: protocol version ${version}`);
  return encodeReasonAndProperties(0xf0, packet, false, options);
}

function encodePublishParts(
  packet: PublishPacket,
  version: ProtocolVersion,
  withPayload: boolean,
  options: EncodeOptions | undefined,
): Uint8Array {
  const v5 = version === 5;
  const propsLength = v5 ? propertiesLength(packet.properties, PacketType.PUBLISH) : 0;
  const variableHeaderSize = utf8StringSize(packet.topic) + (packet.qos !== 0 ? 2 : 0) +
    (v5 ? varByteIntLength(propsLength) + propsLength : 0);
  const remainingLength = variableHeaderSize + packet.payload.length;
  const headerSize = 1 + varByteIntLength(remainingLength);
  const size = headerSize + variableHeaderSize + (withPayload ? packet.payload.length : 0);
  const buf = options?.allocator === undefined
    ? new Uint8Array(size)
    : options.allocator.allocate(size);
  buf[0] = 0x30 | (packet.dup ? 0x08 : 0) | (packet.qos << 1) | (packet.retain ? 0x01 : 0);
  writeVarByteInt(buf, 1, remainingLength);
  let pos = writeUtf8String(buf, headerSize, packet.topic);
  if (packet.qos !== 0) pos = writeUint16(buf, pos, packet.packetId);
  if (v5) pos = writeProperties(buf, pos, packet.properties, PacketType.PUBLISH, propsLength);
  if (withPayload) buf.set(packet.payload, pos);
  return buf;
}

/** SUBACK and UNSUBACK: packet identifier, MQTT 5 properties, then one byte per code. */
function encodeAckWithCodes(
  header: number,
  packet: SubackPacket | UnsubackPacket,
  version: ProtocolVersion,
  codes: readonly number[],
  options: EncodeOptions | undefined,
): Uint8Array {
  const v5 = version === 5;
  const propsLength = v5 ? propertiesLength(packet.properties, packet.type) : 0;
  const remainingLength = 2 + (v5 ? varByteIntLength(propsLength) + propsLength : 0) +
    codes.length;
  const buf = allocate(header, remainingLength, options);
  let pos = writeUint16(buf, buf.length - remainingLength, packet.packetId);
  if (v5) pos = writeProperties(buf, pos, packet.properties, packet.type, propsLength);
  buf.set(codes, pos);
  return buf;
}

/**
 * DISCONNECT and AUTH under MQTT 5: nothing for code 0 without properties; otherwise the code,
 * then the properties, whose length may be left out when empty only if `omitEmptyProperties`.
 */
function encodeReasonAndProperties(
  header: number,
  packet: DisconnectPacket | AuthPacket,
  omitEmptyProperties: boolean,
  options: EncodeOptions | undefined,
): Uint8Array {
  const propsLength = propertiesLength(packet.properties, packet.type);
  let remainingLength = 0;
  if (propsLength !== 0 || (packet.reasonCode !== 0 && !omitEmptyProperties)) {
    remainingLength = 1 + varByteIntLength(propsLength) + propsLength;
  } else if (packet.reasonCode !== 0) {
    remainingLength = 1;
  }
  const buf = allocate(header, remainingLength, options);
  if (remainingLength !== 0) {
    const pos = buf.length - remainingLength;
    buf[pos] = packet.reasonCode;
    if (remainingLength > 1) {
      writeProperties(buf, pos + 1, packet.properties, packet.type, propsLength);
    }
  }
  return buf;
}

/** Allocates the whole packet and writes its fixed header; the body starts at the end minus it. */
function allocate(
  header: number,
  remainingLength: number,
  options: EncodeOptions | undefined,
): Uint8Array {
  const size = 1 + varByteIntLength(remainingLength) + remainingLength;
  const buf = options?.allocator === undefined
    ? new Uint8Array(size)
    : options.allocator.allocate(size);
  buf[0] = header;
  writeVarByteInt(buf, 1, remainingLength);
  return buf;
}

function writeUint16(buf: Uint8Array, pos: number, value: number): number {
  buf[pos] = value >> 8;
  buf[pos + 1] = value & 0xff;
  return pos + 2;
}
