import assert from "node:assert";
import { binaryDataSize, MAX_BINARY_DATA_BYTES, writeBinaryData } from "../../src/codec/binary.ts";

Deno.test("binaryDataSize() counts the two-byte length", () => {
  assert.strictEqual(binaryDataSize(new Uint8Array(0)), 2);
  assert.strictEqual(binaryDataSize(new Uint8Array(300)), 302);
  assert.strictEqual(binaryDataSize(new Uint8Array(MAX_BINARY_DATA_BYTES)), 65_537);
});

Deno.test("binaryDataSize() rejects more than 65,535 bytes", () => {
  assert.throws(() => binaryDataSize(new Uint8Array(65_536)), RangeError);
});

Deno.test("writeBinaryData() writes the length then the bytes", () => {
  const data = new Uint8Array(300).map((_, i) => i);
  const buf = new Uint8Array(1 + binaryDataSize(data));
  assert.strictEqual(writeBinaryData(buf, 1, data), buf.length);
  assert.deepStrictEqual(buf.subarray(1, 3), new Uint8Array([0x01, 0x2c]));
  assert.deepStrictEqual(buf.subarray(3), data);
});
