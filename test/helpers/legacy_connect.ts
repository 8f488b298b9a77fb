/**
 * CONNECT packets as smq's agent library writes them: a 3.1.1 (or 3.1) CONNECT whose payload is
 * followed by a two-byte length and JSON host facts, built byte by byte so tests can also send
 * broken trailers.
 *
 * @module
 */

const encoder = new TextEncoder();

function utf8String(text: string): number[] {
  const bytes = encoder.encode(text);
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
}

function remainingLength(length: number): number[] {
  const out: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    out.push(byte);
  } while (length > 0);
  return out;
}

/** The trailer smq's library sends: a two-byte length and the bytes (`00 00` for none). */
export function trailerOf(json: string | Uint8Array): Uint8Array {
  const bytes = typeof json === "string" ? encoder.encode(json) : json;
  return new Uint8Array([bytes.length >> 8, bytes.length & 0xff, ...bytes]);
}

/** A CONNECT with `trailer` after its payload (clean session, keep alive 60 unless given). */
export function legacyConnect(
  clientId: string,
  trailer: Uint8Array,
  options: { username?: string; keepAlive?: number; level?: 3 | 4 } = {},
): Uint8Array {
  const level = options.level ?? 4;
  const keepAlive = options.keepAlive ?? 60;
  const flags = 0x02 | (options.username === undefined ? 0 : 0x80);
  const body = [
    ...utf8String(level === 3 ? "MQIsdp" : "MQTT"),
    level,
    flags,
    keepAlive >> 8,
    keepAlive & 0xff,
    ...utf8String(clientId),
    ...(options.username === undefined ? [] : utf8String(options.username)),
    ...trailer,
  ];
  return new Uint8Array([0x10, ...remainingLength(body.length), ...body]);
}
