import assert from "node:assert/strict";
import {
  DEFAULT_MAX_V2_BLOCK_BYTES,
  MAX_V1_HEADER_BYTES,
  parseProxyHeader,
} from "../../src/transport/proxy_protocol.ts";
import { PROXY_V2_SIGNATURE as SIGNATURE, v2Header } from "../helpers/proxy_header.ts";

const encoder = new TextEncoder();
const IPV4_BLOCK = [203, 0, 113, 7, 10, 0, 0, 1, 0xc3, 0x50, 0x07, 0x5b]; // :50000 -> :1883

Deno.test("parseProxyHeader() reads a version 1 TCP4 header and its length", () => {
  const bytes = encoder.encode("PROXY TCP4 203.0.113.7 10.0.0.1 50000 1883\r\n\x10");
  const result = parseProxyHeader(bytes);
  assert.deepEqual(result, {
    kind: "header",
    length: bytes.length - 1,
    source: { address: "203.0.113.7", port: 50000 },
  });
});

Deno.test("parseProxyHeader() reads a version 1 TCP6 header", () => {
  const bytes = encoder.encode("PROXY TCP6 2001:db8::7 2001:db8::1 4000 1883\r\n");
  assert.deepEqual(parseProxyHeader(bytes), {
    kind: "header",
    length: bytes.length,
    source: { address: "2001:db8::7", port: 4000 },
  });
});

Deno.test("parseProxyHeader() keeps the socket address for version 1 UNKNOWN", () => {
  const bytes = encoder.encode("PROXY UNKNOWN\r\n");
  assert.deepEqual(parseProxyHeader(bytes), { kind: "header", length: 15, source: undefined });
});

Deno.test("parseProxyHeader() asks for more bytes at every prefix of a valid header", () => {
  const headers = [
    encoder.encode("PROXY TCP4 203.0.113.7 10.0.0.1 50000 1883\r\n"),
    v2Header(1, 0x11, IPV4_BLOCK),
  ];
  for (const header of headers) {
    for (let n = 0; n < header.length; n++) {
      assert.equal(parseProxyHeader(header.subarray(0, n)).kind, "incomplete", `prefix ${n}`);
    }
    assert.equal(parseProxyHeader(header).kind, "header");
  }
});

Deno.test("parseProxyHeader() rejects malformed version 1 headers", () => {
  const cases = [
    "PROXY TCP4 203.0.113.7 10.0.0.1 50000\r\n", // missing a field
    "PROXY TCP5 203.0.113.7 10.0.0.1 50000 1883\r\n", // unknown family
    "PROXY TCP4 2001:db8::7 10.0.0.1 50000 1883\r\n", // IPv6 address under TCP4
    "PROXY TCP4 203.0.113.300 10.0.0.1 50000 1883\r\n", // not an address
    "PROXY TCP4 203.0.113.7 10.0.0.1 70000 1883\r\n", // port out of range
    "PROXY TCP4 203.0.113.7 10.0.0.1 050 1883\r\n", // leading zero
  ];
  for (const text of cases) {
    assert.equal(parseProxyHeader(encoder.encode(text)).kind, "invalid", text);
  }
});

Deno.test("parseProxyHeader() rejects a version 1 header without CRLF within 107 bytes", () => {
  const bytes = encoder.encode(`PROXY TCP4 ${"1".repeat(MAX_V1_HEADER_BYTES)}`);
  const result = parseProxyHeader(bytes);
  assert.equal(result.kind, "invalid");
});

Deno.test("parseProxyHeader() rejects bytes that start no header (e.g. an MQTT CONNECT)", () => {
  const result = parseProxyHeader(new Uint8Array([0x10, 0x0c, 0x00, 0x04]));
  assert.deepEqual(result, { kind: "invalid", reason: "no PROXY protocol header" });
});

Deno.test("parseProxyHeader() reads a version 2 PROXY header over IPv4, skipping TLVs", () => {
  const tlv = [0x04, 0x00, 0x02, 0xaa, 0xbb]; // PP2_TYPE_NOOP with 2 bytes
  const header = v2Header(1, 0x11, [...IPV4_BLOCK, ...tlv]);
  const bytes = new Uint8Array([...header, 0x10, 0x20]);
  assert.deepEqual(parseProxyHeader(bytes), {
    kind: "header",
    length: header.length,
    source: { address: "203.0.113.7", port: 50000 },
  });
});

Deno.test("parseProxyHeader() reads a version 2 PROXY header over IPv6", () => {
  const source = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 0x07];
  const destination = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 0x01];
  const header = v2Header(1, 0x21, [...source, ...destination, 0x0f, 0xa0, 0x07, 0x5b]);
  assert.deepEqual(parseProxyHeader(header), {
    kind: "header",
    length: header.length,
    source: { address: "2001:db8::7", port: 4000 },
  });
});

Deno.test("parseProxyHeader() keeps the socket address for a version 2 LOCAL command", () => {
  const header = v2Header(0, 0x00, []);
  assert.deepEqual(parseProxyHeader(header), { kind: "header", length: 16, source: undefined });
});

Deno.test("parseProxyHeader() rejects bad version 2 headers", () => {
  const badVersion = v2Header(1, 0x11, IPV4_BLOCK);
  badVersion[12] = 0x11;
  const badCommand = v2Header(2, 0x11, IPV4_BLOCK);
  const badFamily = v2Header(1, 0x41, IPV4_BLOCK);
  const shortBlock = v2Header(1, 0x21, IPV4_BLOCK); // IPv6 needs 36 bytes
  for (const bytes of [badVersion, badCommand, badFamily, shortBlock]) {
    assert.equal(parseProxyHeader(bytes).kind, "invalid");
  }
});

Deno.test("parseProxyHeader() refuses a version 2 block beyond its bound before reading it", () => {
  const announced = new Uint8Array([...SIGNATURE, 0x21, 0x11, 0xff, 0xff]);
  const result = parseProxyHeader(announced);
  assert.equal(result.kind, "invalid");
  assert.ok(DEFAULT_MAX_V2_BLOCK_BYTES < 0xffff);
  assert.equal(parseProxyHeader(announced, { maxV2BlockBytes: 0xffff }).kind, "incomplete");
});
