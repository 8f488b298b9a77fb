/**
 * Bytes a client or the sink collects while handling one read (acknowledgements, replies) and then
 * writes out together: one write per read instead of one per packet.
 *
 * @module
 */

import { ACK_LENGTH, type AckType, PacketType } from "./mqtt_packets.ts";

/** A growable byte buffer for outgoing packets. */
export class WriteBuffer {
  #bytes: Uint8Array;
  #length = 0;

  /** @param capacity Initial size in bytes (grows as needed). */
  constructor(capacity = 1024) {
    this.#bytes = new Uint8Array(capacity);
  }

  /** Bytes collected so far. */
  get length(): number {
    return this.#length;
  }

  /**
   * Appends an acknowledgement packet.
   *
   * @param type PUBACK, PUBREC, PUBREL (written with its mandatory flags 0b0010) or PUBCOMP.
   * @param packetId The packet id being acknowledged.
   */
  ack(type: AckType, packetId: number): void {
    const offset = this.#reserve(ACK_LENGTH);
    this.#bytes[offset] = (type << 4) | (type === PacketType.pubrel ? 0x02 : 0);
    this.#bytes[offset + 1] = 2;
    this.#bytes[offset + 2] = packetId >> 8;
    this.#bytes[offset + 3] = packetId & 0xff;
  }

  /**
   * Appends raw bytes.
   *
   * @param bytes The bytes.
   */
  append(bytes: ArrayLike<number>): void {
    const offset = this.#reserve(bytes.length); // May replace #bytes: reserve before using it.
    this.#bytes.set(bytes, offset);
  }

  /** @returns A copy of the collected bytes; the buffer is empty afterwards. */
  take(): Uint8Array {
    const bytes = this.#bytes.slice(0, this.#length);
    this.#length = 0;
    return bytes;
  }

  #reserve(count: number): number {
    const offset = this.#length;
    if (offset + count > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(offset + count, this.#bytes.length * 2));
      grown.set(this.#bytes.subarray(0, offset));
      this.#bytes = grown;
    }
    this.#length = offset + count;
    return offset;
  }
}
