/**
 * UTF-8 Encoded Strings (MQTT 5.0 section 1.5.4, MQTT 3.1.1 section 1.5.3): a two-byte length
 * followed by at most 65,535 bytes of well-formed UTF-8 without U+0000.
 *
 * Topic names are short and almost always ASCII, so both directions scan for ASCII first and use
 * `TextDecoder`/`TextEncoder` only for non-ASCII text or long strings.
 *
 * @module
 */

import { malformed } from "./errors.ts";

/** The most bytes a UTF-8 Encoded String may hold (its length prefix is two bytes). */
export const MAX_UTF8_STRING_BYTES = 65_535;

/**
 * ASCII strings up to this many bytes are built with `String.fromCharCode`; longer ones by
 * `TextDecoder`, whose fixed cost per call is higher.
 */
const ASCII_CHAR_CODE_MAX = 64;

// `fatal` turns ill-formed UTF-8 (including encoded surrogates and overlong forms) into an
// exception; `ignoreBOM` keeps a leading U+FEFF, which a receiver MUST NOT strip [MQTT-1.5.4-3]
// (3.1.1: [MQTT-1.5.3-3]). The fatal decoder costs over twice as much per call in Deno, so bytes
// already known to be ASCII go to the lenient one, which decodes ASCII identically.
const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const asciiDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const encoder = new TextEncoder();

/**
 * Decodes and validates the UTF-8 bytes `buf[start..end)` (without the length prefix).
 *
 * @param buf The source bytes.
 * @param start Where the string bytes start.
 * @param end Where they end (exclusive).
 * @returns The decoded string.
 * @throws {MqttError} Malformed Packet (0x81) for ill-formed UTF-8 or an encoded surrogate
 * [MQTT-1.5.4-1] (3.1.1: [MQTT-1.5.3-1]), or for U+0000 [MQTT-1.5.4-2] (3.1.1: [MQTT-1.5.3-2]).
 */
export function decodeUtf8(buf: Uint8Array, start: number, end: number): string {
  let i = start;
  let hash = end - start;
  while (i < end) {
    const byte = buf[i];
    if (byte === 0) throw nullCharacter();
    if (byte >= 0x80) break;
    hash = (hash * 31 + byte) | 0;
    i++;
  }
  if (i === end) {
    if (end - start > ASCII_CHAR_CODE_MAX) return asciiDecoder.decode(buf.subarray(start, end));
    const slot = hash & (RECENT_STRINGS - 1);
    const recent = recentStrings[slot];
    if (sameAscii(recent, buf, start, end)) return recent;
    const text = asciiString(buf, start, end);
    recentStrings[slot] = text;
    return text;
  }
  const view = buf.subarray(start, end);
  // U+0000 has no other well-formed encoding than the byte 0 (overlong forms fail `fatal`).
  if (view.includes(0)) throw nullCharacter();
  try {
    return fatalDecoder.decode(view);
  } catch {
    throw malformed("Invalid UTF-8 string: ill-formed UTF-8");
  }
}

/**
 * Short ASCII strings decoded lately (a publisher sends the same topic again and again), by a
 * hash of their bytes: a repeated one is compared, not built again. Building it cost a few
 * young strings per message, and a new string has to be hashed again by every map it is
 * looked up in (the subscription index, the per-topic caches). Strings are immutable, so handing
 * out the same one is the same as building an equal one.
 */
const RECENT_STRINGS = 256;
const recentStrings: string[] = new Array(RECENT_STRINGS).fill("");

/** Whether `text` is the ASCII bytes `buf[start..end)`. */
function sameAscii(text: string, buf: Uint8Array, start: number, end: number): boolean {
  if (text.length !== end - start) return false;
  for (let i = start, j = 0; i < end; i++, j++) {
    if (text.charCodeAt(j) !== buf[i]) return false;
  }
  return true;
}

/** Builds a string from ASCII bytes, 16 or 4 characters per `String.fromCharCode` call. */
function asciiString(buf: Uint8Array, start: number, end: number): string {
  let text = "";
  let i = start;
  for (; i + 16 <= end; i += 16) {
    text += String.fromCharCode(
      buf[i],
      buf[i + 1],
      buf[i + 2],
      buf[i + 3],
      buf[i + 4],
      buf[i + 5],
      buf[i + 6],
      buf[i + 7],
      buf[i + 8],
      buf[i + 9],
      buf[i + 10],
      buf[i + 11],
      buf[i + 12],
      buf[i + 13],
      buf[i + 14],
      buf[i + 15],
    );
  }
  for (; i + 4 <= end; i += 4) {
    text += String.fromCharCode(buf[i], buf[i + 1], buf[i + 2], buf[i + 3]);
  }
  for (; i < end; i++) text += String.fromCharCode(buf[i]);
  return text;
}

/**
 * Returns how many bytes `str` takes as UTF-8, without allocating. A lone surrogate counts as 3
 * bytes, the size of the U+FFFD that `TextEncoder` writes for it.
 *
 * @param str The string to measure.
 * @returns The UTF-8 byte length.
 */
export function utf8ByteLength(str: string): number {
  const length = str.length;
  let bytes = length;
  for (let i = 0; i < length; i++) {
    const c = str.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
    } else if (
      c >= 0xd800 && c <= 0xdbff && i + 1 < length &&
      (str.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      // A surrogate pair: two code units, four bytes.
      bytes += 2;
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

/**
 * Returns the size of `str` as a UTF-8 Encoded String: the two-byte length plus the UTF-8 bytes.
 *
 * @param str The string to measure.
 * @returns The encoded size in bytes.
 * @throws {RangeError} When the UTF-8 form exceeds 65,535 bytes.
 */
export function utf8StringSize(str: string): number {
  const bytes = utf8ByteLength(str);
  if (bytes > MAX_UTF8_STRING_BYTES) {
    throw new RangeError(
      `Cannot encode UTF-8 string: ${bytes} bytes exceeds ${MAX_UTF8_STRING_BYTES}`,
    );
  }
  return 2 + bytes;
}

/**
 * Writes `str` as a UTF-8 Encoded String (two-byte length, then the bytes) at `offset`. The
 * caller sized `buf` with {@linkcode utf8StringSize}, which also enforced the length limit.
 *
 * @param buf The destination.
 * @param offset Where to write the length prefix.
 * @param str The string to write.
 * @returns The offset just past the written bytes.
 */
export function writeUtf8String(buf: Uint8Array, offset: number, str: string): number {
  const length = str.length;
  let pos = offset + 2;
  let i = 0;
  for (; i < length; i++) {
    const c = str.charCodeAt(i);
    if (c >= 0x80) break;
    buf[pos++] = c;
  }
  if (i < length) {
    pos += encoder.encodeInto(i === 0 ? str : str.slice(i), buf.subarray(pos)).written;
  }
  const bytes = pos - offset - 2;
  buf[offset] = bytes >> 8;
  buf[offset + 1] = bytes & 0xff;
  return pos;
}

function nullCharacter() {
  return malformed("Invalid UTF-8 string: contains U+0000");
}

/**
 * Whether bytes are well-formed UTF-8 (RFC 3629), as a payload with Payload Format Indicator 1
 * must be (MQTT 5 section 3.3.2.3.2).
 *
 * @param bytes The payload.
 * @returns True when every byte sequence is well formed.
 */
export function isWellFormedUtf8(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] >= 0x80) {
      try {
        fatalDecoder.decode(bytes.subarray(i));
        return true;
      } catch {
        return false;
      }
    }
  }
  return true;
}
