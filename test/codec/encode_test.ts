import assert from "node:assert";
import { decodePacket } from "../../src/codec/decode.ts";
import {
  encodeAuth,
  encodeConnect,
  encodePacket,
  encodePubAckLike,
  encodePublish,
  encodePublishHeader,
  encodeSubscribe,
  encodeUnsuback,
  publishPacketIdOffset,
  setPublishPacketId,
} from "../../src/codec/encode.ts";
import type { Packet, ProtocolVersion } from "../../src/codec/packets.ts";
import { SlabAllocator } from "../../src/codec/slab_allocator.ts";
import {
  ack,
  auth,
  bytes,
  connack,
  connect,
  disconnect,
  frame,
  type PacketCase,
  publish,
  str,
  suback,
  subscribe,
  subscription,
  u16,
  unsuback,
  utf8,
} from "../vectors/mod.ts";
import { v311Cases } from "../vectors/v311.ts";
import { v5Cases } from "../vectors/v5.ts";
import { tags } from "./_assert.ts";

const DECODABLE: PacketCase[] = [...v311Cases, ...v5Cases].filter((v) => v.packet !== undefined);

for (const vector of DECODABLE) {
  const form = vector.reencoded === undefined ? "the same bytes" : "the shortest form";
  Deno.test(`encodePacket() writes ${vector.id} back as ${form}${tags(vector.spec)}`, () => {
    const decoded = decodePacket(vector.bytes, vector.version);
    assert.deepStrictEqual(
      encodePacket(decoded, vector.version),
      vector.reencoded ?? vector.bytes,
    );
  });

  Deno.test(`encodePacket() writes ${vector.id} into slab buffers`, () => {
    // A small slab, so that some packets share it and some get their own buffer.
    const options = { allocator: new SlabAllocator({ slabSize: 256 }) };
    const expected = vector.reencoded ?? vector.bytes;
    const first = encodePacket(vector.packet!, vector.version, options);
    const second = encodePacket(vector.packet!, vector.version, options);
    assert.deepStrictEqual(first, expected);
    assert.deepStrictEqual(second, expected);
  });

  Deno.test(`decodePacket() reads back encodePacket() of ${vector.id}`, () => {
    const packet = vector.packet!;
    assert.deepStrictEqual(
      decodePacket(encodePacket(packet, vector.version), vector.version),
      packet,
    );
  });
}

/** Packets in MQTT 5 shape, encoded for 3.1.1, lose their reason codes and properties. */
const V311_DROPS: [string, Packet, Uint8Array][] = [
  ["PUBACK", ack(4, 1, 0x10, { reasonString: "x" }), frame(0x40, u16(1))],
  ["PUBREL", ack(6, 1, 0x92), frame(0x62, u16(1))],
  ["CONNACK", connack({ reasonCode: 5, properties: { retainAvailable: 0 } }), frame(0x20, 0, 5)],
  ["SUBACK", suback(1, [0, 0x80], { reasonString: "x" }), frame(0x90, u16(1), 0x00, 0x80)],
  ["UNSUBACK", unsuback(1, [0x11], { reasonString: "x" }), frame(0xb0, u16(1))],
  ["DISCONNECT", disconnect(0x04, { reasonString: "x" }), bytes(0xe0, 0x00)],
  [
    "PUBLISH",
    publish({ properties: { contentType: "x" }, payload: utf8("p") }),
    frame(0x30, str("a/b"), "p"),
  ],
];

for (const [name, packet, expected] of V311_DROPS) {
  Deno.test(`encodePacket() writes ${name} without MQTT 5 fields under 3.1.1`, () => {
    assert.deepStrictEqual(encodePacket(packet, 4), expected);
    assert.deepStrictEqual(encodePacket(packet, 3), expected);
  });
}

Deno.test("encodePubAckLike() writes PUBACK Success without properties in 4 bytes", () => {
  assert.deepStrictEqual(encodePubAckLike(ack(4, 0x1234), 5), bytes(0x40, 0x02, 0x12, 0x34));
  assert.deepStrictEqual(encodePubAckLike(ack(4, 1, 0, {}), 5), bytes(0x40, 0x02, 0x00, 0x01));
});

Deno.test("encodePubAckLike() writes a reason code without properties in 5 bytes", () => {
  assert.deepStrictEqual(encodePubAckLike(ack(5, 1, 0x80), 5), frame(0x50, u16(1), 0x80));
});

Deno.test("encodePubAckLike() keeps a Success reason code when properties follow", () => {
  assert.deepStrictEqual(
    encodePubAckLike(ack(7, 1, 0, { reasonString: "ok" }), 5),
    frame(0x70, u16(1), 0x00, 0x05, 0x1f, str("ok")),
  );
});

Deno.test("encodeConnect() writes the level of the version spoken", () => {
  const bytesV5 = encodeConnect(connect({ protocolVersion: 4 }), 5);
  assert.deepStrictEqual(decodePacket(bytesV5, 5), connect({ protocolVersion: 5 }));
});

Deno.test("encodeConnect() leaves out properties not allowed in CONNECT or the will", () => {
  const packet = connect({
    protocolVersion: 5,
    will: {
      topic: "w",
      payload: new Uint8Array(0),
      qos: 0,
      retain: false,
      properties: { willDelayInterval: 1, topicAlias: 9 },
    },
    properties: { sessionExpiryInterval: 1, willDelayInterval: 9 },
  });
  const decoded = decodePacket(encodeConnect(packet, 5), 5);
  assert.deepStrictEqual(decoded.type === 1 && decoded.properties, { sessionExpiryInterval: 1 });
  assert.deepStrictEqual(decoded.type === 1 && decoded.will?.properties, { willDelayInterval: 1 });
});

Deno.test("encodeSubscribe() writes MQTT 5 subscription options [section 3.8.3.1]", () => {
  const packet = subscribe(3, [
    subscription("a", 2, { noLocal: true, retainAsPublished: true, retainHandling: 1 }),
  ]);
  assert.deepStrictEqual(encodeSubscribe(packet, 5), frame(0x82, u16(3), 0x00, str("a"), 0x1e));
  assert.deepStrictEqual(encodeSubscribe(packet, 4), frame(0x82, u16(3), str("a"), 0x02));
});

Deno.test("encodeUnsuback() writes the reason codes under MQTT 5 only", () => {
  assert.deepStrictEqual(
    encodeUnsuback(unsuback(4, [0, 0x11]), 5),
    frame(0xb0, u16(4), 0, 0, 0x11),
  );
  assert.deepStrictEqual(encodeUnsuback(unsuback(4, [0, 0x11]), 4), frame(0xb0, u16(4)));
});

Deno.test("encodeAuth() writes Success without properties in 2 bytes", () => {
  assert.deepStrictEqual(encodeAuth(auth(), 5), bytes(0xf0, 0x00));
  assert.deepStrictEqual(encodeAuth(auth(0x18), 5), frame(0xf0, 0x18, 0x00));
});

Deno.test("encodeAuth() refuses protocol versions before MQTT 5", () => {
  assert.throws(() => encodeAuth(auth(), 4), TypeError);
  assert.throws(() => encodePacket(auth(), 3), TypeError);
});

Deno.test("encodePublish() uses a multi-byte remaining length for large payloads", () => {
  for (const size of [125, 126, 16_380, 16_381, 2_097_150]) {
    const packet = publish({ topic: "t", payload: new Uint8Array(size).fill(1) });
    const encoded = encodePublish(packet, 4);
    assert.deepStrictEqual(decodePacket(encoded, 4), packet);
  }
});

Deno.test("encodePublish() rejects a topic longer than 65,535 bytes [MQTT-4.7.3-3]", () => {
  assert.throws(() => encodePublish(publish({ topic: "t".repeat(65_536) }), 4), RangeError);
});

for (const version of [4, 5] as ProtocolVersion[]) {
  for (const qos of [0, 1, 2] as const) {
    Deno.test(`encodePublishHeader() plus the payload equals encodePublish() (v${version}, QoS ${qos})`, () => {
      const packet = publish({
        qos,
        topic: "sensors/€",
        packetId: qos === 0 ? 0 : 513,
        properties: version === 5 ? { contentType: "text/plain" } : undefined,
        payload: new Uint8Array(300).fill(0x42),
      });
      const header = encodePublishHeader(packet, version);
      const whole = encodePublish(packet, version);
      assert.deepStrictEqual(bytes(header, packet.payload), whole);
    });
  }
}

Deno.test("encodePublishHeader() writes into slab buffers", () => {
  const options = { allocator: new SlabAllocator() };
  const packet = publish({ qos: 1, packetId: 5, payload: new Uint8Array(10) });
  const header = encodePublishHeader(packet, 4, options);
  assert.deepStrictEqual(header, encodePublishHeader(packet, 4));
  assert.notStrictEqual(header.byteOffset + header.length, header.buffer.byteLength);
});

Deno.test("publishPacketIdOffset() finds the packet identifier in a header and a whole packet", () => {
  const packet = publish({
    qos: 1,
    topic: "a/b",
    packetId: 0xabcd,
    properties: { userProperties: [["k", "v"]] },
    payload: new Uint8Array(200),
  });
  for (const version of [4, 5] as ProtocolVersion[]) {
    for (const encoded of [encodePublishHeader(packet, version), encodePublish(packet, version)]) {
      const offset = publishPacketIdOffset(encoded);
      // Fixed header is 3 bytes (remaining length over 127), then the 5-byte topic.
      assert.strictEqual(offset, 8);
      assert.deepStrictEqual(encoded.subarray(offset, offset + 2), bytes(0xab, 0xcd));
    }
  }
});

Deno.test("setPublishPacketId() patches a shared encoding per subscriber", () => {
  const packet = publish({ qos: 2, packetId: 1, payload: utf8("x") });
  const shared = encodePublish(packet, 5);
  const copy = shared.slice();
  setPublishPacketId(copy, 0x0102);
  assert.deepStrictEqual(decodePacket(copy, 5), { ...packet, packetId: 0x0102 });
  assert.deepStrictEqual(decodePacket(shared, 5), packet);
});

Deno.test("publishPacketIdOffset() rejects QoS 0, other packets and truncated headers", () => {
  assert.throws(() => publishPacketIdOffset(encodePublish(publish(), 4)), TypeError);
  assert.throws(() => publishPacketIdOffset(bytes(0x40, 0x02, 0x00, 0x01)), TypeError);
  assert.throws(() => publishPacketIdOffset(bytes(0x32, 0x09, 0x00, 0x03, 0x61)), TypeError);
  assert.throws(() => publishPacketIdOffset(bytes(0x32)), TypeError);
});
