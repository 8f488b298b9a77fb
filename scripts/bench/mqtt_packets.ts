/**
 * The few fixed MQTT 3.1.1 packets the load generator sends. They are encoded once and then patched in
 * place (sequence numbers, packet ids), so the generator allocates nothing per message. Deliberately
 * independent of `src/codec/`, which is the code under test.
 *
 * @module
 */

/** Control packet types used by the generator (high nibble of the fixed header). */
export const PacketType = {
  connect: 1,
  connack: 2,
  publish: 3,
  puback: 4,
  pubrec: 5,
  pubrel: 6,
  pubcomp: 7,
  subscribe: 8,
  suback: 9,
} as const;

/** One acknowledgement packet type (PUBACK, PUBREC, PUBREL or PUBCOMP). */
export type AckType =
  | typeof PacketType.puback
  | typeof PacketType.pubrec
  | typeof PacketType.pubrel
  | typeof PacketType.pubcomp;

/** Byte length of every acknowledgement packet (fixed header + packet id). */
export const ACK_LENGTH = 4;

const textEncoder = new TextEncoder();

function encodeVarByteInt(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return out;
}

function encodeString(text: string): number[] {
  const bytes = textEncoder.encode(text);
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
}

function frame(firstByte: number, body: ArrayLike<number>): Uint8Array {
  const header = [firstByte, ...encodeVarByteInt(body.length)];
  const out = new Uint8Array(header.length + body.length);
  out.set(header);
  out.set(body, header.length);
  return out;
}

/**
 * Encodes a v3.1.1 CONNECT with a clean session and keep-alive 0 (no PINGREQ needed while idle).
 *
 * @param clientId The client identifier.
 * @returns The packet bytes.
 */
export function encodeConnect(clientId: string): Uint8Array {
  const protocolName = encodeString("MQTT");
  const level = 4;
  const cleanSession = 0x02;
  return frame(PacketType.connect << 4, [
    ...protocolName,
    level,
    cleanSession,
    0,
    0,
    ...encodeString(clientId),
  ]);
}

/**
 * Encodes a SUBSCRIBE for one topic filter.
 *
 * @param filter The topic filter (may be a `$share/...` filter).
 * @param qos The requested maximum QoS.
 * @returns The packet bytes (packet id 1).
 */
export function encodeSubscribe(filter: string, qos: number): Uint8Array {
  return frame((PacketType.subscribe << 4) | 0x02, [0, 1, ...encodeString(filter), qos]);
}

/** A PUBLISH encoded once; the generator copies it and patches the packet id and payload. */
export interface PublishTemplate {
  /** The whole packet. */
  bytes: Uint8Array;
  /** Offset of the 2-byte packet id, or -1 at QoS 0. */
  packetIdOffset: number;
  /** Offset of the first payload byte. */
  payloadOffset: number;
}

/** What a PUBLISH template carries. */
export interface PublishShape {
  /** The topic name. */
  topic: string;
  /** The QoS (0, 1 or 2). */
  qos: number;
  /** The payload length in bytes. */
  payloadSize: number;
}

/**
 * Encodes a PUBLISH template with a zero-filled payload.
 *
 * @param shape Topic, QoS and payload size.
 * @returns The template.
 */
export function encodePublishTemplate(shape: PublishShape): PublishTemplate {
  const { topic, qos, payloadSize } = shape;
  const topicBytes = encodeString(topic);
  const idBytes = qos > 0 ? [0, 1] : [];
  const body = new Uint8Array(topicBytes.length + idBytes.length + payloadSize);
  body.set(topicBytes);
  body.set(idBytes, topicBytes.length);
  const bytes = frame((PacketType.publish << 4) | (qos << 1), body);
  const bodyOffset = bytes.length - body.length;
  return {
    bytes,
    packetIdOffset: qos > 0 ? bodyOffset + topicBytes.length : -1,
    payloadOffset: bodyOffset + topicBytes.length + idBytes.length,
  };
}
