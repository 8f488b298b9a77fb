import assert from "node:assert";
import {
  decodeVarByteInt,
  MAX_VAR_BYTE_INT,
  varByteIntLength,
  writeVarByteInt,
} from "../../src/codec/vbi.ts";
import { assertMqttError } from "./_assert.ts";

/** Boundary values with their encodings (MQTT 5.0 section 1.5.5, table 1-1). */
const BOUNDARIES: [number, number[]][] = [
  [0, [0x00]],
  [127, [0x7f]],
  [128, [0x80, 0x01]],
  [16_383, [0xff, 0x7f]],
  [16_384, [0x80, 0x80, 0x01]],
  [2_097_151, [0xff, 0xff, 0x7f]],
  [2_097_152, [0x80, 0x80, 0x80, 0x01]],
  [268_435_455, [0xff, 0xff, 0xff, 0x7f]],
];

for (const [value, encoded] of BOUNDARIES) {
  const size = `${encoded.length} byte${encoded.length === 1 ? "" : "s"}`;

  Deno.test(`writeVarByteInt() encodes ${value} in ${size} [MQTT-1.5.5-1]`, () => {
    assert.strictEqual(varByteIntLength(value), encoded.length);
    const buf = new Uint8Array(6);
    assert.strictEqual(writeVarByteInt(buf, 1, value), 1 + encoded.length);
    assert.deepStrictEqual([...buf.subarray(1, 1 + encoded.length)], encoded);
  });

  Deno.test(`decodeVarByteInt() decodes ${size} to ${value}`, () => {
    const buf = new Uint8Array([0xaa, ...encoded, 0xbb]);
    assert.strictEqual(decodeVarByteInt(buf, 1, buf.length), value);
  });

  Deno.test(`decodeVarByteInt() asks for more bytes while ${value} is incomplete`, () => {
    const buf = new Uint8Array(encoded);
    for (let end = 0; end < encoded.length; end++) {
      assert.strictEqual(decodeVarByteInt(buf, 0, end), -1);
    }
  });
}

Deno.test("MAX_VAR_BYTE_INT is 268,435,455", () => {
  assert.strictEqual(MAX_VAR_BYTE_INT, 268_435_455);
});

Deno.test("varByteIntLength() rejects 268,435,456 and negative values", () => {
  assert.throws(() => varByteIntLength(268_435_456), RangeError);
  assert.throws(() => varByteIntLength(-1), RangeError);
  assert.throws(() => varByteIntLength(-200), RangeError);
  assert.throws(() => varByteIntLength(Number.NaN), RangeError);
});

Deno.test("writeVarByteInt() rejects 268,435,456", () => {
  assert.throws(() => writeVarByteInt(new Uint8Array(5), 0, 268_435_456), RangeError);
  assert.throws(() => writeVarByteInt(new Uint8Array(5), 0, -1), RangeError);
});

Deno.test("decodeVarByteInt() rejects a 5th byte [MQTT-1.5.5-1]", () => {
  const buf = new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x01]);
  assertMqttError(() => decodeVarByteInt(buf, 0, buf.length), 0x81);
  // Known as soon as the fourth byte has its continuation bit set.
  assertMqttError(() => decodeVarByteInt(buf, 0, 4), 0x81);
});

Deno.test("decodeVarByteInt() rejects encodings longer than necessary [MQTT-1.5.5-1]", () => {
  for (
    const encoded of [[0x80, 0x00], [0xff, 0x00], [0x80, 0x80, 0x00], [0x81, 0x80, 0x80, 0x00]]
  ) {
    const buf = new Uint8Array(encoded);
    assertMqttError(() => decodeVarByteInt(buf, 0, buf.length), 0x81);
  }
});

Deno.test("decodeVarByteInt() round-trips every 7-bit boundary and samples between", () => {
  const buf = new Uint8Array(4);
  for (let value = 0; value <= MAX_VAR_BYTE_INT; value = value * 3 + 1) {
    const end = writeVarByteInt(buf, 0, value);
    assert.strictEqual(end, varByteIntLength(value));
    assert.strictEqual(decodeVarByteInt(buf, 0, end), value);
  }
});
