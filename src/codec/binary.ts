/**
 * Binary Data (MQTT 5.0 section 1.5.6; the will message and password of MQTT 3.1.1): a two-byte
 * length followed by at most 65,535 bytes.
 *
 * @module
 */

/** The most bytes a Binary Data field may hold (its length prefix is two bytes). */
export const MAX_BINARY_DATA_BYTES = 65_535;

/**
 * Returns the size of `data` as Binary Data: the two-byte length plus the bytes.
 *
 * @param data The bytes to measure.
 * @returns The encoded size in bytes.
 * @throws {RangeError} When `data` is longer than 65,535 bytes.
 */
export function binaryDataSize(data: Uint8Array): number {
  if (data.length > MAX_BINARY_DATA_BYTES) {
    throw new RangeError(
      `Cannot encode binary data: ${data.length} bytes exceeds ${MAX_BINARY_DATA_BYTES}`,
    );
  }
  return 2 + data.length;
}

/**
 * Writes `data` as Binary Data at `offset`. The caller sized `buf` with
 * {@linkcode binaryDataSize}.
 *
 * @param buf The destination.
 * @param offset Where to write the length prefix.
 * @param data The bytes to write.
 * @returns The offset just past the written bytes.
 */
export function writeBinaryData(buf: Uint8Array, offset: number, data: Uint8Array): number {
  buf[offset] = data.length >> 8;
  buf[offset + 1] = data.length & 0xff;
  buf.set(data, offset + 2);
  return offset + 2 + data.length;
}
