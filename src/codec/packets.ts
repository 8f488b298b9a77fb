/**
 * MQTT control packet shapes shared by the decoder, the encoders and the broker.
 *
 * One interface per packet type, discriminated by `type`. Every field is always present (absent
 * optional values are `undefined`) so that V8 sees one stable shape per packet type.
 *
 * @module
 */

/** Control packet types (MQTT 3.1.1 section 2.2.1, MQTT 5.0 section 2.1.2). */
export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const;
export type PacketType = typeof PacketType[keyof typeof PacketType];

/** Protocol levels: 3 is MQTT 3.1 ("MQIsdp"), 4 is MQTT 3.1.1, 5 is MQTT 5.0. */
export type ProtocolVersion = 3 | 4 | 5;

/** Quality of service levels. */
export type QoS = 0 | 1 | 2;

/** A user property name/value pair; order and duplicates are significant [MQTT-3.3.2-18]. */
export type UserProperty = [name: string, value: string];

/**
 * MQTT 5 properties. A packet carries `undefined` instead of an object when it has none (always so
 * under protocol levels 3 and 4). Byte-valued flags stay numbers so validation can reject values
 * other than 0 and 1 with a Protocol Error.
 */
export interface Properties {
  /** 0x01, byte: 0 unspecified bytes, 1 UTF-8. PUBLISH, Will. */
  payloadFormatIndicator?: number;
  /** 0x02, four-byte integer, seconds. PUBLISH, Will. */
  messageExpiryInterval?: number;
  /** 0x03, UTF-8 string. PUBLISH, Will. */
  contentType?: string;
  /** 0x08, UTF-8 string (a topic name). PUBLISH, Will. */
  responseTopic?: string;
  /** 0x09, binary data. PUBLISH, Will. */
  correlationData?: Uint8Array;
  /** 0x0B, variable byte integer 1..268,435,455. Several in PUBLISH, one in SUBSCRIBE. */
  subscriptionIdentifiers?: number[];
  /** 0x11, four-byte integer, seconds. CONNECT, CONNACK, DISCONNECT. */
  sessionExpiryInterval?: number;
  /** 0x12, UTF-8 string. CONNACK. */
  assignedClientIdentifier?: string;
  /** 0x13, two-byte integer, seconds. CONNACK. */
  serverKeepAlive?: number;
  /** 0x15, UTF-8 string. CONNECT, CONNACK, AUTH. */
  authenticationMethod?: string;
  /** 0x16, binary data. CONNECT, CONNACK, AUTH. */
  authenticationData?: Uint8Array;
  /** 0x17, byte. CONNECT. */
  requestProblemInformation?: number;
  /** 0x18, four-byte integer, seconds. Will. */
  willDelayInterval?: number;
  /** 0x19, byte. CONNECT. */
  requestResponseInformation?: number;
  /** 0x1A, UTF-8 string. CONNACK. */
  responseInformation?: string;
  /** 0x1C, UTF-8 string. CONNACK, DISCONNECT. */
  serverReference?: string;
  /** 0x1F, UTF-8 string. CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH. */
  reasonString?: string;
  /** 0x21, two-byte integer 1..65535. CONNECT, CONNACK. */
  receiveMaximum?: number;
  /** 0x22, two-byte integer. CONNECT, CONNACK. */
  topicAliasMaximum?: number;
  /** 0x23, two-byte integer 1..65535. PUBLISH. */
  topicAlias?: number;
  /** 0x24, byte 0 or 1. CONNACK. */
  maximumQos?: number;
  /** 0x25, byte. CONNACK. */
  retainAvailable?: number;
  /** 0x26, UTF-8 string pair, repeatable. Every packet with properties, and Will. */
  userProperties?: UserProperty[];
  /** 0x27, four-byte integer 1..2^32-1. CONNECT, CONNACK. */
  maximumPacketSize?: number;
  /** 0x28, byte. CONNACK. */
  wildcardSubscriptionAvailable?: number;
  /** 0x29, byte. CONNACK. */
  subscriptionIdentifiersAvailable?: number;
  /** 0x2A, byte. CONNACK. */
  sharedSubscriptionAvailable?: number;
}

/** The will message carried by CONNECT. */
export interface Will {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  /** MQTT 5 will properties, `undefined` when none. */
  properties: Properties | undefined;
}

export interface ConnectPacket {
  type: typeof PacketType.CONNECT;
  /** "MQTT" for levels 4 and 5, "MQIsdp" for level 3. */
  protocolName: string;
  protocolVersion: ProtocolVersion;
  /** Clean Session (3.1.1) or Clean Start (5.0). */
  cleanStart: boolean;
  /** Seconds; 0 disables keep alive. */
  keepAlive: number;
  clientId: string;
  username: string | undefined;
  password: Uint8Array | undefined;
  will: Will | undefined;
  properties: Properties | undefined;
}

export interface ConnackPacket {
  type: typeof PacketType.CONNACK;
  sessionPresent: boolean;
  /** MQTT 5 reason code, or the 3.1.1 return code (0..5). */
  reasonCode: number;
  properties: Properties | undefined;
}

export interface PublishPacket {
  type: typeof PacketType.PUBLISH;
  dup: boolean;
  qos: QoS;
  retain: boolean;
  /** May be "" in MQTT 5 when a topic alias is set. */
  topic: string;
  /** 0 for QoS 0 (no packet identifier on the wire). */
  packetId: number;
  properties: Properties | undefined;
  /** A view into the read chunk after decoding; copy it before keeping it past the current turn. */
  payload: Uint8Array;
}

/** PUBACK, PUBREC, PUBREL and PUBCOMP share one shape. */
export interface PubAckLikePacket<T extends PacketType> {
  type: T;
  packetId: number;
  /** 0 (Success) when absent on the wire, and always 0 under 3.1.1. */
  reasonCode: number;
  properties: Properties | undefined;
}
export type PubackPacket = PubAckLikePacket<typeof PacketType.PUBACK>;
export type PubrecPacket = PubAckLikePacket<typeof PacketType.PUBREC>;
export type PubrelPacket = PubAckLikePacket<typeof PacketType.PUBREL>;
export type PubcompPacket = PubAckLikePacket<typeof PacketType.PUBCOMP>;

/** One topic filter with its subscription options. */
export interface Subscription {
  filter: string;
  /** Maximum QoS requested. */
  qos: QoS;
  /** MQTT 5 No Local; false under 3.1.1. */
  noLocal: boolean;
  /** MQTT 5 Retain As Published; false under 3.1.1. */
  retainAsPublished: boolean;
  /** MQTT 5 Retain Handling 0, 1 or 2; 0 under 3.1.1. */
  retainHandling: 0 | 1 | 2;
}

export interface SubscribePacket {
  type: typeof PacketType.SUBSCRIBE;
  packetId: number;
  subscriptions: Subscription[];
  properties: Properties | undefined;
}

export interface SubackPacket {
  type: typeof PacketType.SUBACK;
  packetId: number;
  /** One per requested filter: granted QoS (0..2) or a failure code (0x80 and up). */
  reasonCodes: number[];
  properties: Properties | undefined;
}

export interface UnsubscribePacket {
  type: typeof PacketType.UNSUBSCRIBE;
  packetId: number;
  filters: string[];
  properties: Properties | undefined;
}

export interface UnsubackPacket {
  type: typeof PacketType.UNSUBACK;
  packetId: number;
  /** One per filter under MQTT 5; empty under 3.1.1 (the packet has no payload there). */
  reasonCodes: number[];
  properties: Properties | undefined;
}

export interface PingreqPacket {
  type: typeof PacketType.PINGREQ;
}

export interface PingrespPacket {
  type: typeof PacketType.PINGRESP;
}

export interface DisconnectPacket {
  type: typeof PacketType.DISCONNECT;
  /** 0 (Normal disconnection) when absent, and always 0 under 3.1.1. */
  reasonCode: number;
  properties: Properties | undefined;
}

export interface AuthPacket {
  type: typeof PacketType.AUTH;
  /** 0x00 Success, 0x18 Continue authentication, 0x19 Re-authenticate. */
  reasonCode: number;
  properties: Properties | undefined;
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | PubackPacket
  | PubrecPacket
  | PubrelPacket
  | PubcompPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket;
