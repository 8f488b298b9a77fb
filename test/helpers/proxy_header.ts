/**
 * PROXY protocol version 2 headers built byte by byte for tests.
 *
 * @module
 */

/** The version 2 signature. */
export const PROXY_V2_SIGNATURE = [
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
];

/** A version 2 header: signature, version/command, family/transport, length, block. */
export function v2Header(command: number, family: number, block: number[]): Uint8Array {
  return new Uint8Array([
    ...PROXY_V2_SIGNATURE,
    0x20 | command,
    family,
    block.length >> 8,
    block.length & 0xff,
    ...block,
  ]);
}
