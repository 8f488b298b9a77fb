/**
 * Variable Byte Integers (MQTT 5.0 section 1.5.5; the Remaining Length of MQTT 3.1.1 section
 * 2.2.3), with plain numbers: values fit in 28 bits, so 32-bit bit operations are exact.
 *
 * Decoding rejects encodings that are longer than necessary in every protocol version. MQTT 5.0
 * makes the minimal encoding a MUST [MQTT-1.5.5-1]; MQTT 3.1.1 only shows the minimal algorithm,
 * and no known client sends anything else. The payoff is that a decoded value alone tells how many
 * bytes it used (`varByteIntLength(value)`), so decoding returns one number and allocates nothing.
 *
 * @module
 */

import { malformed } from "./errors.ts";

/** The largest value a Variable Byte Integer can carry (four bytes). */
export const MAX_VAR_BYTE_INT = 268_435_455;

/**
 * Returns how many bytes (1 to 4) encode `n` as a Variable Byte Integer.
 *
 * @param n An integer from 0 to {@linkcode MAX_VAR_BYTE_INT}.
 * @returns The encoded length in bytes.
 * @throws {RangeError} When `n` is out of range.
 */
export function varByteIntLength(n: number): number {
  if (n < 0x80 && n >= 0) return 1;
  if (n < 0x4000) return n >= 0 ? 2 : outOfRange(n);
  if (n < 0x20_0000) return 3;
  if (n <= MAX_VAR_BYTE_INT) return 4;
  return outOfRange(n);
}

/**
 * Writes `n` as a Variable Byte Integer at `offset`.
 *
 * @param buf The destination; it must have room for `varByteIntLength(n)` bytes.
 * @param offset Where to write.
 * @param n An integer from 0 to {@linkcode MAX_VAR_BYTE_INT}.
 * @returns The offset just past the written bytes.
 * @throws {RangeError} When `n` is out of range.
 */
export function writeVarByteInt(buf: Uint8Array, offset: number, n: number): number {
  if (!(n >= 0 && n <= MAX_VAR_BYTE_INT)) outOfRange(n);
  while (n >= 0x80) {
    buf[offset++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[offset++] = n;
  return offset;
}

/**
 * Reads a Variable Byte Integer from `buf[offset..end)`.
 *
 * The caller advances by `varByteIntLength(value)`, which equals the bytes read because
 * non-minimal encodings are rejected.
 *
 * @param buf The source bytes.
 * @param offset Where the integer starts.
 * @param end Where the readable bytes end (exclusive).
 * @returns The value, or -1 when the bytes end before the last byte of the integer.
 * @throws {MqttError} Malformed Packet (0x81) when a fourth byte still has its continuation bit
 * set, or when the encoding is longer than necessary [MQTT-1.5.5-1].
 */
export function decodeVarByteInt(buf: Uint8Array, offset: number, end: number): number {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    if (offset + i >= end) return -1;
    const byte = buf[offset + i];
    value |= (byte & 0x7f) << (7 * i);
    if (byte < 0x80) {
      // A last byte of 0 after a continuation adds nothing: a longer encoding than needed.
      if (byte === 0 && i > 0) {
        throw malformed(`Invalid variable byte integer: ${i + 1} bytes encode ${value}`);
      }
      return value;
    }
  }
  throw malformed("Invalid variable byte integer: more than 4 bytes");
}

function outOfRange(n: number): never {
  throw new RangeError(
    `Cannot encode variable byte integer: ${n} is outside 0..${MAX_VAR_BYTE_INT}`,
  );
}
