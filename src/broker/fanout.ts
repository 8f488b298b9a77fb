/**
 * Encode-once fan-out: the PUBLISH bytes of one message are built once per wire shape (protocol
 * 3.1.1 or 5, QoS, RETAIN) and shared by every subscriber with that shape; QoS 1/2 copies get only
 * their packet identifier patched.
 *
 * @module
 */

import { type EncodeOptions, encodePacket, PacketType, utf8ByteLength } from "../codec/mod.ts";
import type { PublishPacket, QoS } from "../codec/packets.ts";
import type { Message } from "../backbone/backbone.ts";

const NO_PAYLOAD = new Uint8Array(0);

/** Shapes per message: 2 protocol families x 3 QoS x 2 RETAIN. */
const SHAPES = 12;

/** Caches the encoded shapes of the message being routed. */
export class FanoutEncoder {
  #options: EncodeOptions;
  #message: Message | undefined = undefined;
  #shapes: (Uint8Array | undefined)[] = new Array(SHAPES).fill(undefined);
  #topicBytes = -1;
  /**
   * The packet handed to the encoder, filled in for each encoding and emptied after: a packet
   * object per delivery was a good part of what a QoS 1/2 delivery allocated.
   */
  #packet: PublishPacket = {
    type: PacketType.PUBLISH,
    dup: false,
    qos: 0,
    retain: false,
    topic: "",
    packetId: 0,
    properties: undefined,
    payload: NO_PAYLOAD,
  };

  /** @param options Where encoded buffers come from (a shared slab allocator). */
  constructor(options: EncodeOptions = {}) {
    this.#options = options;
  }

  /**
   * The PUBLISH bytes of `message` for a subscriber without per-subscriber properties. Only valid
   * for messages without an expiry (whose properties would change with time). The bytes returned
   * are never modified afterwards, so they may be written as they are.
   */
  encode(message: Message, v5: boolean, qos: QoS, retain: boolean, packetId: number): Uint8Array {
    const frame = message.frame;
    // A QoS 0 message forwarded as it came: no encoding at all.
    if (frame !== undefined && qos === 0 && !retain && frame.v5 === v5) return frame.bytes;
    if (message !== this.#message) {
      this.#message = message;
      const shapes = this.#shapes;
      for (let i = 0; i < SHAPES; i++) shapes[i] = undefined;
      this.#topicBytes = -1;
    }
    const slot = (v5 ? 6 : 0) + qos * 2 + (retain ? 1 : 0);
    const shape = this.#shapes[slot];
    if (shape === undefined) {
      // The first subscriber of a shape gets the encoded bytes themselves, with its packet id;
      // later ones copy them and patch their own (the cached bytes are never changed again).
      const packet = this.#packet;
      packet.qos = qos;
      packet.retain = retain;
      packet.topic = message.topic;
      packet.packetId = qos === 0 ? 0 : packetId;
      packet.properties = v5 ? message.properties : undefined;
      packet.payload = message.payload;
      const bytes = encodePacket(packet, v5 ? 5 : 4, this.#options);
      // Nothing of the message is kept alive by the packet.
      packet.topic = "";
      packet.properties = undefined;
      packet.payload = NO_PAYLOAD;
      this.#shapes[slot] = bytes;
      return bytes;
    }
    if (qos === 0) return shape;
    const allocator = this.#options.allocator;
    let bytes: Uint8Array;
    if (allocator === undefined) bytes = shape.slice();
    else {
      bytes = allocator.allocate(shape.length);
      bytes.set(shape);
    }
    // Fixed header byte, remaining length, topic length prefix and topic, then the packet id.
    let offset = 1;
    while (bytes[offset] & 0x80) offset++;
    if (this.#topicBytes < 0) this.#topicBytes = utf8ByteLength(message.topic);
    offset += 3 + this.#topicBytes;
    bytes[offset] = packetId >> 8;
    bytes[offset + 1] = packetId & 0xff;
    return bytes;
  }
}
