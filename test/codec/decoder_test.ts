import assert from "node:assert";
import { type DecoderOptions, PacketDecoder } from "../../src/codec/decoder.ts";
import type { Packet, ProtocolVersion, PublishPacket } from "../../src/codec/packets.ts";
import { bytes, frame, type PacketCase, props, publish, str, u16, utf8 } from "../vectors/mod.ts";
import { v311Cases } from "../vectors/v311.ts";
import { v5Cases } from "../vectors/v5.ts";
import { assertMqttError, tags } from "./_assert.ts";

const CASES: PacketCase[] = [...v311Cases, ...v5Cases];
const DECODABLE = CASES.filter((v) => v.packet !== undefined);
const MALFORMED = CASES.filter((v) => v.error !== undefined);

/** A decoder that collects packets. */
function collector(options: Partial<DecoderOptions> = {}) {
  const packets: Packet[] = [];
  const decoder = new PacketDecoder({
    onPacket(packet) {
      packets.push(packet);
    },
  }, { maximumPacketSize: 1024 * 1024, ...options });
  return { decoder, packets };
}

/** Pushes `data` in chunks that end at `cuts`, returns the packets. */
function decodeInChunks(data: Uint8Array, version: ProtocolVersion, cuts: number[]): Packet[] {
  const { decoder, packets } = collector({ protocolVersion: version });
  let start = 0;
  for (const cut of [...cuts, data.length]) {
    decoder.push(data.slice(start, cut));
    start = cut;
  }
  assert.strictEqual(decoder.bufferedBytes, 0);
  return packets;
}

for (const vector of DECODABLE) {
  const name = `${vector.id}${tags(vector.spec)}`;

  Deno.test(`PacketDecoder decodes ${name} from one chunk`, () => {
    assert.deepStrictEqual(decodeInChunks(vector.bytes, vector.version, []), [vector.packet]);
  });

  Deno.test(`PacketDecoder decodes ${name} fed byte by byte`, () => {
    const cuts = Array.from({ length: vector.bytes.length - 1 }, (_, i) => i + 1);
    assert.deepStrictEqual(decodeInChunks(vector.bytes, vector.version, cuts), [vector.packet]);
  });

  Deno.test(`PacketDecoder decodes ${name} split at every offset`, () => {
    for (let cut = 1; cut < vector.bytes.length; cut++) {
      assert.deepStrictEqual(
        decodeInChunks(vector.bytes, vector.version, [cut]),
        [vector.packet],
        `split at ${cut}`,
      );
    }
  });
}

Deno.test("PacketDecoder decodes two and three packets from one chunk, and split anywhere", () => {
  for (const version of [4, 5] as ProtocolVersion[]) {
    const same = DECODABLE.filter((v) => v.version === version);
    for (let i = 0; i < same.length; i++) {
      const group = [same[i], same[(i + 1) % same.length], same[(i + 5) % same.length]];
      for (const count of [2, 3]) {
        const members = group.slice(0, count);
        const data = bytes(...members.map((v) => v.bytes));
        const expected = members.map((v) => v.packet);
        assert.deepStrictEqual(decodeInChunks(data, version, []), expected);
        for (let cut = 1; cut < data.length; cut++) {
          assert.deepStrictEqual(decodeInChunks(data, version, [cut]), expected);
        }
      }
    }
  }
});

for (const vector of MALFORMED) {
  const name = `${vector.id}: ${vector.desc}${tags(vector.spec)}`;

  Deno.test(`PacketDecoder rejects ${name}`, () => {
    const { decoder } = collector({ protocolVersion: vector.version });
    assertMqttError(() => decoder.push(vector.bytes), vector.error!);
  });

  Deno.test(`PacketDecoder rejects ${vector.id} fed byte by byte`, () => {
    const { decoder } = collector({ protocolVersion: vector.version });
    assertMqttError(() => {
      for (let i = 0; i < vector.bytes.length; i++) decoder.push(vector.bytes.subarray(i, i + 1));
    }, vector.error!);
  });
}

Deno.test("PacketDecoder hands over the packets before a malformed one", () => {
  const { decoder, packets } = collector();
  assertMqttError(() => decoder.push(bytes(0xc0, 0x00, 0xd0, 0x00, 0x36, 0x00)), 0x81);
  assert.deepStrictEqual(packets, [{ type: 12 }, { type: 13 }]);
});

Deno.test("PacketDecoder refuses a 256 MB packet before buffering it [MQTT-3.2.2-15]", () => {
  const { decoder, packets } = collector({ maximumPacketSize: 1024 });
  // PUBLISH announcing a remaining length of 268,435,455 bytes, then a little of the body.
  const start = bytes(0x30, [0xff, 0xff, 0xff, 0x7f], u16(1), "a", "xyz");
  assertMqttError(() => decoder.push(start), 0x95);
  assert.strictEqual(packets.length, 0);
});

Deno.test("PacketDecoder refuses an oversized packet whose header arrives byte by byte", () => {
  const { decoder } = collector({ maximumPacketSize: 1024 });
  decoder.push(bytes(0x30));
  decoder.push(bytes(0xff));
  decoder.push(bytes(0xff));
  assertMqttError(() => decoder.push(bytes(0x7f)), 0x95);
});

Deno.test("PacketDecoder holds only the bytes received for an announced 256 MB packet", () => {
  const { decoder, packets } = collector({ maximumPacketSize: 1 + 4 + 268_435_455 });
  decoder.push(bytes(0x30, [0xff, 0xff, 0xff, 0x7f], 0x00));
  decoder.push(bytes(0x01, "a", "xy"));
  assert.strictEqual(decoder.bufferedBytes, 10);
  assert.strictEqual(packets.length, 0);
});

Deno.test("PacketDecoder accepts a packet of exactly the maximum size and refuses one byte more", () => {
  const packet = frame(0x30, str("t"), "12345"); // 10 bytes
  const atLimit = collector({ maximumPacketSize: 10 });
  atLimit.decoder.push(packet);
  assert.strictEqual(atLimit.packets.length, 1);
  const belowLimit = collector({ maximumPacketSize: 9 });
  assertMqttError(() => belowLimit.decoder.push(packet), 0x95);
});

Deno.test("PacketDecoder rejects a bad first byte before buffering the body [MQTT-2.1.3-1]", () => {
  const { decoder } = collector();
  // PUBACK with flags 0b0001 announcing 100 bytes, only 3 of which arrive.
  assertMqttError(() => decoder.push(bytes(0x41, 100, 0x00, 0x01, 0x00)), 0x81);
});

Deno.test("PacketDecoder decodes a packet inside a chunk as views into the chunk", () => {
  const { decoder, packets } = collector();
  const chunk = bytes(0xc0, 0x00, frame(0x30, str("t"), "payload"));
  decoder.push(chunk);
  const packet = packets[1] as PublishPacket;
  assert.strictEqual(packet.payload.buffer, chunk.buffer);
  assert.strictEqual(packet.payload.byteOffset, 7);
});

Deno.test("PacketDecoder copies a split packet once into its own buffer", () => {
  const { decoder, packets } = collector();
  const data = frame(0x30, str("t"), "payload");
  const first = data.slice(0, 6);
  const second = data.slice(6);
  decoder.push(first);
  assert.strictEqual(decoder.bufferedBytes, 6);
  decoder.push(second);
  const packet = packets[0] as PublishPacket;
  assert.notStrictEqual(packet.payload.buffer, first.buffer);
  assert.notStrictEqual(packet.payload.buffer, second.buffer);
  assert.strictEqual(packet.payload.buffer.byteLength, data.length - 2);
  // Later chunks never disturb an earlier packet's payload.
  decoder.push(frame(0x30, str("t"), "PAYLOAD"));
  assert.deepStrictEqual(packet.payload, utf8("payload"));
});

Deno.test("PacketDecoder decodes in place when only the fixed header was split", () => {
  const { decoder, packets } = collector();
  const body = bytes(u16(1), "a", "x".repeat(200));
  decoder.push(bytes(0x30, 0xcb));
  const chunk = bytes(0x01, body);
  decoder.push(chunk);
  assert.strictEqual((packets[0] as PublishPacket).payload.buffer, chunk.buffer);
});

Deno.test("PacketDecoder stops at a handler returning false and keeps the rest undecoded until resume()", () => {
  const seen: Packet[] = [];
  let stopAt = 13;
  const decoder = new PacketDecoder({
    onPacket(packet) {
      seen.push(packet);
      return packet.type !== stopAt;
    },
  }, { maximumPacketSize: 1024 });
  decoder.push(bytes(0xc0, 0x00, 0xd0, 0x00, 0xc0, 0x00, 0x30));
  assert.deepStrictEqual(seen, [{ type: 12 }, { type: 13 }]);
  assert.strictEqual(decoder.bufferedBytes, 0, "nothing counts as a partial packet");
  assert.strictEqual(decoder.heldBytes, 3);
  // A chunk pushed while stopped waits behind the held bytes.
  decoder.push(bytes(0x03, 0x00, 0x01, "x", 0xe0, 0x00));
  assert.strictEqual(seen.length, 2, "nothing decoded while stopped");
  assert.strictEqual(decoder.heldBytes, 9);
  stopAt = -1;
  decoder.resume();
  assert.deepStrictEqual(seen.map((packet) => packet.type), [12, 13, 12, 3, 14]);
  assert.strictEqual(decoder.heldBytes, 0);
  decoder.resume(); // not stopped: nothing to do
  assert.strictEqual(seen.length, 5);
});

Deno.test("PacketDecoder stops again inside resume(), keeping the order", () => {
  const seen: number[] = [];
  const decoder = new PacketDecoder({
    onPacket(packet) {
      seen.push(packet.type);
      return false; // one packet at a time
    },
  }, { maximumPacketSize: 1024 });
  decoder.push(bytes(0xc0, 0x00, 0xd0, 0x00));
  decoder.push(bytes(0xe0, 0x00));
  assert.deepStrictEqual(seen, [12]);
  decoder.resume();
  assert.deepStrictEqual(seen, [12, 13]);
  decoder.resume();
  assert.deepStrictEqual(seen, [12, 13, 14]);
  assert.strictEqual(decoder.heldBytes, 0);
});

Deno.test("PacketDecoder stops after a split packet when the handler returns false", () => {
  const seen: Packet[] = [];
  const decoder = new PacketDecoder({
    onPacket(packet) {
      seen.push(packet);
      return false;
    },
  }, { maximumPacketSize: 1024 });
  decoder.push(bytes(0xc0));
  decoder.push(bytes(0x00, 0xd0, 0x00));
  assert.deepStrictEqual(seen, [{ type: 12 }]);
  assert.strictEqual(decoder.heldBytes, 2);
  decoder.resume();
  assert.deepStrictEqual(seen, [{ type: 12 }, { type: 13 }]);
});

Deno.test("PacketDecoder.resume() throws what decoding the held bytes throws, and is unusable after", () => {
  const decoder = new PacketDecoder({ onPacket: () => false }, { maximumPacketSize: 1024 });
  decoder.push(bytes(0xc0, 0x00, 0x00, 0x00));
  assertMqttError(() => decoder.resume(), 0x81);
  assert.throws(() => decoder.push(bytes(0xc0, 0x00)), TypeError);
});

Deno.test("PacketDecoder is unusable after an error", () => {
  const { decoder } = collector();
  assertMqttError(() => decoder.push(bytes(0x00, 0x00)), 0x81);
  assert.throws(() => decoder.push(bytes(0xc0, 0x00)), TypeError);
});

Deno.test("PacketDecoder is unusable after the handler throws", () => {
  const decoder = new PacketDecoder({
    onPacket() {
      throw new Error("handler failed");
    },
  }, { maximumPacketSize: 1024 });
  assert.throws(() => decoder.push(bytes(0xc0, 0x00)), /handler failed/);
  assert.throws(() => decoder.push(bytes(0xc0, 0x00)), TypeError);
});

Deno.test("PacketDecoder switches to the protocol level of a CONNECT", () => {
  const { decoder, packets } = collector();
  assert.strictEqual(decoder.protocolVersion, 4);
  const connect = frame(0x10, str("MQTT"), 0x05, 0x02, u16(60), 0x00, str("c"));
  const publishV5 = frame(0x30, str("a/b"), props([0x23, ...u16(1)]), "x");
  decoder.push(bytes(connect, publishV5));
  assert.strictEqual(decoder.protocolVersion, 5);
  assert.deepStrictEqual(
    packets[1],
    publish({ properties: { topicAlias: 1 }, payload: utf8("x") }),
  );
});

Deno.test("PacketDecoder rejects CONNECT trailing data by default [MQTT-3.1.4-1]", () => {
  const { decoder } = collector();
  const connect = frame(0x10, str("MQTT"), 0x04, 0x02, u16(60), str("c"), '{"os":"linux"}');
  assertMqttError(() => decoder.push(connect), 0x81);
});

Deno.test("PacketDecoder offers CONNECT trailing data when allowed", () => {
  const { decoder, packets } = collector({ allowConnectTrailingData: true });
  const connect = frame(0x10, str("MQTT"), 0x04, 0x02, u16(60), str("c"), '{"os":"linux"}');
  for (let i = 0; i < connect.length; i++) decoder.push(connect.subarray(i, i + 1));
  assert.strictEqual(packets.length, 1);
  assert.deepStrictEqual(decoder.connectTrailingData, utf8('{"os":"linux"}'));
});

Deno.test("PacketDecoder offers no trailing data for a plain CONNECT when allowed", () => {
  const { decoder, packets } = collector({ allowConnectTrailingData: true });
  decoder.push(frame(0x10, str("MQIsdp"), 0x03, 0x02, u16(60), str("c")));
  assert.strictEqual(packets.length, 1);
  assert.strictEqual(decoder.connectTrailingData, undefined);
  assert.strictEqual(decoder.protocolVersion, 3);
});

Deno.test("PacketDecoder options and setters", () => {
  const { decoder } = collector({ protocolVersion: 5, maximumPacketSize: 100 });
  assert.strictEqual(decoder.protocolVersion, 5);
  assert.strictEqual(decoder.maximumPacketSize, 100);
  decoder.protocolVersion = 4;
  decoder.maximumPacketSize = 200;
  assert.strictEqual(decoder.protocolVersion, 4);
  assert.strictEqual(decoder.maximumPacketSize, 200);
  assert.throws(() => (decoder.maximumPacketSize = 0), RangeError);
  assert.throws(() => (decoder.maximumPacketSize = 1.5), RangeError);
  assert.throws(() => collector({ maximumPacketSize: Number.NaN }), RangeError);
});

Deno.test("PacketDecoder decodes 100 packets from one chunk", () => {
  const one = frame(0x30, str("a/b"), "x".repeat(16));
  const chunk = bytes(...Array.from({ length: 100 }, () => one));
  const { decoder, packets } = collector();
  decoder.push(chunk);
  assert.strictEqual(packets.length, 100);
  assert.deepStrictEqual(packets[99], publish({ payload: utf8("x".repeat(16)) }));
});
