/**
 * A minimal streaming reader: splits the bytes of a connection into whole MQTT packets and hands each
 * to a callback as a view into its own buffer, so nothing is allocated per packet.
 *
 * @module
 */

/**
 * Receives one whole packet. `bytes[start, end)` is the variable header plus payload; the views are only
 * valid during the call.
 */
export type PacketHandler = (
  header: number,
  bytes: Uint8Array,
  view: DataView,
  start: number,
  end: number,
) => void;

const MAX_VAR_BYTE_INT_LENGTH = 4;

/** Reads MQTT packets from a connection into a reused (and, for big packets, grown) buffer. */
export class PacketReader {
  #bytes: Uint8Array;
  #view: DataView;
  #length = 0;

  /** @param size Initial buffer size in bytes. */
  constructor(size = 256 * 1024) {
    this.#bytes = new Uint8Array(size);
    this.#view = new DataView(this.#bytes.buffer);
  }

  /**
   * Reads once from `conn` and dispatches every complete packet.
   *
   * @param conn The connection to read from.
   * @param onPacket Called for each complete packet, in order.
   * @returns The number of bytes read, or `null` at end of stream.
   */
  async readFrom(conn: Deno.Conn, onPacket: PacketHandler): Promise<number | null> {
    if (this.#length === this.#bytes.length) this.#grow();
    const count = await conn.read(this.#bytes.subarray(this.#length));
    if (count === null) return null;
    this.#length += count;
    this.#dispatch(onPacket);
    return count;
  }

  #dispatch(onPacket: PacketHandler): void {
    const bytes = this.#bytes;
    const length = this.#length;
    let position = 0;
    while (position + 2 <= length) {
      let remaining = 0;
      let multiplier = 1;
      let index = position + 1;
      let byte = 0x80;
      while ((byte & 0x80) !== 0 && index < length) {
        if (index - position > MAX_VAR_BYTE_INT_LENGTH) {
          throw new RangeError("Cannot read packet: remaining length exceeds 4 bytes");
        }
        byte = bytes[index++];
        remaining += (byte & 0x7f) * multiplier;
        multiplier *= 128;
      }
      if ((byte & 0x80) !== 0 || index + remaining > length) break;
      onPacket(bytes[position], bytes, this.#view, index, index + remaining);
      position = index + remaining;
    }
    if (position > 0) {
      bytes.copyWithin(0, position, length);
      this.#length = length - position;
    }
  }

  #grow(): void {
    const bigger = new Uint8Array(this.#bytes.length * 2);
    bigger.set(this.#bytes);
    this.#bytes = bigger;
    this.#view = new DataView(bigger.buffer);
  }
}
