import assert from "node:assert";
import {
  checkFixedHeader,
  decodeBody,
  decodeConnect,
  decodeConnectWithTrailingData,
  decodePacket,
  decodePingreq,
  decodePuback,
  decodePublish,
  decodeSubscribe,
} from "../../src/codec/decode.ts";
import { bytes, connect, frame, type PacketCase, publish, str, u16, utf8 } from "../vectors/mod.ts";
import { v311Cases } from "../vectors/v311.ts";
import { v5Cases } from "../vectors/v5.ts";
import { assertMqttError, tags } from "./_assert.ts";

const CASES: PacketCase[] = [...v311Cases, ...v5Cases];

for (const vector of CASES) {
  if (vector.error === undefined) {
    Deno.test(`decodePacket() decodes ${vector.id}: ${vector.desc}${tags(vector.spec)}`, () => {
      assert.deepStrictEqual(decodePacket(vector.bytes, vector.version), vector.packet);
    });
  } else {
    Deno.test(`decodePacket() rejects ${vector.id}: ${vector.desc}${tags(vector.spec)}`, () => {
      assertMqttError(() => decodePacket(vector.bytes, vector.version), vector.error!);
    });
  }
}

Deno.test("decodePacket() rejects a buffer shorter or longer than its packet", () => {
  assertMqttError(() => decodePacket(new Uint8Array(0), 4), 0x81);
  assertMqttError(() => decodePacket(bytes(0xc0), 4), 0x81);
  assertMqttError(() => decodePacket(bytes(0x40, 0x02, 0x00), 4), 0x81);
  assertMqttError(() => decodePacket(bytes(0xc0, 0x00, 0x00), 4), 0x81);
});

Deno.test("decodePublish() returns the payload as a view into the body", () => {
  const packet = frame(0x30, str("t"), "payload");
  const decoded = decodePublish(0, packet, 4, 2, packet.length);
  assert.strictEqual(decoded.payload.buffer, packet.buffer);
  assert.strictEqual(decoded.payload.byteOffset, 5);
  assert.deepStrictEqual(decoded.payload, utf8("payload"));
});

Deno.test("decodePublish() decodes a body inside a larger buffer", () => {
  const body = bytes(0xee, str("a/b"), u16(9), "xy", 0xee);
  assert.deepStrictEqual(
    decodePublish(0b0010, body, 4, 1, body.length - 1),
    publish({ qos: 1, packetId: 9, payload: utf8("xy") }),
  );
});

Deno.test("decodePublish() rejects QoS 3 [MQTT-3.3.1-4]", () => {
  assertMqttError(() => decodePublish(0b0110, bytes(str("a"), u16(1)), 4), 0x81);
});

Deno.test("decodePuback() accepts the MQTT 5 short forms [section 3.4.2.1]", () => {
  assert.strictEqual(decodePuback(0, bytes(u16(1)), 5).reasonCode, 0);
  assert.strictEqual(decodePuback(0, bytes(u16(1), 0x10), 5).reasonCode, 0x10);
  assert.strictEqual(decodePuback(0, bytes(u16(1), 0x10, 0x00), 5).properties, undefined);
});

Deno.test("decodeSubscribe() keeps the MQTT 5 options at their 3.1.1 defaults under 3.1.1", () => {
  const decoded = decodeSubscribe(0b0010, bytes(u16(1), str("a"), 0x01), 4);
  assert.deepStrictEqual(decoded.subscriptions, [
    { filter: "a", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
  ]);
});

Deno.test("decodePingreq() rejects a body", () => {
  assert.deepStrictEqual(decodePingreq(0, new Uint8Array(0)), { type: 12 });
  assertMqttError(() => decodePingreq(0, bytes(0x00)), 0x81);
});

Deno.test("decodeConnect() reads the protocol level from the packet itself", () => {
  const body = bytes(str("MQTT"), 0x05, 0x02, u16(60), 0x00, str("c"));
  assert.deepStrictEqual(decodeConnect(0, body), connect({ protocolVersion: 5 }));
});

Deno.test("decodeConnect() rejects trailing data after the payload [MQTT-3.1.4-1]", () => {
  const body = bytes(str("MQTT"), 0x04, 0x02, u16(60), str("c"), '{"os":"linux"}');
  assertMqttError(() => decodeConnect(0, body), 0x81);
});

Deno.test("decodeConnectWithTrailingData() returns the bytes after the payload", () => {
  const body = bytes(str("MQTT"), 0x04, 0xc2, u16(60), str("c"), str("u"), str("p"), '{"a":1}');
  const { packet, trailingData } = decodeConnectWithTrailingData(0, body);
  assert.deepStrictEqual(packet, connect({ username: "u", password: utf8("p") }));
  assert.deepStrictEqual(trailingData, utf8('{"a":1}'));
  assert.strictEqual(trailingData.buffer, body.buffer);
});

Deno.test("decodeConnectWithTrailingData() returns empty trailing data for a plain CONNECT", () => {
  const body = bytes(str("MQTT"), 0x04, 0x02, u16(60), str("c"));
  assert.strictEqual(decodeConnectWithTrailingData(0, body).trailingData.length, 0);
});

Deno.test("decodeConnectWithTrailingData() still rejects a malformed CONNECT", () => {
  const body = bytes(str("MQTT"), 0x04, 0x03, u16(60), str("c"), "{}");
  assertMqttError(() => decodeConnectWithTrailingData(0, body), 0x81);
});

Deno.test("decodeBody() dispatches on the packet type", () => {
  const buf = bytes(0xff, u16(7), 0xff);
  assert.deepStrictEqual(decodeBody(0x50, buf, 1, 3, 4), {
    type: 5,
    packetId: 7,
    reasonCode: 0,
    properties: undefined,
  });
  assertMqttError(() => decodeBody(0x00, buf, 1, 1, 4), 0x81);
});

Deno.test("checkFixedHeader() accepts every valid first byte [MQTT-2.1.3-1]", () => {
  for (const header of [0x10, 0x20, 0x30, 0x3b, 0x3d, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90]) {
    checkFixedHeader(header, 4);
  }
  for (const header of [0xa2, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0]) checkFixedHeader(header, 5);
});

Deno.test("checkFixedHeader() rejects reserved types, bad flags and QoS 3 [MQTT-2.1.3-1]", () => {
  for (const header of [0x00, 0x0f, 0x12, 0x36, 0x3e, 0x41, 0x60, 0x80, 0xa0, 0xc8, 0xe1]) {
    assertMqttError(() => checkFixedHeader(header, 5), 0x81);
  }
  assertMqttError(() => checkFixedHeader(0xf0, 4), 0x81);
});
