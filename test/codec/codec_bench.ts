/**
 * Codec micro-benchmarks, decode and encode per packet type: `deno bench test/codec/codec_bench.ts`
 * (or every micro-benchmark: `deno task bench:micro`).
 *
 * @module
 */

import {
  decodePacket,
  encodePacket,
  encodePublishHeader,
  type Packet,
  PacketDecoder,
  type ProtocolVersion,
  type PublishPacket,
  SlabAllocator,
} from "../../src/codec/mod.ts";
import {
  ack,
  auth,
  connack,
  connect,
  disconnect,
  publish,
  suback,
  subscribe,
  subscription,
  unsuback,
  unsubscribe,
  utf8,
} from "../vectors/mod.ts";

const TOPIC = "sensors/building-7/floor-3/temperature";

function publishOf(size: number, version: ProtocolVersion, qos: 0 | 1 = 0): PublishPacket {
  return publish({
    qos,
    topic: TOPIC,
    packetId: qos === 0 ? 0 : 42,
    properties: version === 5 ? { userProperties: [["unit", "C"]] } : undefined,
    payload: new Uint8Array(size).fill(0x31),
  });
}

const SLAB = { allocator: new SlabAllocator() };

const PACKETS: [string, Packet, ProtocolVersion][] = [
  ["PUBLISH 16 B v4", publishOf(16, 4), 4],
  ["PUBLISH 1 KiB v4", publishOf(1024, 4), 4],
  ["PUBLISH 16 B v5 (user property)", publishOf(16, 5), 5],
  ["PUBLISH 1 KiB v5 (user property)", publishOf(1024, 5), 5],
  ["PUBLISH 16 B v5 (no properties)", publishOf(16, 4), 5],
  [
    "CONNECT v4",
    connect({ clientId: "device-0042", username: "user", password: utf8("secret") }),
    4,
  ],
  [
    "CONNECT v5",
    connect({
      protocolVersion: 5,
      clientId: "device-0042",
      username: "user",
      password: utf8("secret"),
      properties: { sessionExpiryInterval: 3600, receiveMaximum: 100 },
    }),
    5,
  ],
  ["SUBSCRIBE v4", subscribe(7, [subscription("a/+/c", 1), subscription("d/#", 0)]), 4],
  ["SUBSCRIBE v5", subscribe(7, [subscription("a/+/c", 1), subscription("d/#", 0)]), 5],
  ["CONNACK v4", connack(), 4],
  ["CONNACK v5", connack({ properties: { maximumPacketSize: 1 << 20, topicAliasMaximum: 10 } }), 5],
  ["PUBACK v4", ack(4, 42), 4],
  ["PUBACK v5", ack(4, 42), 5],
  ["PUBACK v5 (reason code and reason string)", ack(4, 42, 0x97, { reasonString: "full" }), 5],
  ["PUBREC v5", ack(5, 42), 5],
  ["PUBREL v5", ack(6, 42), 5],
  ["PUBCOMP v5", ack(7, 42), 5],
  ["SUBACK v5", suback(7, [1, 0]), 5],
  ["UNSUBSCRIBE v5", unsubscribe(8, ["a/+/c", "d/#"]), 5],
  ["UNSUBACK v5", unsuback(8, [0, 0x11]), 5],
  ["PINGREQ", { type: 12 }, 4],
  ["PINGRESP", { type: 13 }, 4],
  ["DISCONNECT v5", disconnect(0x8b), 5],
  ["AUTH v5", auth(0x18, { authenticationMethod: "SCRAM-SHA-256" }), 5],
];

for (const [name, packet, version] of PACKETS) {
  const encoded = encodePacket(packet, version);
  Deno.bench(`decode ${name}`, { group: `decode ${name}` }, () => {
    decodePacket(encoded, version);
  });
  Deno.bench(`encode ${name}`, { group: `encode ${name}` }, () => {
    encodePacket(packet, version);
  });
  Deno.bench(`encode ${name}, slab allocator`, { group: `encode ${name}` }, () => {
    encodePacket(packet, version, SLAB);
  });
}

const SHARED = publishOf(1024, 4, 1);
Deno.bench("encode PUBLISH header only, 1 KiB QoS 1 v4, slab allocator", () => {
  encodePublishHeader(SHARED, 4, SLAB);
});

for (const version of [4, 5] as ProtocolVersion[]) {
  const one = encodePacket(publishOf(16, version), version);
  const chunk = new Uint8Array(one.length * 100);
  for (let i = 0; i < 100; i++) chunk.set(one, i * one.length);
  const decoder = new PacketDecoder({ onPacket() {} }, {
    maximumPacketSize: 1 << 20,
    protocolVersion: version,
  });

  Deno.bench(
    `PacketDecoder: 100 PUBLISH (16 B) in one ${chunk.length}-byte chunk, v${version}`,
    () => {
      decoder.push(chunk);
    },
  );

  Deno.bench(`PacketDecoder: 100 PUBLISH (16 B) in 1 KiB chunks, v${version}`, () => {
    for (let offset = 0; offset < chunk.length; offset += 1024) {
      decoder.push(chunk.subarray(offset, offset + 1024));
    }
  });
}
