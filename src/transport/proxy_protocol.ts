/**
 * The PROXY protocol header (HAProxy's specification, versions 1 and 2) that a TCP load balancer
 * sends before the client's bytes, carrying the client's real address. Pure: the listener feeds it
 * the bytes read so far and it answers "need more", "header of N bytes from this address" or
 * "invalid"; it never reads beyond the header's own bounds.
 *
 * @module
 */

import ipaddr from "ipaddr.js";

/** A version 1 header is at most 107 bytes, CRLF included. */
export const MAX_V1_HEADER_BYTES = 107;
/** Default bound on a version 2 header's address-and-TLV block (the format allows 65,535). */
export const DEFAULT_MAX_V2_BLOCK_BYTES = 4096;

/** The version 2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
const V2_SIGNATURE = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);
const V2_FIXED_BYTES = 16;
const V1_PREFIX = new TextEncoder().encode("PROXY ");

/** The address the balancer received the connection from. */
export interface ProxiedSource {
  address: string;
  port: number;
}

/** The outcome of {@linkcode parseProxyHeader}. */
export type ProxyHeaderResult =
  /** More bytes are needed to tell. */
  | { kind: "incomplete" }
  /**
   * A complete header of `length` bytes; `source` is undefined for a LOCAL command (a health
   * check by the balancer itself) or an UNKNOWN/unspecified family: the socket's address stands.
   */
  | { kind: "header"; length: number; source: ProxiedSource | undefined }
  | { kind: "invalid"; reason: string };

const INCOMPLETE: ProxyHeaderResult = { kind: "incomplete" };

/** Options of {@linkcode parseProxyHeader}. */
export interface ProxyParseOptions {
  /** Largest version 2 address-and-TLV block accepted. */
  maxV2BlockBytes?: number;
}

/**
 * Parses a PROXY protocol header (v1 text or v2 binary) at the start of `bytes`.
 *
 * @param bytes Everything received on the connection so far
 * @returns Whether a header is complete, and if so its length and the client's address
 */
export function parseProxyHeader(
  bytes: Uint8Array,
  options: ProxyParseOptions = {},
): ProxyHeaderResult {
  if (startsWithPrefixOf(bytes, V2_SIGNATURE)) {
    return bytes.length < V2_SIGNATURE.length ? INCOMPLETE : parseV2(bytes, options);
  }
  if (startsWithPrefixOf(bytes, V1_PREFIX)) {
    return bytes.length < V1_PREFIX.length ? INCOMPLETE : parseV1(bytes);
  }
  return { kind: "invalid", reason: "no PROXY protocol header" };
}

/** True when `bytes` and `prefix` agree on their common length. */
function startsWithPrefixOf(bytes: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(bytes.length, prefix.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

function parseV1(bytes: Uint8Array): ProxyHeaderResult {
  const limit = Math.min(bytes.length, MAX_V1_HEADER_BYTES);
  let end = -1;
  for (let i = V1_PREFIX.length; i < limit - 1; i++) {
    if (bytes[i] === 0x0d && bytes[i + 1] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end === -1) {
    return bytes.length >= MAX_V1_HEADER_BYTES
      ? { kind: "invalid", reason: "version 1 header longer than 107 bytes" }
      : INCOMPLETE;
  }
  const length = end + 2;
  const line = String.fromCharCode(...bytes.subarray(0, end));
  const fields = line.split(" ");
  if (fields[1] === "UNKNOWN") return { kind: "header", length, source: undefined };
  if (fields.length !== 6 || (fields[1] !== "TCP4" && fields[1] !== "TCP6")) {
    return { kind: "invalid", reason: `malformed version 1 header "${line}"` };
  }
  const [, family, source, destination, sourcePort, destinationPort] = fields;
  const kind = family === "TCP4" ? "ipv4" : "ipv6";
  for (const address of [source, destination]) {
    if (!ipaddr.isValid(address) || ipaddr.parse(address).kind() !== kind) {
      return { kind: "invalid", reason: `bad ${family} address "${address}"` };
    }
  }
  for (const port of [sourcePort, destinationPort]) {
    if (!/^(0|[1-9]\d{0,4})$/.test(port) || Number(port) > 65535) {
      return { kind: "invalid", reason: `bad port "${port}"` };
    }
  }
  return {
    kind: "header",
    length,
    source: { address: ipaddr.parse(source).toString(), port: Number(sourcePort) },
  };
}

const Command = { Local: 0x0, Proxy: 0x1 } as const;
const Family = { Unspecified: 0x0, Inet: 0x1, Inet6: 0x2, Unix: 0x3 } as const;
/** Address block sizes by family: two addresses and two ports (Unix: two 108-byte paths). */
const ADDRESS_BYTES: Record<number, number> = {
  [Family.Unspecified]: 0,
  [Family.Inet]: 12,
  [Family.Inet6]: 36,
  [Family.Unix]: 216,
};

function parseV2(bytes: Uint8Array, options: ProxyParseOptions): ProxyHeaderResult {
  if (bytes.length < V2_FIXED_BYTES) return INCOMPLETE;
  const versionCommand = bytes[12];
  if (versionCommand >> 4 !== 2) {
    return { kind: "invalid", reason: `unsupported version ${versionCommand >> 4}` };
  }
  const command = versionCommand & 0x0f;
  if (command !== Command.Local && command !== Command.Proxy) {
    return { kind: "invalid", reason: `unknown command ${command}` };
  }
  const family = bytes[13] >> 4;
  const blockBytes = (bytes[14] << 8) | bytes[15];
  const maxBlock = options.maxV2BlockBytes ?? DEFAULT_MAX_V2_BLOCK_BYTES;
  if (blockBytes > maxBlock) {
    return { kind: "invalid", reason: `version 2 header block of ${blockBytes} bytes` };
  }
  const length = V2_FIXED_BYTES + blockBytes;
  if (bytes.length < length) return INCOMPLETE;
  if (command === Command.Local) return { kind: "header", length, source: undefined };
  const needed = ADDRESS_BYTES[family];
  if (needed === undefined) return { kind: "invalid", reason: `unknown address family ${family}` };
  if (blockBytes < needed) {
    return { kind: "invalid", reason: "version 2 address block is too short" };
  }
  const block = bytes.subarray(V2_FIXED_BYTES, length);
  if (family === Family.Inet) {
    const port = (block[8] << 8) | block[9];
    return {
      kind: "header",
      length,
      source: { address: ipaddr.fromByteArray([...block.subarray(0, 4)]).toString(), port },
    };
  }
  if (family === Family.Inet6) {
    const port = (block[32] << 8) | block[33];
    const address = ipaddr.process(ipaddr.fromByteArray([...block.subarray(0, 16)]).toString());
    return { kind: "header", length, source: { address: address.toString(), port } };
  }
  // Unspecified or a Unix socket path: no IP to report, keep the socket's address.
  return { kind: "header", length, source: undefined };
}
