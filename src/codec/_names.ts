/**
 * Packet type names for error messages, indexed by packet type (0 is the reserved type).
 *
 * @module
 */

export const PACKET_TYPE_NAMES: readonly string[] = [
  "reserved packet type 0",
  "CONNECT",
  "CONNACK",
  "PUBLISH",
  "PUBACK",
  "PUBREC",
  "PUBREL",
  "PUBCOMP",
  "SUBSCRIBE",
  "SUBACK",
  "UNSUBSCRIBE",
  "UNSUBACK",
  "PINGREQ",
  "PINGRESP",
  "DISCONNECT",
  "AUTH",
];
