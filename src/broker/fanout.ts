/**
 * Encode-once fan-out: the PUBLISH bytes of one message are built once per wire shape (protocol
 * 3.1.1 or 5, QoS, RETAIN) and shared by every subscriber with that shape; QoS 1/2 copies get only
 * their packet identifier patched.
 *
 * @module
 */

import { encodePacket, PacketType, utf8ByteLength } from "../codec/mod.ts";
import type { QoS } from "../codec/packets.ts";
import type { Message } from "../backbone/backbone.ts";

/** Shapes per message: 2 protocol families x 3 QoS x 2 RETAIN. */
const SHAPES = 12;

/** Caches the encoded shapes of the message being routed. */
export class FanoutEncoder {
  #message: Message | undefined = undefined;
  #shapes: (Uint8Array | undefined)[] = new Array(SHAPES).fill(undefined);
  #topicBytes = -1;

  /**
   * The PUBLISH bytes of `message` for a subscriber without per-subscriber properties. Only valid
   * for messages without an expiry (whose properties would change with time).
   */
  encode(message: Message, v5: boolean, qos: QoS, retain: boolean, packetId: number): Uint8Array {
    if (message !== this.#message) {
      this.#message = message;
      this.#shapes.fill(undefined);
      this.#topicBytes = -1;
    }
    const slot = (v5 ? 6 : 0) + qos * 2 + (retain ? 1 : 0);
    let bytes = this.#shapes[slot];
    if (bytes === undefined) {
      bytes = encodePacket({
        type: PacketType.PUBLISH,
        dup: false,
        qos,
        retain,
        topic: message.topic,
        packetId: qos === 0 ? 0 : packetId,
        properties: v5 ? message.properties : undefined,
        payload: message.payload,
      }, v5 ? 5 : 4);
      this.#shapes[slot] = bytes;
      if (qos === 0) return bytes;
    } else if (qos === 0) return bytes;
    else bytes = bytes.slice();
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
