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
 * Several envelopes may travel in one NATS message, a batch: a version byte 2, then each envelope
 * as a 4-byte length and its bytes, in the order they were sent.
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
const BATCH_VERSION = 2;
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

/**
 * UTF-8 bytes of recent topics and origins: a topic or a publisher repeats from message to
 * message, and encoding each anew made two arrays per message. Bounded: emptied when full.
 */
const textBytes = new Map<string, Uint8Array>();
const TEXT_BYTES_MAX = 1024;

function utf8(text: string): Uint8Array {
  let bytes = textBytes.get(text);
  if (bytes === undefined) {
    if (textBytes.size >= TEXT_BYTES_MAX) textBytes.clear();
    bytes = encoder.encode(text);
    textBytes.set(text, bytes);
  }
  return bytes;
}

/** Encodes a message with its sender. */
export function encodeEnvelope(message: Message, sender: Sender): Uint8Array {
  if (sender.id !== lastSenderId) {
    lastSenderId = sender.id;
    lastSenderBytes = encoder.encode(sender.id);
  }
  const senderId = lastSenderBytes;
  const origin = utf8(message.origin);
  const topic = utf8(message.topic);
  const propsLength = propertiesLength(message.properties, PacketType.PUBLISH);
  const vbi = propsLength < 0x80 ? 1 : propsLength < 0x4000 ? 2 : propsLength < 0x200000 ? 3 : 4;
  const size = 18 + 2 + senderId.length + 2 + origin.length + 4 + topic.length + vbi +
    propsLength + message.payload.length;
  const out = new Uint8Array(size);
  out[0] = VERSION;
  out[1] = message.qos | (message.retain ? 4 : 0);
  scratch.setFloat64(0, message.expiresAt);
  scratch.setFloat64(8, sender.seq);
  out.set(scratchBytes, 2);
  let pos = 18;
  pos = putLength(out, pos, senderId.length, 2);
  out.set(senderId, pos);
  pos = putLength(out, pos + senderId.length, origin.length, 2);
  out.set(origin, pos);
  pos = putLength(out, pos + origin.length, topic.length, 4);
  out.set(topic, pos);
  pos += topic.length;
  pos = writeProperties(out, pos, message.properties, PacketType.PUBLISH, propsLength);
  out.set(message.payload, pos);
  return out;
}

/** The two float64s of an envelope's head, written and read here rather than through a view per message. */
const scratchBytes = new Uint8Array(16);
const scratch = new DataView(scratchBytes.buffer);

/** Writes a big-endian length of 2 or 4 bytes; the position after it. */
function putLength(out: Uint8Array, pos: number, length: number, bytes: 2 | 4): number {
  if (bytes === 4) {
    out[pos++] = length >>> 24;
    out[pos++] = (length >>> 16) & 0xff;
  }
  out[pos++] = (length >>> 8) & 0xff;
  out[pos++] = length & 0xff;
  return pos;
}

/**
 * Strings decoded lately, by field: a topic, an origin and a sender id repeat from message to
 * message, so the bytes are compared with the last ones before they are decoded again.
 */
class RecentText {
  #bytes = new Uint8Array(0);
  #text = "";

  read(bytes: Uint8Array, start: number, end: number): string {
    const last = this.#bytes;
    let same = end - start === last.length;
    for (let i = 0; same && i < last.length; i++) same = bytes[start + i] === last[i];
    if (!same) {
      // A copy (a Node Buffer's `slice` would be a view of the socket's bytes).
      this.#bytes = new Uint8Array(bytes.subarray(start, end));
      this.#text = decoder.decode(this.#bytes);
    }
    return this.#text;
  }
}

const recentSender = new RecentText();
const recentOrigin = new RecentText();
const recentTopic = new RecentText();

/** Reads a big-endian length of 2 or 4 bytes at `pos`. */
function getLength(bytes: Uint8Array, pos: number, size: 2 | 4): number {
  return size === 2 ? (bytes[pos] << 8) | bytes[pos + 1] : ((bytes[pos] << 24) >>> 0) +
    ((bytes[pos + 1] << 16) | (bytes[pos + 2] << 8) | bytes[pos + 3]);
}

/** Decodes an envelope; throws a TypeError for bytes that are not one. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length < 26 || bytes[0] !== VERSION) throw new TypeError("not a Perch envelope");
  const flags = bytes[1];
  for (let i = 0; i < 16; i++) scratchBytes[i] = bytes[2 + i];
  const expiresAt = scratch.getFloat64(0);
  const seq = scratch.getFloat64(8);
  let pos = 18;
  let length = getLength(bytes, pos, 2);
  pos += 2;
  if (pos + length > bytes.length) throw new TypeError("truncated Perch envelope");
  const id = recentSender.read(bytes, pos, pos += length);
  if (pos + 2 > bytes.length) throw new TypeError("truncated Perch envelope");
  length = getLength(bytes, pos, 2);
  pos += 2;
  if (pos + length > bytes.length) throw new TypeError("truncated Perch envelope");
  const origin = recentOrigin.read(bytes, pos, pos += length);
  if (pos + 4 > bytes.length) throw new TypeError("truncated Perch envelope");
  length = getLength(bytes, pos, 4);
  pos += 4;
  if (pos + length > bytes.length) throw new TypeError("truncated Perch envelope");
  const topic = recentTopic.read(bytes, pos, pos += length);
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

/** One NATS message's bytes holding `envelopes` (their lengths summing to `bytes`), in order. */
export function encodeBatch(envelopes: readonly Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(1 + 4 * envelopes.length + bytes);
  out[0] = BATCH_VERSION;
  let pos = 1;
  for (const envelope of envelopes) {
    pos = putLength(out, pos, envelope.length, 4);
    out.set(envelope, pos);
    pos += envelope.length;
  }
  return out;
}

/**
 * How many envelopes one NATS message holds (1, or a batch's), read from the lengths alone;
 * a malformed batch counts what its lengths cover.
 */
export function envelopeCount(bytes: Uint8Array): number {
  if (bytes.length === 0 || bytes[0] !== BATCH_VERSION) return 1;
  let count = 0;
  for (let pos = 1; pos + 4 <= bytes.length; count++) pos += 4 + getLength(bytes, pos, 4);
  return count;
}

/**
 * The envelopes of one NATS message, a single one or a batch, in the order they were sent;
 * throws a TypeError for bytes that are neither (nothing of a malformed batch is returned).
 */
export function decodeEnvelopes(data: Uint8Array): Envelope[] {
  // A plain view: the NATS client's bytes are a Node Buffer, whose `subarray` per envelope
  // (and per payload) builds a Buffer.
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.length);
  if (bytes.length === 0 || bytes[0] !== BATCH_VERSION) return [decodeEnvelope(bytes)];
  const envelopes: Envelope[] = [];
  let pos = 1;
  while (pos < bytes.length) {
    if (pos + 4 > bytes.length) throw new TypeError("truncated Perch envelope batch");
    const length = getLength(bytes, pos, 4);
    pos += 4;
    if (pos + length > bytes.length) throw new TypeError("truncated Perch envelope batch");
    envelopes.push(decodeEnvelope(bytes.subarray(pos, pos += length)));
  }
  return envelopes;
}
