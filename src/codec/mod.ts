/**
 * The MQTT 3.1.1 and 5.0 codec: packet shapes, a streaming decoder, per-type decoders, encoders
 * and validators. Pure: no I/O, no timers, no runtime APIs.
 *
 * A connection feeds transport chunks to a {@linkcode PacketDecoder}, checks each packet with
 * {@linkcode validatePacket} and writes the bytes from {@linkcode encodePacket}. Errors are
 * {@linkcode MqttError}s carrying the MQTT 5 reason code to answer with.
 *
 * @example Decode, validate, answer
 * ```ts
 * import { encodePacket, PacketDecoder, PacketType, validatePacket } from "./mod.ts";
 *
 * const decoder = new PacketDecoder({
 *   onPacket(packet) {
 *     const error = validatePacket(packet, decoder.protocolVersion);
 *     if (error !== undefined) return false;
 *     if (packet.type === PacketType.PINGREQ) {
 *       const reply = encodePacket({ type: PacketType.PINGRESP }, decoder.protocolVersion);
 *       console.log(reply); // Uint8Array(2) [ 208, 0 ]
 *     }
 *   },
 * }, { maximumPacketSize: 1024 * 1024 });
 * decoder.push(new Uint8Array([0xc0, 0x00]));
 * ```
 *
 * @module
 */

export {
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
  type UserProperty,
  type Will,
} from "./packets.ts";
export {
  ConnackReturnCode,
  connackReturnCodeFor311,
  ReasonCode,
  reasonCodeName,
  SubackFailure311,
} from "./reason_codes.ts";
export { malformed, MqttError, protocolError } from "./errors.ts";
export { type DecoderOptions, PacketDecoder, type PacketHandler } from "./decoder.ts";
export {
  type ConnectWithTrailingData,
  decodeAuth,
  decodeConnack,
  decodeConnect,
  decodeConnectWithTrailingData,
  decodeDisconnect,
  decodePacket,
  decodePingreq,
  decodePingresp,
  decodePuback,
  decodePubcomp,
  decodePublish,
  decodePubrec,
  decodePubrel,
  decodeSuback,
  decodeSubscribe,
  decodeUnsuback,
  decodeUnsubscribe,
} from "./decode.ts";
export {
  encodeAuth,
  encodeConnack,
  encodeConnect,
  encodeDisconnect,
  type EncodeOptions,
  encodePacket,
  encodePubAckLike,
  encodePublish,
  encodePublishHeader,
  encodeSuback,
  encodeSubscribe,
  encodeUnsuback,
  encodeUnsubscribe,
  publishPacketIdOffset,
  setPublishPacketId,
} from "./encode.ts";
export {
  validateAuth,
  validateConnect,
  validateDisconnect,
  validatePacket,
  validatePubAckLike,
  validatePublish,
  validateSubscribe,
  validateUnsubscribe,
} from "./validate.ts";
export {
  PROPERTY_DEFINITIONS,
  type PropertyContext,
  PropertyDataType,
  type PropertyDefinition,
  PropertyId,
  WILL_PROPERTIES,
} from "./properties.ts";
export {
  type BufferAllocator,
  SlabAllocator,
  type SlabAllocatorOptions,
} from "./slab_allocator.ts";
export { MAX_VAR_BYTE_INT } from "./vbi.ts";
export { MAX_UTF8_STRING_BYTES, utf8ByteLength } from "./utf8.ts";
