/**
 * A message payload three ways: UTF-8 text, pretty-printed JSON and a hex dump. No DOM here: the
 * tests run these under Deno.
 *
 * @module
 */

/** Bytes of a hex dump at most: past that the dump says how much it left out. */
export const HEX_DUMP_LIMIT = 16 * 1024;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Base64 (as the API sends payloads) to bytes. */
export function base64ToBytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The payload as text, or undefined when it is not valid UTF-8. */
export function textOf(bytes) {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** The text pretty-printed as JSON, or undefined when it is not JSON. */
export function prettyJson(text) {
  if (text === undefined || text.trim() === "") return undefined;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return undefined;
  }
}

/**
 * `offset  16 bytes in hex  |printable ASCII|` lines, like `hexdump -C`, for at most
 * {@link HEX_DUMP_LIMIT} bytes.
 */
export function hexDump(bytes) {
  const shown = bytes.subarray(0, HEX_DUMP_LIMIT);
  const lines = [];
  for (let offset = 0; offset < shown.length; offset += 16) {
    const row = shown.subarray(offset, offset + 16);
    const hex = [...row].map((byte) => byte.toString(16).padStart(2, "0"));
    const left = hex.slice(0, 8).join(" ");
    const right = hex.slice(8).join(" ");
    const ascii = [...row].map((byte) =>
      byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : "."
    )
      .join("");
    lines.push(
      `${offset.toString(16).padStart(8, "0")}  ${left.padEnd(23)}  ${
        right.padEnd(23)
      }  |${ascii}|`,
    );
  }
  if (bytes.length > shown.length) {
    lines.push(`… ${bytes.length - shown.length} more bytes not shown`);
  }
  return lines.join("\n");
}

/** The view that suits a payload best: JSON when it parses, text when UTF-8, else hex. */
export function bestView(bytes) {
  const text = textOf(bytes);
  if (prettyJson(text) !== undefined) return "json";
  return text === undefined ? "hex" : "text";
}
