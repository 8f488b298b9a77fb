/**
 * A {@linkcode Message} as the bytes of one NATS message: a compact binary envelope, so that every
 * field survives the hop between front-ends exactly (QoS, retain flag, expiry, the publisher's
 * client id for No Local, and every MQTT 5 property, written with the broker's own PUBLISH
 * property codec), plus the sender's id and sequence number that receivers use to take a message
 * that two overlapping subscriptions delivered only once.
 *
 * Layout (integers big-endian):
 *
 * | bytes   | field                                                     |
 * | ------- | --------------------------------------------------------- |
 * | 1       | version (1)                                               |
 * | 1       | flags: QoS in bits 0-1, retain in bit 2                   |
 * | 8       | `expiresAt` (float64, epoch ms, 0 for never)              |
 * | 8       | sender sequence (float64)                                 |
 * | 2 + n   | sender id (UTF-8)                                         |
 * | 2 + n   | `origin` (UTF-8)                                          |
 * | 4 + n   | topic (UTF-8)                                             |
 * | VBI + n | properties, as in an MQTT 5 PUBLISH                       |
 * | rest    | payload                                                   |
 *
 * @module
 */

import {
  decodeProperties,
  type Message,
  PacketType,
  propertiesLength,
  type QoS,
  writeProperties,
} from "../src/mod.ts";

const VERSION = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Who sent an envelope, and its place in that sender's sequence. */
export interface Sender {
  id: string;
  seq: number;
}

/** A decoded envelope. */
export interface Envelope {
  message: Message;
  sender: Sender;
}

/** The last sender id encoded (one per backbone instance, so nearly always the same). */
let lastSenderId = "";
let lastSenderBytes = new Uint8Array(0);

/** Encodes a message with its sender. */
export function encodeEnvelope(message: Message, sender: Sender): Uint8Array {
  if (sender.id !== lastSenderId) {
    lastSenderId = sender.id;
    lastSenderBytes = encoder.encode(sender.id);
  }
  const senderId = lastSenderBytes;
  const origin = encoder.encode(message.origin);
  const topic = encoder.encode(message.topic);
  const propsLength = propertiesLength(message.properties, PacketType.PUBLISH);
  const vbi = propsLength < 0x80 ? 1 : propsLength < 0x4000 ? 2 : propsLength < 0x200000 ? 3 : 4;
  const size = 18 + 2 + senderId.length + 2 + origin.length + 4 + topic.length + vbi +
    propsLength + message.payload.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = VERSION;
  out[1] = message.qos | (message.retain ? 4 : 0);
  view.setFloat64(2, message.expiresAt);
  view.setFloat64(10, sender.seq);
  let pos = 18;
  view.setUint16(pos, senderId.length);
  out.set(senderId, pos + 2);
  pos += 2 + senderId.length;
  view.setUint16(pos, origin.length);
  out.set(origin, pos + 2);
  pos += 2 + origin.length;
  view.setUint32(pos, topic.length);
  out.set(topic, pos + 4);
  pos += 4 + topic.length;
  pos = writeProperties(out, pos, message.properties, PacketType.PUBLISH, propsLength);
  out.set(message.payload, pos);
  return out;
}

/** Decodes an envelope; throws a TypeError for bytes that are not one. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length < 26 || bytes[0] !== VERSION) throw new TypeError("not a Perch envelope");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flags = bytes[1];
  const expiresAt = view.getFloat64(2);
  const seq = view.getFloat64(10);
  let pos = 18;
  const text = (lengthBytes: 2 | 4): string => {
    const length = lengthBytes === 2 ? view.getUint16(pos) : view.getUint32(pos);
    const start = pos + lengthBytes;
    if (start + length > bytes.length) throw new TypeError("truncated Perch envelope");
    pos = start + length;
    return decoder.decode(bytes.subarray(start, pos));
  };
  const id = text(2);
  const origin = text(2);
  const topic = text(4);
  let propsLength = 0;
  let shift = 0;
  for (;;) {
    if (pos >= bytes.length) throw new TypeError("truncated Perch envelope");
    const byte = bytes[pos++];
    propsLength += (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) break;
    shift += 7;
  }
  const propsEnd = pos + propsLength;
  if (propsEnd > bytes.length) throw new TypeError("truncated Perch envelope");
  const properties = propsLength === 0 ? undefined : copyBinary(
    decodeProperties(bytes, pos, propsEnd, PacketType.PUBLISH) as Record<string, unknown>,
  );
  return {
    message: {
      topic,
      payload: new Uint8Array(bytes.subarray(propsEnd)),
      qos: (flags & 3) as QoS,
      retain: (flags & 4) !== 0,
      properties: properties as Message["properties"],
      expiresAt,
      origin,
    },
    sender: { id, seq },
  };
}

/**
 * Binary property values are views into the envelope: give them their own bytes (a copying
 * constructor: the bytes may be a Node Buffer, whose `slice` is a view).
 */
function copyBinary(properties: Record<string, unknown>): Record<string, unknown> {
  for (const [name, value] of Object.entries(properties)) {
    if (value instanceof Uint8Array) properties[name] = new Uint8Array(value);
  }
  return properties;
}
