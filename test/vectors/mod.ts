/**
 * Byte-level test vectors shared by the codec tests and the broker tests, and the helpers that
 * build them. Each {@linkcode PacketCase} is a complete packet as it appears on the wire, written
 * field by field so that a reader can check it against the specification.
 *
 * @module
 */

import type {
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  ProtocolVersion,
  PubAckLikePacket,
  PublishPacket,
  SubackPacket,
  SubscribePacket,
  Subscription,
  UnsubackPacket,
  UnsubscribePacket,
} from "../../src/codec/mod.ts";

/** One packet on the wire and what a receiver must make of it. */
export interface PacketCase {
  /** Unique identifier, prefixed with the protocol: "v311-publish-qos1", "v5-auth-continue". */
  id: string;
  /** What the vector shows. */
  desc: string;
  /** The protocol version in force when the packet is received. */
  version: ProtocolVersion;
  /** The whole packet, fixed header included. */
  bytes: Uint8Array;
  /** What `bytes` decodes to; absent when decoding fails. */
  packet?: Packet;
  /** The reason code decoding throws with; absent when decoding succeeds. */
  error?: number;
  /** The reason code `validatePacket` returns for `packet`: it decodes, but a server refuses it. */
  validationError?: number;
  /** The bytes the encoder writes for `packet` when `bytes` is legal but not the shortest form. */
  reencoded?: Uint8Array;
  /** The normative statements (or sections) the vector exercises. */
  spec?: string;
}

/** A field of a vector: a byte, bytes, or text written as raw UTF-8 bytes (no length prefix). */
export type Field = number | readonly number[] | string | Uint8Array;

/** Concatenates fields into bytes. */
export function bytes(...fields: Field[]): Uint8Array {
  const out: number[] = [];
  for (const field of fields) {
    if (typeof field === "number") out.push(field);
    else if (typeof field === "string") out.push(...new TextEncoder().encode(field));
    else out.push(...field);
  }
  return new Uint8Array(out);
}

/**
 * A whole packet: the first byte, the remaining length (computed from the body fields, encoded
 * here independently of the codec), then the body.
 */
export function frame(header: number, ...body: Field[]): Uint8Array {
  const content = bytes(...body);
  const length: number[] = [];
  let n = content.length;
  do {
    length.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return bytes(header, length, content);
}

/** A two-byte big-endian integer. */
export function u16(n: number): number[] {
  return [n >> 8, n & 0xff];
}

/** A four-byte big-endian integer. */
export function u32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** A UTF-8 Encoded String: two-byte length, then the UTF-8 bytes. */
export function str(text: string): number[] {
  const encoded = new TextEncoder().encode(text);
  return [...u16(encoded.length), ...encoded];
}

/** Binary Data: two-byte length, then the bytes (a string stands for its UTF-8 bytes). */
export function bin(data: string | readonly number[]): number[] {
  const encoded = typeof data === "string" ? [...new TextEncoder().encode(data)] : [...data];
  return [...u16(encoded.length), ...encoded];
}

/** MQTT 5 properties block: Property Length (one byte, enough for vectors) and the properties. */
export function props(...fields: Field[]): number[] {
  const content = bytes(...fields);
  if (content.length > 127) throw new RangeError("Vector properties must stay under 128 bytes");
  return [content.length, ...content];
}

/** The UTF-8 bytes of `text`, for payloads and binary values in expected packets. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** A CONNECT with defaults, fields in declaration order. */
export function connect(fields: Partial<Omit<ConnectPacket, "type">> = {}): ConnectPacket {
  return {
    type: 1,
    protocolName: fields.protocolName ?? "MQTT",
    protocolVersion: fields.protocolVersion ?? 4,
    cleanStart: fields.cleanStart ?? true,
    keepAlive: fields.keepAlive ?? 60,
    clientId: fields.clientId ?? "c",
    username: fields.username,
    password: fields.password,
    will: fields.will,
    properties: fields.properties,
  };
}

/** A CONNACK with defaults. */
export function connack(fields: Partial<Omit<ConnackPacket, "type">> = {}): ConnackPacket {
  return {
    type: 2,
    sessionPresent: fields.sessionPresent ?? false,
    reasonCode: fields.reasonCode ?? 0,
    properties: fields.properties,
  };
}

/** A PUBLISH with defaults (QoS 0 to "a/b", empty payload). */
export function publish(fields: Partial<Omit<PublishPacket, "type">> = {}): PublishPacket {
  return {
    type: 3,
    dup: fields.dup ?? false,
    qos: fields.qos ?? 0,
    retain: fields.retain ?? false,
    topic: fields.topic ?? "a/b",
    packetId: fields.packetId ?? 0,
    properties: fields.properties,
    payload: fields.payload ?? new Uint8Array(0),
  };
}

/** A PUBACK, PUBREC, PUBREL or PUBCOMP. */
export function ack<T extends 4 | 5 | 6 | 7>(
  type: T,
  packetId: number,
  reasonCode = 0,
  properties: PubAckLikePacket<T>["properties"] = undefined,
): PubAckLikePacket<T> {
  return { type, packetId, reasonCode, properties };
}

/** A subscription with 3.1.1 defaults for the MQTT 5 options. */
export function subscription(
  filter: string,
  qos: Subscription["qos"],
  options: Partial<Omit<Subscription, "filter" | "qos">> = {},
): Subscription {
  return {
    filter,
    qos,
    noLocal: options.noLocal ?? false,
    retainAsPublished: options.retainAsPublished ?? false,
    retainHandling: options.retainHandling ?? 0,
  };
}

/** A SUBSCRIBE. */
export function subscribe(
  packetId: number,
  subscriptions: Subscription[],
  properties: SubscribePacket["properties"] = undefined,
): SubscribePacket {
  return { type: 8, packetId, subscriptions, properties };
}

/** A SUBACK. */
export function suback(
  packetId: number,
  reasonCodes: number[],
  properties: SubackPacket["properties"] = undefined,
): SubackPacket {
  return { type: 9, packetId, reasonCodes, properties };
}

/** An UNSUBSCRIBE. */
export function unsubscribe(
  packetId: number,
  filters: string[],
  properties: UnsubscribePacket["properties"] = undefined,
): UnsubscribePacket {
  return { type: 10, packetId, filters, properties };
}

/** An UNSUBACK. */
export function unsuback(
  packetId: number,
  reasonCodes: number[] = [],
  properties: UnsubackPacket["properties"] = undefined,
): UnsubackPacket {
  return { type: 11, packetId, reasonCodes, properties };
}

/** A DISCONNECT. */
export function disconnect(
  reasonCode = 0,
  properties: DisconnectPacket["properties"] = undefined,
): DisconnectPacket {
  return { type: 14, reasonCode, properties };
}

/** An AUTH. */
export function auth(
  reasonCode = 0,
  properties: AuthPacket["properties"] = undefined,
): AuthPacket {
  return { type: 15, reasonCode, properties };
}
