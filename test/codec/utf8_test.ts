import assert from "node:assert";
import {
  decodeUtf8,
  MAX_UTF8_STRING_BYTES,
  utf8ByteLength,
  utf8StringSize,
  writeUtf8String,
} from "../../src/codec/utf8.ts";
import { assertMqttError } from "./_assert.ts";

const encoder = new TextEncoder();

/** Strings that cover the ASCII loop, the fallback, and 1- to 4-byte characters. */
const SAMPLES = [
  "",
  "a",
  "a/b/c",
  "abc",
  "abcdefghijklmnop",
  "abcdefghijklmnopqrstu",
  "x".repeat(64),
  "x".repeat(65),
  "x".repeat(1000),
  "é",
  "température/€",
  "😀",
  "mixed/ascii/then/ü/and/😀/and/more/ascii/after/the/32/byte/mark",
  "\ufeffbom",
];

for (const text of SAMPLES) {
  const label = text.length > 20 ? `${text.slice(0, 20)}... (${text.length} units)` : text;

  Deno.test(`decodeUtf8() decodes "${label}"`, () => {
    const bytes = encoder.encode(text);
    const buf = new Uint8Array([0xff, ...bytes, 0xff]);
    assert.strictEqual(decodeUtf8(buf, 1, 1 + bytes.length), text);
  });

  Deno.test(`utf8ByteLength() matches TextEncoder for "${label}"`, () => {
    assert.strictEqual(utf8ByteLength(text), encoder.encode(text).length);
  });

  Deno.test(`writeUtf8String() writes "${label}" with its length prefix`, () => {
    const bytes = encoder.encode(text);
    const size = utf8StringSize(text);
    assert.strictEqual(size, 2 + bytes.length);
    const buf = new Uint8Array(size + 2);
    assert.strictEqual(writeUtf8String(buf, 1, text), 1 + size);
    assert.deepStrictEqual(buf.subarray(1, 3), new Uint8Array([bytes.length >> 8, bytes.length]));
    assert.deepStrictEqual(buf.subarray(3, 3 + bytes.length), bytes);
  });
}

Deno.test("decodeUtf8() keeps a leading U+FEFF [MQTT-1.5.4-3]", () => {
  const buf = new Uint8Array([0xef, 0xbb, 0xbf, 0x61]);
  assert.strictEqual(decodeUtf8(buf, 0, buf.length), "\ufeffa");
  // Also on the long path, where TextDecoder would strip it by default.
  const long = new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode("b".repeat(40))]);
  assert.strictEqual(decodeUtf8(long, 0, long.length), `\ufeff${"b".repeat(40)}`);
});

Deno.test("decodeUtf8() rejects U+0000 in short and long strings [MQTT-1.5.4-2]", () => {
  for (const bytes of [[0x00], [0x61, 0x00], [...encoder.encode("x".repeat(40)), 0x00]]) {
    const buf = new Uint8Array(bytes);
    assertMqttError(() => decodeUtf8(buf, 0, buf.length), 0x81);
  }
  // After a non-ASCII character, the fallback path finds it too.
  const mixed = new Uint8Array([0xc3, 0xa9, 0x00]);
  assertMqttError(() => decodeUtf8(mixed, 0, mixed.length), 0x81);
});

Deno.test("decodeUtf8() rejects ill-formed UTF-8 [MQTT-1.5.4-1]", () => {
  const illFormed = [
    [0xc3, 0x28], // bad continuation
    [0xff], // never valid
    [0xc0, 0xaf], // overlong '/'
    [0xc0, 0x80], // overlong U+0000
    [0xe2, 0x82], // truncated 3-byte sequence
    [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
    [0x80], // lone continuation byte
  ];
  for (const bytes of illFormed) {
    const buf = new Uint8Array(bytes);
    assertMqttError(() => decodeUtf8(buf, 0, buf.length), 0x81);
  }
});

Deno.test("decodeUtf8() rejects encoded surrogates U+D800..U+DFFF [MQTT-1.5.4-1]", () => {
  for (
    const bytes of [[0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]]
  ) {
    const buf = new Uint8Array(bytes);
    assertMqttError(() => decodeUtf8(buf, 0, buf.length), 0x81);
  }
});

Deno.test("utf8ByteLength() counts a lone surrogate as the 3 bytes of U+FFFD", () => {
  for (const text of ["\ud800", "a\udc00b", "\ud83d", "x\ud83dy"]) {
    assert.strictEqual(utf8ByteLength(text), encoder.encode(text).length);
    const buf = new Uint8Array(utf8StringSize(text));
    assert.strictEqual(writeUtf8String(buf, 0, text), buf.length);
  }
});

Deno.test("utf8StringSize() accepts 65,535 bytes and rejects 65,536 [MQTT-4.7.3-3]", () => {
  assert.strictEqual(MAX_UTF8_STRING_BYTES, 65_535);
  assert.strictEqual(utf8StringSize("a".repeat(65_535)), 65_537);
  assert.throws(() => utf8StringSize("a".repeat(65_536)), RangeError);
  // 21,846 three-byte characters are 65,538 bytes.
  assert.throws(() => utf8StringSize("€".repeat(21_846)), RangeError);
});

Deno.test("writeUtf8String() writes a 65,535-byte string", () => {
  const text = "é".repeat(32_767) + "a";
  const buf = new Uint8Array(utf8StringSize(text));
  assert.strictEqual(writeUtf8String(buf, 0, text), buf.length);
  assert.deepStrictEqual(buf.subarray(0, 2), new Uint8Array([0xff, 0xff]));
  assert.strictEqual(decodeUtf8(buf, 2, buf.length), text);
});

Deno.test("decodeUtf8() decodes each of many repeated short ASCII strings right, whatever it recalls", () => {
  // More strings than it recalls, of equal and unequal lengths, some differing in one byte only:
  // a recalled string is handed out only for exactly its bytes.
  const texts: string[] = [];
  for (let i = 0; i < 600; i++) texts.push(`t/${i % 300}/${"x".repeat(i % 7)}`);
  texts.push("", "a", "b", "ab", "ba");
  for (let round = 0; round < 3; round++) {
    for (const text of texts) {
      const bytes = new TextEncoder().encode(`<${text}>`);
      assert.equal(decodeUtf8(bytes, 1, bytes.length - 1), text);
    }
  }
});
