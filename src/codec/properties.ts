/**
 * MQTT 5 properties (section 2.2.2): the table of all 27 properties and the code that decodes and
 * encodes a property block for a given packet type (or the will properties of CONNECT).
 *
 * Decoding follows the grammar only: an unknown property, a property not allowed in the packet
 * (section 2.2.2.2) or a value running past the block is a Malformed Packet (0x81); a second
 * occurrence of a property that may appear once is a Protocol Error (0x82), as every property's
 * description in section 3 states. Checks of property values (for example Receive Maximum 0) live
 * in `validate.ts`.
 *
 * @module
 */

import { PACKET_TYPE_NAMES } from "./_names.ts";
import { binaryDataSize, writeBinaryData } from "./binary.ts";
import { malformed, protocolError } from "./errors.ts";
import { PacketType, type Properties } from "./packets.ts";
import { decodeUtf8, utf8StringSize, writeUtf8String } from "./utf8.ts";
import { decodeVarByteInt, varByteIntLength, writeVarByteInt } from "./vbi.ts";

/** Property identifiers (MQTT 5.0 section 2.2.2.2, table 2-4). */
export const PropertyId = {
  PayloadFormatIndicator: 0x01,
  MessageExpiryInterval: 0x02,
  ContentType: 0x03,
  ResponseTopic: 0x08,
  CorrelationData: 0x09,
  SubscriptionIdentifier: 0x0b,
  SessionExpiryInterval: 0x11,
  AssignedClientIdentifier: 0x12,
  ServerKeepAlive: 0x13,
  AuthenticationMethod: 0x15,
  AuthenticationData: 0x16,
  RequestProblemInformation: 0x17,
  WillDelayInterval: 0x18,
  RequestResponseInformation: 0x19,
  ResponseInformation: 0x1a,
  ServerReference: 0x1c,
  ReasonString: 0x1f,
  ReceiveMaximum: 0x21,
  TopicAliasMaximum: 0x22,
  TopicAlias: 0x23,
  MaximumQoS: 0x24,
  RetainAvailable: 0x25,
  UserProperty: 0x26,
  MaximumPacketSize: 0x27,
  WildcardSubscriptionAvailable: 0x28,
  SubscriptionIdentifierAvailable: 0x29,
  SharedSubscriptionAvailable: 0x2a,
} as const;
export type PropertyId = typeof PropertyId[keyof typeof PropertyId];

/** Property value encodings (MQTT 5.0 section 1.5). */
export const PropertyDataType = {
  Byte: 1,
  TwoByteInteger: 2,
  FourByteInteger: 3,
  VarByteInteger: 4,
  Utf8String: 5,
  BinaryData: 6,
  Utf8StringPair: 7,
} as const;
export type PropertyDataType = typeof PropertyDataType[keyof typeof PropertyDataType];

/** The property context of the will properties in CONNECT (no packet type is 0). */
export const WILL_PROPERTIES = 0;

/** Where a property block sits: a packet type, or {@linkcode WILL_PROPERTIES}. */
export type PropertyContext = PacketType | typeof WILL_PROPERTIES;

/** One row of the property table. */
export interface PropertyDefinition {
  /** The identifier on the wire. */
  readonly id: PropertyId;
  /** The field of {@linkcode Properties} that carries the value. */
  readonly name: keyof Properties;
  /** The value encoding. */
  readonly type: PropertyDataType;
  /** The packets (and will properties) the property may appear in. */
  readonly contexts: readonly PropertyContext[];
  /** The contexts where it may appear more than once; its field is then an array. */
  readonly repeatableIn: readonly PropertyContext[];
}

const P = PacketType;
const T = PropertyDataType;
const W = WILL_PROPERTIES;
const EVERY_PACKET_WITH_PROPERTIES: readonly PropertyContext[] = [
  P.CONNECT,
  P.CONNACK,
  P.PUBLISH,
  W,
  P.PUBACK,
  P.PUBREC,
  P.PUBREL,
  P.PUBCOMP,
  P.SUBSCRIBE,
  P.SUBACK,
  P.UNSUBSCRIBE,
  P.UNSUBACK,
  P.DISCONNECT,
  P.AUTH,
];

/** All MQTT 5 properties, in identifier order (the order the encoder writes them in). */
export const PROPERTY_DEFINITIONS: readonly PropertyDefinition[] = [
  row(0x01, "payloadFormatIndicator", T.Byte, [P.PUBLISH, W]),
  row(0x02, "messageExpiryInterval", T.FourByteInteger, [P.PUBLISH, W]),
  row(0x03, "contentType", T.Utf8String, [P.PUBLISH, W]),
  row(0x08, "responseTopic", T.Utf8String, [P.PUBLISH, W]),
  row(0x09, "correlationData", T.BinaryData, [P.PUBLISH, W]),
  // Several in a PUBLISH sent to a client [MQTT-3.3.4-4]; one in SUBSCRIBE (section 3.8.2.1.2).
  row(0x0b, "subscriptionIdentifiers", T.VarByteInteger, [P.PUBLISH, P.SUBSCRIBE], [P.PUBLISH]),
  row(0x11, "sessionExpiryInterval", T.FourByteInteger, [P.CONNECT, P.CONNACK, P.DISCONNECT]),
  row(0x12, "assignedClientIdentifier", T.Utf8String, [P.CONNACK]),
  row(0x13, "serverKeepAlive", T.TwoByteInteger, [P.CONNACK]),
  row(0x15, "authenticationMethod", T.Utf8String, [P.CONNECT, P.CONNACK, P.AUTH]),
  row(0x16, "authenticationData", T.BinaryData, [P.CONNECT, P.CONNACK, P.AUTH]),
  row(0x17, "requestProblemInformation", T.Byte, [P.CONNECT]),
  row(0x18, "willDelayInterval", T.FourByteInteger, [W]),
  row(0x19, "requestResponseInformation", T.Byte, [P.CONNECT]),
  row(0x1a, "responseInformation", T.Utf8String, [P.CONNACK]),
  row(0x1c, "serverReference", T.Utf8String, [P.CONNACK, P.DISCONNECT]),
  row(0x1f, "reasonString", T.Utf8String, [
    P.CONNACK,
    P.PUBACK,
    P.PUBREC,
    P.PUBREL,
    P.PUBCOMP,
    P.SUBACK,
    P.UNSUBACK,
    P.DISCONNECT,
    P.AUTH,
  ]),
  row(0x21, "receiveMaximum", T.TwoByteInteger, [P.CONNECT, P.CONNACK]),
  row(0x22, "topicAliasMaximum", T.TwoByteInteger, [P.CONNECT, P.CONNACK]),
  row(0x23, "topicAlias", T.TwoByteInteger, [P.PUBLISH]),
  row(0x24, "maximumQos", T.Byte, [P.CONNACK]),
  row(0x25, "retainAvailable", T.Byte, [P.CONNACK]),
  // The order of user properties is significant and duplicates are allowed [MQTT-3.3.2-18].
  row(
    0x26,
    "userProperties",
    T.Utf8StringPair,
    EVERY_PACKET_WITH_PROPERTIES,
    EVERY_PACKET_WITH_PROPERTIES,
  ),
  row(0x27, "maximumPacketSize", T.FourByteInteger, [P.CONNECT, P.CONNACK]),
  row(0x28, "wildcardSubscriptionAvailable", T.Byte, [P.CONNACK]),
  row(0x29, "subscriptionIdentifiersAvailable", T.Byte, [P.CONNACK]),
  row(0x2a, "sharedSubscriptionAvailable", T.Byte, [P.CONNACK]),
];

function row(
  id: PropertyId,
  name: keyof Properties,
  type: PropertyDataType,
  contexts: readonly PropertyContext[],
  repeatableIn: readonly PropertyContext[] = [],
): PropertyDefinition {
  return { id, name, type, contexts, repeatableIn };
}

/** The table in the shape the hot loops want: masks of `1 << context` and an array flag. */
interface CompiledDefinition {
  readonly id: number;
  readonly name: string;
  readonly type: PropertyDataType;
  readonly allowedMask: number;
  readonly repeatableMask: number;
  /** True when the `Properties` field is an array (user properties, subscription identifiers). */
  readonly isArray: boolean;
}

function mask(contexts: readonly PropertyContext[]): number {
  let bits = 0;
  for (const context of contexts) bits |= 1 << context;
  return bits;
}

const COMPILED: readonly CompiledDefinition[] = PROPERTY_DEFINITIONS.map((def) => ({
  id: def.id,
  name: def.name,
  type: def.type,
  allowedMask: mask(def.contexts),
  repeatableMask: mask(def.repeatableIn),
  isArray: def.repeatableIn.length > 0,
}));

const BY_ID: readonly (CompiledDefinition | undefined)[] = Array.from(
  { length: 0x2b },
  (_, id) => COMPILED.find((def) => def.id === id),
);

/** Per context, the properties allowed there, in identifier order. */
const BY_CONTEXT: readonly (readonly CompiledDefinition[])[] = Array.from(
  { length: 16 },
  (_, context) => COMPILED.filter((def) => (def.allowedMask & (1 << context)) !== 0),
);

/** Names for messages: the packet type, or "will properties" for context 0. */
function contextName(context: PropertyContext): string {
  return context === WILL_PROPERTIES ? "will properties" : PACKET_TYPE_NAMES[context];
}

/**
 * Decodes the property list `buf[start..end)` (after the Property Length) found in `context`.
 * String and binary values are validated; binary values are views into `buf`.
 *
 * @param buf The source bytes.
 * @param start Where the first property identifier is.
 * @param end Where the property list ends (exclusive), as given by the Property Length.
 * @param context The packet type, or {@linkcode WILL_PROPERTIES}.
 * @returns The properties; fields of absent properties are left out.
 * @throws {MqttError} Malformed Packet (0x81) for an unknown property, a property not allowed in
 * `context` or a value past `end`; Protocol Error (0x82) for a duplicate single-use property.
 */
export function decodeProperties(
  buf: Uint8Array,
  start: number,
  end: number,
  context: PropertyContext,
): Properties {
  const props: Record<string, unknown> = {};
  const bit = 1 << context;
  let pos = start;
  while (pos < end) {
    // Identifiers are Variable Byte Integers; all defined ones fit one byte, so a byte with the
    // continuation bit set can only start an unknown identifier.
    const id = buf[pos++];
    const def = BY_ID[id];
    if (def === undefined) {
      throw malformed(`Invalid ${contextName(context)}: unknown property 0x${hex(id)}`);
    }
    if ((def.allowedMask & bit) === 0) {
      throw malformed(
        `Invalid ${contextName(context)}: property ${def.name} (0x${hex(id)}) is not allowed`,
      );
    }
    let value: number | string | Uint8Array | [string, string];
    switch (def.type) {
      case T.Byte:
        if (pos + 1 > end) throw overrun(context, def);
        value = buf[pos];
        pos += 1;
        break;
      case T.TwoByteInteger:
        if (pos + 2 > end) throw overrun(context, def);
        value = (buf[pos] << 8) | buf[pos + 1];
        pos += 2;
        break;
      case T.FourByteInteger:
        if (pos + 4 > end) throw overrun(context, def);
        value = buf[pos] * 0x100_0000 + ((buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]);
        pos += 4;
        break;
      case T.VarByteInteger:
        value = decodeVarByteInt(buf, pos, end);
        if (value < 0) throw overrun(context, def);
        pos += varByteIntLength(value);
        break;
      case T.Utf8String: {
        const valueEnd = fieldEnd(buf, pos, end, context, def);
        value = decodeUtf8(buf, pos + 2, valueEnd);
        pos = valueEnd;
        break;
      }
      case T.BinaryData: {
        const valueEnd = fieldEnd(buf, pos, end, context, def);
        value = buf.subarray(pos + 2, valueEnd);
        pos = valueEnd;
        break;
      }
      default: {
        const nameEnd = fieldEnd(buf, pos, end, context, def);
        const valueEnd = fieldEnd(buf, nameEnd, end, context, def);
        value = [decodeUtf8(buf, pos + 2, nameEnd), decodeUtf8(buf, nameEnd + 2, valueEnd)];
        pos = valueEnd;
      }
    }
    const previous = props[def.name];
    if (previous === undefined) {
      props[def.name] = def.isArray ? [value] : value;
    } else if ((def.repeatableMask & bit) !== 0) {
      (previous as unknown[]).push(value);
    } else {
      throw protocolError(
        `Invalid ${contextName(context)}: property ${def.name} (0x${hex(id)}) appears twice`,
      );
    }
  }
  return props as Properties;
}

/**
 * Returns the byte length of the property list of `props` in `context`, without the Property
 * Length itself. Fields of properties not allowed in `context` are not counted (nor written).
 *
 * @param props The properties, or `undefined` for none.
 * @param context The packet type, or {@linkcode WILL_PROPERTIES}.
 * @returns The Property Length to write.
 * @throws {RangeError} When a string or binary value is longer than 65,535 bytes, or a
 * subscription identifier is out of range.
 */
export function propertiesLength(props: Properties | undefined, context: PropertyContext): number {
  if (props === undefined) return 0;
  const fields = props as Record<string, unknown>;
  let length = 0;
  for (const def of BY_CONTEXT[context]) {
    const value = fields[def.name];
    if (value === undefined) continue;
    if (def.isArray) {
      for (const item of value as unknown[]) length += 1 + valueSize(def.type, item);
    } else {
      length += 1 + valueSize(def.type, value);
    }
  }
  return length;
}

/**
 * Writes the Property Length and the property list of `props` in `context` at `offset`.
 *
 * @param buf The destination.
 * @param offset Where to write the Property Length.
 * @param props The properties, or `undefined` for none.
 * @param context The packet type, or {@linkcode WILL_PROPERTIES}.
 * @param length The value {@linkcode propertiesLength} returned for the same arguments.
 * @returns The offset just past the written bytes.
 */
export function writeProperties(
  buf: Uint8Array,
  offset: number,
  props: Properties | undefined,
  context: PropertyContext,
  length: number,
): number {
  let pos = writeVarByteInt(buf, offset, length);
  if (props === undefined) return pos;
  const fields = props as Record<string, unknown>;
  for (const def of BY_CONTEXT[context]) {
    const value = fields[def.name];
    if (value === undefined) continue;
    if (def.isArray) {
      for (const item of value as unknown[]) pos = writeValue(buf, pos, def, item);
    } else {
      pos = writeValue(buf, pos, def, value);
    }
  }
  return pos;
}

function valueSize(type: PropertyDataType, value: unknown): number {
  switch (type) {
    case T.Byte:
      return 1;
    case T.TwoByteInteger:
      return 2;
    case T.FourByteInteger:
      return 4;
    case T.VarByteInteger:
      return varByteIntLength(value as number);
    case T.Utf8String:
      return utf8StringSize(value as string);
    case T.BinaryData:
      return binaryDataSize(value as Uint8Array);
    default: {
      const [name, text] = value as [string, string];
      return utf8StringSize(name) + utf8StringSize(text);
    }
  }
}

function writeValue(buf: Uint8Array, pos: number, def: CompiledDefinition, value: unknown): number {
  buf[pos++] = def.id;
  switch (def.type) {
    case T.Byte:
      buf[pos] = value as number;
      return pos + 1;
    case T.TwoByteInteger:
      buf[pos] = (value as number) >> 8;
      buf[pos + 1] = value as number;
      return pos + 2;
    case T.FourByteInteger: {
      const n = value as number;
      buf[pos] = n >>> 24;
      buf[pos + 1] = n >>> 16;
      buf[pos + 2] = n >>> 8;
      buf[pos + 3] = n;
      return pos + 4;
    }
    case T.VarByteInteger:
      return writeVarByteInt(buf, pos, value as number);
    case T.Utf8String:
      return writeUtf8String(buf, pos, value as string);
    case T.BinaryData:
      return writeBinaryData(buf, pos, value as Uint8Array);
    default: {
      const [name, text] = value as [string, string];
      return writeUtf8String(buf, writeUtf8String(buf, pos, name), text);
    }
  }
}

/** Checks the two-byte length at `pos` and returns where the field ends. */
function fieldEnd(
  buf: Uint8Array,
  pos: number,
  end: number,
  context: PropertyContext,
  def: CompiledDefinition,
): number {
  if (pos + 2 > end) throw overrun(context, def);
  const fieldEnd = pos + 2 + ((buf[pos] << 8) | buf[pos + 1]);
  if (fieldEnd > end) throw overrun(context, def);
  return fieldEnd;
}

function overrun(context: PropertyContext, def: CompiledDefinition) {
  return malformed(
    `Invalid ${contextName(context)}: property ${def.name} (0x${
      hex(def.id)
    }) runs past the property length`,
  );
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
