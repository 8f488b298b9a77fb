/**
 * Hostile and malformed input over real TCP sockets. Every attack is written as raw bytes (one
 * comment per field) and each test asserts three things:
 *
 * 1. what the broker answers, byte for byte (MQTT 5 DISCONNECT with the reason code the
 *    specification names; MQTT 3.1.1 has no such packet, so the connection just closes);
 * 2. that the broker closes the connection (or keeps it open where the input is legal);
 * 3. that a well-behaved client connected before the attack still completes a QoS 1 round trip
 *    afterwards: one bad client never takes the broker down for the others.
 *
 * MQTT 5 attackers send Request Problem Information = 0 in CONNECT so the broker's DISCONNECT
 * carries no Reason String and its bytes are exact (`e0 01 <reason>`); one test checks the
 * Reason String when problem information is requested.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType } from "../../src/codec/mod.ts";
import type { ConfigInput } from "../../src/config/mod.ts";
import { TestClient, text } from "../helpers/test_client.ts";
import { bytes, type Field, frame, props, str, u16, u32 } from "../vectors/mod.ts";

import {
  type Attack,
  connectPacket,
  disconnectFor,
  hex,
  MALFORMED,
  PACKET_IDENTIFIER_NOT_FOUND,
  PACKET_TOO_LARGE,
  PINGREQ,
  PINGRESP,
  PROTOCOL_ERROR,
  QUOTA_EXCEEDED,
  RECEIVE_MAXIMUM_EXCEEDED,
  refusedConnect,
  TOPIC_ALIAS_INVALID,
  TOPIC_NAME_INVALID,
  underAttack,
  v5props,
  type Version,
  VERSIONS,
} from "../helpers/raw_attack.ts";

// ---- before CONNECT ---------------------------------------------------------------------------

const BEFORE_CONNECT: { name: string; bytes: Uint8Array }[] = [
  { name: "PINGREQ", bytes: new Uint8Array(PINGREQ) },
  {
    name: "PUBLISH",
    bytes: frame(
      0x30, // PUBLISH, QoS 0
      str("a/b"), // topic
      "hi", // payload
    ),
  },
  {
    name: "SUBSCRIBE",
    bytes: frame(
      0x82, // SUBSCRIBE, required flags 0010
      u16(1), // packet identifier
      str("#"), // topic filter
      0x00, // options: QoS 0
    ),
  },
];

for (const { name, bytes: packet } of BEFORE_CONNECT) {
  Deno.test(`a ${name} before CONNECT closes the connection without an answer [MQTT-3.1.0-1]`, async () => {
    await underAttack(undefined, async ({ open }) => {
      const raw = await open();
      await raw.write(packet);
      await raw.expectAnswerAndClose([]);
    });
  });
}

// ---- malformed packets and protocol errors after CONNECT --------------------------------------

interface BadPacket {
  /** What is wrong with the packet. */
  what: string;
  /** Spec tags per protocol version (3.1.1 numbering for 4, MQTT 5 for 5). */
  spec: Record<Version, string>;
  versions: Version[];
  /** MQTT 5 DISCONNECT reason code. */
  reasonCode: number;
  bytes(version: Version): Uint8Array;
}

function both(tag: string): Record<Version, string> {
  return { 4: tag, 5: tag };
}

const BAD_PACKETS: BadPacket[] = [
  {
    what: "a second CONNECT",
    spec: both("[MQTT-3.1.0-2]"),
    versions: [4, 5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) => connectPacket(version, "attacker"),
  },
  {
    what: "reserved packet type 0",
    spec: both(""),
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: () =>
      bytes(
        0x00, // packet type 0 (reserved), flags 0
        0x00, // remaining length 0
      ),
  },
  {
    what: "packet type 15, reserved before MQTT 5",
    spec: both(""),
    versions: [4],
    reasonCode: MALFORMED,
    bytes: () =>
      bytes(
        0xf0, // packet type 15 (reserved in 3.1.1), flags 0
        0x00, // remaining length 0
      ),
  },
  {
    what: "AUTH without an authentication method in CONNECT",
    spec: { 4: "", 5: "[MQTT-4.12.0-7]" },
    versions: [5],
    reasonCode: PROTOCOL_ERROR,
    bytes: () =>
      bytes(
        0xf0, // AUTH, flags 0
        0x00, // remaining length 0: reason Success, no properties
      ),
  },
  {
    what: "SUBSCRIBE with fixed-header flags 0000",
    spec: both("[MQTT-3.8.1-1]"),
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: (version) =>
      frame(
        0x80, // SUBSCRIBE with flags 0000 (must be 0010)
        u16(1), // packet identifier
        v5props(version), // no properties
        str("a"), // topic filter
        0x01, // options: QoS 1
      ),
  },
  {
    what: "UNSUBSCRIBE with fixed-header flags 0000",
    spec: both("[MQTT-3.10.1-1]"),
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: (version) =>
      frame(
        0xa0, // UNSUBSCRIBE with flags 0000 (must be 0010)
        u16(1), // packet identifier
        v5props(version), // no properties
        str("a"), // topic filter
      ),
  },
  {
    what: "PUBREL with fixed-header flags 0000",
    spec: both("[MQTT-3.6.1-1]"),
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: () =>
      frame(
        0x60, // PUBREL with flags 0000 (must be 0010)
        u16(1), // packet identifier
      ),
  },
  {
    what: "PINGREQ with fixed-header flags 0001",
    spec: { 4: "[MQTT-2.2.2-2]", 5: "[MQTT-2.1.3-1]" },
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: () =>
      bytes(
        0xc1, // PINGREQ with flags 0001 (must be 0000)
        0x00, // remaining length 0
      ),
  },
  {
    what: "PUBLISH with QoS 3",
    spec: both("[MQTT-3.3.1-4]"),
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: (version) =>
      frame(
        0x36, // PUBLISH, QoS bits 11
        str("a"), // topic
        u16(1), // packet identifier
        v5props(version), // no properties
        "x", // payload
      ),
  },
  {
    what: "a remaining length of 5 bytes",
    spec: both(""),
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: () =>
      bytes(
        0x30, // PUBLISH, QoS 0
        [0xff, 0xff, 0xff, 0xff, 0x01], // remaining length: a fifth byte (at most 4 are allowed)
      ),
  },
  {
    what: "a remaining length encoded in more bytes than needed",
    spec: { 4: "", 5: "[MQTT-1.5.5-1]" },
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: () =>
      bytes(
        0xc0, // PINGREQ
        [0x80, 0x00], // remaining length 0 written in two bytes
      ),
  },
  {
    what: "a PINGREQ with a body",
    spec: both(""),
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: () =>
      bytes(
        0xc0, // PINGREQ
        0x01, // remaining length 1 (must be 0)
        0x00, // a stray body byte
      ),
  },
  {
    what: "ill-formed UTF-8 in a PUBLISH topic",
    spec: { 4: "[MQTT-1.5.3-1]", 5: "[MQTT-1.5.4-1]" },
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        [0x00, 0x03, 0x61, 0xff, 0x62], // topic: length 3, "a", 0xff (never valid UTF-8), "b"
        v5props(version), // no properties
        "x", // payload
      ),
  },
  {
    what: "an encoded surrogate (U+D800) in a PUBLISH topic",
    spec: { 4: "[MQTT-1.5.3-1]", 5: "[MQTT-1.5.4-1]" },
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        [0x00, 0x03, 0xed, 0xa0, 0x80], // topic: length 3, U+D800 as UTF-8 bytes ed a0 80
        v5props(version), // no properties
        "x", // payload
      ),
  },
  {
    what: "U+0000 in a PUBLISH topic",
    spec: { 4: "[MQTT-1.5.3-2]", 5: "[MQTT-1.5.4-2]" },
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        [0x00, 0x03, 0x61, 0x00, 0x62], // topic: length 3, "a", U+0000, "b"
        v5props(version), // no properties
        "x", // payload
      ),
  },
  {
    what: "ill-formed UTF-8 in a SUBSCRIBE topic filter",
    spec: { 4: "[MQTT-3.8.3-1]", 5: "[MQTT-3.8.3-1]" },
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: (version) =>
      frame(
        0x82, // SUBSCRIBE
        u16(1), // packet identifier
        v5props(version), // no properties
        [0x00, 0x02, 0xc3, 0x28], // filter: length 2, a lead byte followed by a non-continuation
        0x00, // options: QoS 0
      ),
  },
  {
    what: "a wildcard + in a PUBLISH topic",
    spec: both("[MQTT-3.3.2-2]"),
    versions: [4, 5],
    reasonCode: TOPIC_NAME_INVALID,
    bytes: (version) =>
      frame(
        0x32, // PUBLISH, QoS 1
        str("a/+"), // topic with a wildcard
        u16(1), // packet identifier
        v5props(version), // no properties
        "x", // payload
      ),
  },
  {
    what: "a wildcard # in a PUBLISH topic",
    spec: both("[MQTT-3.3.2-2]"),
    versions: [4, 5],
    reasonCode: TOPIC_NAME_INVALID,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        str("a/#"), // topic with a wildcard
        v5props(version), // no properties
        "x", // payload
      ),
  },
  {
    what: "packet identifier 0 on SUBSCRIBE",
    spec: { 4: "[MQTT-2.3.1-1]", 5: "[MQTT-2.2.1-3]" },
    versions: [4, 5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0x82, // SUBSCRIBE
        u16(0), // packet identifier 0
        v5props(version), // no properties
        str("a"), // topic filter
        0x01, // options: QoS 1
      ),
  },
  {
    what: "packet identifier 0 on UNSUBSCRIBE",
    spec: { 4: "[MQTT-2.3.1-1]", 5: "[MQTT-2.2.1-3]" },
    versions: [4, 5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0xa2, // UNSUBSCRIBE
        u16(0), // packet identifier 0
        v5props(version), // no properties
        str("a"), // topic filter
      ),
  },
  {
    what: "packet identifier 0 on a QoS 1 PUBLISH",
    spec: { 4: "[MQTT-2.3.1-1]", 5: "[MQTT-2.2.1-3]" },
    versions: [4, 5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0x32, // PUBLISH, QoS 1
        str("a"), // topic
        u16(0), // packet identifier 0
        v5props(version), // no properties
        "x", // payload
      ),
  },
  {
    what: "a SUBSCRIBE without any topic filter",
    spec: { 4: "[MQTT-3.8.3-3]", 5: "[MQTT-3.8.3-2]" },
    versions: [4, 5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0x82, // SUBSCRIBE
        u16(1), // packet identifier
        v5props(version), // no properties, and no payload
      ),
  },
  {
    what: "DUP set on a QoS 0 PUBLISH",
    spec: both("[MQTT-3.3.1-2]"),
    versions: [4, 5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0x38, // PUBLISH, DUP 1, QoS 0
        str("a"), // topic
        v5props(version), // no properties
        "x", // payload
      ),
  },
  {
    what: "a duplicate Payload Format Indicator",
    spec: { 4: "", 5: "(section 3.3.2.3.2)" },
    versions: [5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        str("a"), // topic
        v5props(version, 0x01, 0x01, 0x01, 0x01), // Payload Format Indicator = 1, twice
        "x", // payload
      ),
  },
  {
    what: "a duplicate Message Expiry Interval",
    spec: { 4: "", 5: "(section 3.3.2.3.3)" },
    versions: [5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        str("a"), // topic
        v5props(version, 0x02, u32(10), 0x02, u32(20)), // Message Expiry Interval, twice
        "x", // payload
      ),
  },
  {
    what: "two Subscription Identifiers on SUBSCRIBE",
    spec: { 4: "", 5: "(section 3.8.2.1.2)" },
    versions: [5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0x82, // SUBSCRIBE
        u16(1), // packet identifier
        v5props(version, 0x0b, 0x01, 0x0b, 0x02), // Subscription Identifier 1, then 2
        str("a"), // topic filter
        0x00, // options: QoS 0
      ),
  },
  {
    what: "a Subscription Identifier sent by a client on PUBLISH",
    spec: { 4: "", 5: "[MQTT-3.3.4-6]" },
    versions: [5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        str("a"), // topic
        v5props(version, 0x0b, 0x05), // Subscription Identifier 5
        "x", // payload
      ),
  },
  {
    what: "a Session Expiry Interval on PUBLISH (not allowed there)",
    spec: { 4: "", 5: "(section 2.2.2.2)" },
    versions: [5],
    reasonCode: MALFORMED,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        str("a"), // topic
        v5props(version, 0x11, u32(60)), // Session Expiry Interval: a CONNECT/CONNACK property
        "x", // payload
      ),
  },
  {
    what: "a Topic Alias on SUBSCRIBE (not allowed there)",
    spec: { 4: "", 5: "(section 2.2.2.2)" },
    versions: [5],
    reasonCode: MALFORMED,
    bytes: (version) =>
      frame(
        0x82, // SUBSCRIBE
        u16(1), // packet identifier
        v5props(version, 0x23, u16(1)), // Topic Alias: a PUBLISH property
        str("a"), // topic filter
        0x00, // options: QoS 0
      ),
  },
  {
    what: "an unknown property identifier",
    spec: { 4: "", 5: "(section 2.2.2.2)" },
    versions: [5],
    reasonCode: MALFORMED,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        str("a"), // topic
        v5props(version, 0x7f, 0x00), // property 0x7f does not exist
        "x", // payload
      ),
  },
  {
    what: "DISCONNECT with fixed-header flags 0001",
    spec: both("[MQTT-3.14.1-1]"),
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: () =>
      bytes(
        0xe1, // DISCONNECT with flags 0001 (must be 0000)
        0x00, // remaining length 0
      ),
  },
  {
    what: "PUBACK with packet identifier 0",
    spec: { 4: "[MQTT-2.3.1-6]", 5: "[MQTT-2.2.1-5]" },
    versions: [4, 5],
    reasonCode: PROTOCOL_ERROR,
    bytes: () =>
      bytes(
        0x40, // PUBACK
        0x02, // remaining length 2
        u16(0), // packet identifier 0: no PUBLISH ever has it
      ),
  },
  {
    what: "PUBREL with packet identifier 0",
    spec: { 4: "[MQTT-2.3.1-6]", 5: "[MQTT-2.2.1-5]" },
    versions: [4, 5],
    reasonCode: PROTOCOL_ERROR,
    bytes: () =>
      bytes(
        0x62, // PUBREL
        0x02, // remaining length 2
        u16(0), // packet identifier 0: no PUBLISH ever has it
      ),
  },
  {
    what: "PUBACK with a reason code PUBACK does not have (0x05)",
    spec: { 4: "", 5: "[MQTT-3.4.2-1]" },
    versions: [5],
    reasonCode: PROTOCOL_ERROR,
    bytes: () =>
      bytes(
        0x40, // PUBACK
        0x03, // remaining length 3
        u16(0x1234), // packet identifier
        0x05, // reason code 0x05: not a PUBACK reason code
      ),
  },
  {
    what: "PUBREL with a reason code PUBREL does not have (0x10)",
    spec: { 4: "", 5: "[MQTT-3.6.2-1]" },
    versions: [5],
    reasonCode: PROTOCOL_ERROR,
    bytes: () =>
      bytes(
        0x62, // PUBREL
        0x03, // remaining length 3
        u16(0x1234), // packet identifier
        0x10, // reason code 0x10: a PUBACK code, not a PUBREL one
      ),
  },
  {
    what: "a Payload Format Indicator of 2",
    spec: { 4: "", 5: "(section 3.3.2.3.2)" },
    versions: [5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        str("a"), // topic
        v5props(version, 0x01, 0x02), // Payload Format Indicator 2 (only 0 and 1 exist)
        "x", // payload
      ),
  },
  {
    what: "a Topic Alias above the Topic Alias Maximum",
    spec: { 4: "", 5: "[MQTT-3.2.2-17]" },
    versions: [5],
    reasonCode: TOPIC_ALIAS_INVALID,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        str("a"), // topic
        v5props(version, 0x23, u16(65)), // Topic Alias 65; the broker's maximum is 64
        "x", // payload
      ),
  },
  {
    what: "an empty topic with a Topic Alias that has no mapping",
    spec: { 4: "", 5: "(section 3.3.2.3.4)" },
    versions: [5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        str(""), // topic: empty, to be taken from the alias
        v5props(version, 0x23, u16(7)), // Topic Alias 7, never set on this connection
        "x", // payload
      ),
  },
  {
    what: "No Local on a shared subscription",
    spec: { 4: "", 5: "[MQTT-3.8.3-4]" },
    versions: [5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0x82, // SUBSCRIBE
        u16(1), // packet identifier
        v5props(version), // no properties
        str("$share/g/t"), // shared subscription
        0x05, // options: QoS 1, No Local
      ),
  },
  {
    what: "Retain Handling 3 in subscription options",
    spec: { 4: "", 5: "(section 3.8.3.1)" },
    versions: [5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0x82, // SUBSCRIBE
        u16(1), // packet identifier
        v5props(version), // no properties
        str("t"), // topic filter
        0x30, // options: QoS 0, Retain Handling 3
      ),
  },
  {
    what: "reserved bits set in subscription options",
    spec: { 4: "[MQTT-3.8.3-4]", 5: "[MQTT-3.8.3-5]" },
    versions: [4, 5],
    reasonCode: MALFORMED,
    bytes: (version) =>
      frame(
        0x82, // SUBSCRIBE
        u16(1), // packet identifier
        v5props(version), // no properties
        str("t"), // topic filter
        0xc0, // options: QoS 0 with the reserved bits 7 and 6 set
      ),
  },
  {
    what: "an UNSUBSCRIBE without any topic filter",
    spec: { 4: "[MQTT-3.10.3-2]", 5: "[MQTT-3.10.3-2]" },
    versions: [4, 5],
    reasonCode: PROTOCOL_ERROR,
    bytes: (version) =>
      frame(
        0xa2, // UNSUBSCRIBE
        u16(1), // packet identifier
        v5props(version), // no properties, and no payload
      ),
  },
  {
    what: "Topic Alias 0",
    spec: { 4: "", 5: "[MQTT-3.3.2-8]" },
    versions: [5],
    reasonCode: TOPIC_ALIAS_INVALID,
    bytes: (version) =>
      frame(
        0x30, // PUBLISH, QoS 0
        str("a"), // topic
        v5props(version, 0x23, u16(0)), // Topic Alias 0
        "x", // payload
      ),
  },
];

for (const bad of BAD_PACKETS) {
  for (const version of bad.versions) {
    const answer = version === 5
      ? `gets DISCONNECT 0x${bad.reasonCode.toString(16)} and is closed`
      : "is closed without an answer";
    // Closing on a protocol violation: 3.1.1 [MQTT-4.8.0-1], MQTT 5 [MQTT-4.13.1-1].
    const tags = [bad.spec[version], version === 5 ? "[MQTT-4.13.1-1]" : "[MQTT-4.8.0-1]"];
    Deno.test(
      `v${version === 5 ? 5 : "3.1.1"}: ${bad.what} ${answer} ${
        tags.filter((t) => t !== "").join(" ")
      }`,
      async () => {
        await underAttack(undefined, async ({ connect }) => {
          const raw = await connect(version);
          await raw.write(bad.bytes(version));
          await raw.expectAnswerAndClose(disconnectFor(version, bad.reasonCode));
        });
      },
    );
  }
}

Deno.test("v5: the DISCONNECT for a protocol error carries a Reason String when problem information is requested", async () => {
  await underAttack(undefined, async ({ open }) => {
    const raw = await open();
    const connect = frame(
      0x10, // CONNECT
      str("MQTT"), // protocol name
      0x05, // protocol level 5
      0x02, // clean start
      u16(0), // keep alive off
      props(), // no properties: Request Problem Information defaults to 1
      str("chatty"), // client identifier
    );
    await raw.write(connect);
    assert.equal((await raw.readPacket())[0], 0x20);
    await raw.write(connect); // a second CONNECT
    const answer = await raw.readToEnd();
    assert.equal(answer[0], 0xe0, `expected DISCONNECT, got ${hex(answer)}`);
    // Remaining length fits one byte here: byte 2 is the reason code, byte 3 the property length,
    // byte 4 the first property: Reason String (0x1f).
    assert.equal(answer[2], PROTOCOL_ERROR);
    assert.ok(answer[3] > 0, "no properties");
    assert.equal(answer[4], 0x1f, "no Reason String");
  });
});

// ---- sizes ------------------------------------------------------------------------------------

for (const version of VERSIONS) {
  Deno.test(
    `v${
      version === 5 ? 5 : "3.1.1"
    }: a PUBLISH announcing 256 MiB with a few bytes sent is refused at once${
      version === 5
        ? " with DISCONNECT 0x95, without allocating [MQTT-3.2.2-15]"
        : ", without allocating"
    }`,
    async () => {
      await underAttack(undefined, async ({ connect }) => {
        const raw = await connect(version);
        const before = Deno.memoryUsage().rss;
        await raw.write(bytes(
          0x30, // PUBLISH, QoS 0
          [0xff, 0xff, 0xff, 0x7f], // remaining length 268,435,455 (the largest there is)
          str("a/b"), // topic: the only body bytes sent
        ));
        // The default maximum packet size is 1 MiB: Packet Too Large.
        await raw.expectAnswerAndClose(disconnectFor(version, PACKET_TOO_LARGE));
        const grown = Deno.memoryUsage().rss - before;
        assert.ok(grown < 8 * 1024 * 1024, `RSS grew by ${grown} bytes`);
      });
    },
  );
}

Deno.test("a CONNECT announcing 256 MiB is refused before any CONNACK, without allocating", async () => {
  await underAttack(undefined, async ({ open }) => {
    const raw = await open();
    const before = Deno.memoryUsage().rss;
    await raw.write(bytes(
      0x10, // CONNECT
      [0xff, 0xff, 0xff, 0x7f], // remaining length 268,435,455
      str("MQTT"), // protocol name, then nothing more
    ));
    await raw.expectAnswerAndClose([]);
    const grown = Deno.memoryUsage().rss - before;
    assert.ok(grown < 8 * 1024 * 1024, `RSS grew by ${grown} bytes`);
  });
});

for (const version of VERSIONS) {
  Deno.test(`v${version === 5 ? 5 : "3.1.1"}: a topic of 65,535 bytes is legal and delivered [MQTT-4.7.3-3]`, async () => {
    await underAttack(undefined, async ({ server }) => {
      const topic = `t/${"x".repeat(65_533)}`;
      assert.equal(topic.length, 65_535);
      const { client: sub } = await TestClient.connect(server.port, {
        clientId: "long-s",
        version,
      });
      const { client: pub } = await TestClient.connect(server.port, {
        clientId: "long-p",
        version,
      });
      try {
        assert.deepEqual((await sub.subscribe(topic, 1)).reasonCodes, [1]);
        const ack = await pub.publish(topic, "long", { qos: 1 });
        assert.equal(ack?.type, PacketType.PUBACK);
        assert.equal((ack as { reasonCode: number }).reasonCode, 0);
        const message = await sub.expect(PacketType.PUBLISH);
        assert.equal(message.topic, topic);
        assert.equal(text(message.payload), "long");
        await sub.ack(message);
        await pub.disconnect();
        await sub.disconnect();
      } finally {
        await pub.destroy();
        await sub.destroy();
      }
    });
  });

  Deno.test(
    `v${
      version === 5 ? 5 : "3.1.1"
    }: a SUBSCRIBE with 10,000 filters gets 10,000 codes: 1,000 granted, the rest ${
      version === 5 ? "0x97 Quota exceeded [MQTT-3.8.4-6]" : "0x80 Failure [MQTT-3.8.4-5]"
    } [MQTT-3.9.3-1]`,
    async () => {
      await underAttack(undefined, async ({ server, connect }) => {
        const raw = await connect(version, "many-filters");
        const filters: Field[] = [];
        for (let i = 0; i < 10_000; i++) {
          filters.push(str(`f/${i}`), 0x01); // topic filter, options: QoS 1
        }
        await raw.write(frame(
          0x82, // SUBSCRIBE
          u16(0x0101), // packet identifier
          v5props(version), // no properties
          ...filters,
        ));
        const suback = await raw.readPacket();
        const headerLength = 1 + 2; // type byte, remaining length 10,003 or 10,002 in two bytes
        assert.equal(suback[0], 0x90);
        const body = suback.slice(headerLength);
        assert.deepEqual(body.slice(0, 2), [0x01, 0x01]); // packet identifier echoed
        const codes = body.slice(version === 5 ? 3 : 2); // after the (empty) properties
        assert.equal(codes.length, 10_000);
        const limit = server.config.mqtt.maxSubscriptionsPerClient;
        assert.equal(limit, 1000);
        assert.ok(codes.slice(0, limit).every((c) => c === 0x01), "first 1,000 not granted QoS 1");
        const refused = version === 5 ? QUOTA_EXCEEDED : 0x80;
        assert.ok(codes.slice(limit).every((c) => c === refused), "the rest not refused");
        assert.equal((await server.broker.getSession("many-filters"))?.subscriptions.length, limit);
        // Still connected and answering.
        await raw.write(PINGREQ);
        assert.deepEqual(await raw.read(2), PINGRESP);
      });
    },
  );
}

// ---- acknowledgements for unknown packet identifiers ------------------------------------------

for (const version of VERSIONS) {
  const v5 = version === 5;
  Deno.test(`v${v5 ? 5 : "3.1.1"}: PUBREL and PUBREC for unknown ids are answered${v5 ? " with 0x92" : ""}, PUBACK and PUBCOMP ignored, the connection stays open [MQTT-4.3.3-11]`, async () => {
    await underAttack(undefined, async ({ connect }) => {
      const raw = await connect(version);
      await raw.write(bytes(
        [0x40, 0x02, 0x12, 0x34], // PUBACK for id 0x1234, never sent
        [0x62, 0x02, 0x12, 0x35], // PUBREL for id 0x1235, never received
        [0x50, 0x02, 0x12, 0x36], // PUBREC for id 0x1236, never sent
        [0x70, 0x02, 0x12, 0x37], // PUBCOMP for id 0x1237, never sent
        PINGREQ,
      ));
      const expected = v5
        ? [
          [0x70, 0x03, 0x12, 0x35, PACKET_IDENTIFIER_NOT_FOUND], // PUBCOMP 0x92
          [0x62, 0x03, 0x12, 0x36, PACKET_IDENTIFIER_NOT_FOUND], // PUBREL 0x92
          PINGRESP,
        ]
        : [
          [0x70, 0x02, 0x12, 0x35], // PUBCOMP
          [0x62, 0x02, 0x12, 0x36], // PUBREL
          PINGRESP,
        ];
      for (const packet of expected) assert.deepEqual(hex(await raw.readPacket()), hex(packet));
      // Still open: a normal DISCONNECT closes it without anything more from the broker.
      await raw.write([0xe0, 0x00]); // DISCONNECT, normal
      await raw.expectAnswerAndClose([]);
    });
  });
}

// ---- CONNECT itself ---------------------------------------------------------------------------

for (const level of [6, 255]) {
  Deno.test(`an unsupported protocol level ${level} gets CONNACK 20 02 00 01 and the connection closes [MQTT-3.1.2-2]`, async () => {
    await underAttack(undefined, async ({ open }) => {
      const raw = await open();
      await raw.write(frame(
        0x10, // CONNECT
        str("MQTT"), // protocol name
        level, // protocol level: unknown
        0x02, // clean session
        u16(0), // keep alive off
        str("future"), // client identifier
      ));
      await raw.expectAnswerAndClose([0x20, 0x02, 0x00, 0x01]);
    });
  });
}

Deno.test('a CONNECT with protocol name "MQTX" is closed without an answer [MQTT-3.1.2-1]', async () => {
  await underAttack(undefined, async ({ open }) => {
    const raw = await open();
    await raw.write(frame(
      0x10, // CONNECT
      str("MQTX"), // protocol name: not MQTT
      0x04, // protocol level 4
      0x02, // clean session
      u16(0), // keep alive off
      str("impostor"), // client identifier
    ));
    await raw.expectAnswerAndClose([]);
  });
});

Deno.test("a CONNECT with the reserved flag set is closed without an answer [MQTT-3.1.2-3]", async () => {
  await underAttack(undefined, async ({ open }) => {
    const raw = await open();
    await raw.write(frame(
      0x10, // CONNECT
      str("MQTT"), // protocol name
      0x04, // protocol level 4
      0x03, // connect flags: clean session + reserved bit 0
      u16(0), // keep alive off
      str("reserved"), // client identifier
    ));
    await raw.expectAnswerAndClose([]);
  });
});

const BAD_CLIENT_IDS: { what: string; spec: Record<Version, string>; id: number[] }[] = [
  {
    what: "ill-formed UTF-8",
    spec: { 4: "[MQTT-1.5.3-1]", 5: "[MQTT-1.5.4-1]" },
    id: [0x00, 0x03, 0x61, 0xfe, 0x62], // length 3: "a", 0xfe (never valid UTF-8), "b"
  },
  {
    what: "U+0000",
    spec: { 4: "[MQTT-1.5.3-2]", 5: "[MQTT-1.5.4-2]" },
    id: [0x00, 0x03, 0x61, 0x00, 0x62], // length 3: "a", U+0000, "b"
  },
];

for (const { what, spec, id } of BAD_CLIENT_IDS) {
  for (const version of VERSIONS) {
    Deno.test(
      `v${
        version === 5 ? 5 : "3.1.1"
      }: a client id with ${what} is refused and the connection closed ${
        spec[version]
      } [MQTT-3.1.4-1]`,
      async () => {
        await underAttack(undefined, async ({ server, open }) => {
          const raw = await open();
          await raw.write(frame(
            0x10, // CONNECT
            str("MQTT"), // protocol name
            version, // protocol level
            0x02, // clean start
            u16(0), // keep alive off
            v5props(version), // no properties
            id, // client identifier
          ));
          const answer = await raw.readToEnd();
          if (version === 4) {
            // 3.1.1 has no return code for a malformed CONNECT: the connection just closes.
            assert.deepEqual(answer, []);
          } else if (answer.length > 0) {
            // MQTT 5 may say why before closing (section 4.13): CONNACK 0x81, nothing else.
            assert.equal(answer[0], 0x20, `expected CONNACK, got ${hex(answer)}`);
            assert.equal(answer[3], MALFORMED, `expected reason 0x81, got ${hex(answer)}`);
          }
          assert.equal(server.broker.sessionCount, 1); // the bystander's only
        });
      },
    );
  }
}

// ---- timeouts ---------------------------------------------------------------------------------

const FAST_TIMEOUT: ConfigInput = { mqtt: { connectTimeout: "200ms" } };

Deno.test("a connection that never sends CONNECT is closed after connectTimeout", async () => {
  await underAttack(FAST_TIMEOUT, async ({ open }) => {
    const raw = await open();
    const started = performance.now();
    await raw.expectAnswerAndClose([], 3000);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 150, `closed after ${elapsed} ms, before the timeout`);
  });
});

Deno.test("a half-sent CONNECT is closed after connectTimeout", async () => {
  await underAttack(FAST_TIMEOUT, async ({ open }) => {
    const raw = await open();
    const started = performance.now();
    await raw.write(connectPacket(4, "half").subarray(0, 8)); // header and part of "MQTT"
    await raw.expectAnswerAndClose([], 3000);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 150, `closed after ${elapsed} ms, before the timeout`);
  });
});

for (const version of VERSIONS) {
  Deno.test(`v${version === 5 ? 5 : "3.1.1"}: a half-sent packet after CONNECT is cut off after connectTimeout${version === 5 ? " with DISCONNECT 0x81" : ""}`, async () => {
    await underAttack(FAST_TIMEOUT, async ({ connect }) => {
      const raw = await connect(version);
      const started = performance.now();
      await raw.write(bytes(
        0x30, // PUBLISH, QoS 0
        0x0a, // remaining length 10
        [0x00, 0x01], // ...of which only 2 bytes ever arrive
      ));
      await raw.expectAnswerAndClose(disconnectFor(version, MALFORMED), 3000);
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 150, `closed after ${elapsed} ms, before the timeout`);
    });
  });
}

Deno.test("a half-sent packet behind packets that waited for CONNECT is cut off after connectTimeout", async () => {
  await underAttack(FAST_TIMEOUT, async ({ open }) => {
    const raw = await open();
    const started = performance.now();
    // One write: CONNECT (answered asynchronously, so what follows waits undecoded), PINGREQ,
    // and the start of a PUBLISH whose rest never comes.
    await raw.write(bytes(
      connectPacket(4, "held"),
      [0xc0, 0x00], // PINGREQ
      [0x30, 0x0a, 0x00, 0x01], // PUBLISH, remaining length 10, 2 bytes of it
    ));
    // CONNACK, then PINGRESP, then the close once the partial PUBLISH is overdue.
    await raw.expectAnswerAndClose([0x20, 0x02, 0x00, 0x00, 0xd0, 0x00], 3000);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 150, `closed after ${elapsed} ms, before the timeout`);
  });
});

Deno.test("a packet trickled one byte at a time is cut off after connectTimeout (slowloris)", async () => {
  await underAttack(FAST_TIMEOUT, async ({ connect }) => {
    const raw = await connect(5);
    const packet = frame(
      0x30, // PUBLISH, QoS 0
      str("slow/loris"), // topic
      props(), // no properties
      "x".repeat(1000), // payload
    );
    // The attack itself is paced: a byte every 20 ms, each well inside the timeout.
    let sent = 0;
    let closedEarly = false;
    raw.closed.then(() => {
      closedEarly = true;
    });
    while (!closedEarly && sent < packet.length) {
      if (!await raw.write(packet.subarray(sent, sent + 1))) break;
      sent++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Unchecked, the trickle would last over 20 s; the connection ends long before it is through.
    assert.ok(sent < packet.length, "the whole packet went through");
    await raw.expectAnswerAndClose(disconnectFor(5, MALFORMED), 3000);
  });
});

// ---- flow control -----------------------------------------------------------------------------

Deno.test("v5: a QoS 2 PUBLISH beyond the broker's Receive Maximum is answered by DISCONNECT 0x93 [MQTT-3.3.4-7]", async () => {
  await underAttack({ mqtt: { receiveMaximum: 2 } }, async ({ connect }) => {
    const raw = await connect(5);
    const qos2 = (id: number) =>
      frame(
        0x34, // PUBLISH, QoS 2
        str("flood"), // topic
        u16(id), // packet identifier
        props(), // no properties
        "x", // payload
      );
    // Three QoS 2 messages, never released with PUBREL: one more than Receive Maximum 2.
    await raw.write(bytes(qos2(1), qos2(2), qos2(3)));
    for (const id of [1, 2]) {
      const pubrec = await raw.readPacket();
      assert.equal(pubrec[0], 0x50, `expected PUBREC, got ${hex(pubrec)}`);
      assert.deepEqual(pubrec.slice(2, 4), u16(id));
    }
    await raw.expectAnswerAndClose([0xe0, 0x01, RECEIVE_MAXIMUM_EXCEEDED]);
  });
});

// ---- DISCONNECT from the client and the will --------------------------------------------------

/** An MQTT 5 CONNECT with a QoS 1 will on `will/<clientId>`, built field by field. */
function connectWithWill(clientId: string): Uint8Array {
  return frame(
    0x10, // CONNECT
    str("MQTT"), // protocol name
    0x05, // protocol level 5
    0x0e, // connect flags: clean start (0x02), will (0x04), will QoS 1 (0x08)
    u16(0), // keep alive off
    props(0x17, 0x00), // Request Problem Information = 0
    str(clientId), // client identifier
    props(), // will properties: none
    str(`will/${clientId}`), // will topic
    str("last words"), // will payload (two-byte length, then bytes)
  );
}

/**
 * Connects a client with a will, sends `disconnect`, checks the broker's answer, and reports
 * whether the will was published (a watcher subscribed to `will/#` sees either the will or, if
 * it was discarded, the marker published afterwards).
 */
async function willAfter(
  attack: Attack,
  disconnect: Uint8Array,
  answer: number[],
): Promise<boolean> {
  const { client: watcher } = await TestClient.connect(attack.server.port, {
    clientId: "watcher",
    version: 5,
  });
  try {
    await watcher.subscribe("will/#", 1);
    const raw = await attack.open();
    await raw.write(connectWithWill("leaver"));
    const connack = await raw.readPacket();
    assert.equal(connack[3], 0x00, `CONNECT refused: ${hex(connack)}`);
    await raw.write(disconnect);
    await raw.expectAnswerAndClose(answer);
    // QoS 0 to its own subscription: no PUBACK to interleave with the deliveries.
    await watcher.publish("will/marker", "after the close", { qos: 0 });
    const first = await watcher.expect(PacketType.PUBLISH);
    await watcher.ack(first);
    if (first.topic === "will/marker") return false;
    assert.equal(first.topic, "will/leaver");
    assert.equal(text(first.payload), "last words");
    const marker = await watcher.expect(PacketType.PUBLISH);
    await watcher.ack(marker);
    return true;
  } finally {
    await watcher.disconnect();
  }
}

Deno.test("v5: a DISCONNECT with reason 0x00 discards the will [MQTT-3.14.4-3]", async () => {
  await underAttack(undefined, async (attack) => {
    const published = await willAfter(attack, bytes(0xe0, 0x00), []); // DISCONNECT, normal
    assert.equal(published, false);
  });
});

Deno.test("v5: a DISCONNECT with reason 0x04 publishes the will", async () => {
  await underAttack(undefined, async (attack) => {
    const published = await willAfter(
      attack,
      bytes(
        0xe0, // DISCONNECT
        0x01, // remaining length 1
        0x04, // reason: Disconnect with Will Message
      ),
      [],
    );
    assert.equal(published, true);
  });
});

Deno.test("v5: a DISCONNECT with an error reason (0x80) still publishes the will: only 0x00 deletes it [MQTT-3.1.2-8]", async () => {
  await underAttack(undefined, async (attack) => {
    const published = await willAfter(
      attack,
      bytes(
        0xe0, // DISCONNECT
        0x01, // remaining length 1
        0x80, // reason: Unspecified error
      ),
      [],
    );
    assert.equal(published, true, "the will was discarded on a DISCONNECT with reason 0x80");
  });
});

Deno.test("v5: a DISCONNECT setting a Session Expiry Interval after CONNECT said 0 is a protocol error and the will is published (section 3.14.2.2.2)", async () => {
  await underAttack(undefined, async (attack) => {
    const published = await willAfter(
      attack,
      frame(
        0xe0, // DISCONNECT
        0x00, // reason: normal
        props(0x11, u32(60)), // Session Expiry Interval 60, but CONNECT had none (0)
      ),
      [0xe0, 0x01, PROTOCOL_ERROR],
    );
    assert.equal(published, true, "an invalid DISCONNECT must not discard the will");
  });
});

Deno.test("v5: a DISCONNECT with a reason code DISCONNECT does not have is a protocol error and the will is published [MQTT-3.14.2-1]", async () => {
  await underAttack(undefined, async (attack) => {
    const published = await willAfter(
      attack,
      bytes(
        0xe0, // DISCONNECT
        0x01, // remaining length 1
        0x03, // reason code 0x03: not a DISCONNECT reason code
      ),
      [0xe0, 0x01, PROTOCOL_ERROR],
    );
    assert.equal(published, true, "an invalid DISCONNECT must not discard the will");
  });
});

// ---- more CONNECT edge cases ------------------------------------------------------------------

for (const version of VERSIONS) {
  Deno.test(`v${version === 5 ? 5 : "3.1.1"}: a CONNECT with will QoS set but no will flag is ${version === 5 ? "refused with CONNACK 0x81" : "closed without an answer"} [MQTT-3.1.2-11]`, async () => {
    await underAttack(undefined, async ({ open }) => {
      const raw = await open();
      await raw.write(frame(
        0x10, // CONNECT
        str("MQTT"), // protocol name
        version, // protocol level
        0x0a, // connect flags: clean start (0x02), will QoS 1 (0x08), but no will flag
        u16(0), // keep alive off
        v5props(version), // no properties
        str("no-will"), // client identifier
      ));
      await raw.expectAnswerAndClose(
        refusedConnect(version, MALFORMED, "Invalid CONNECT: will QoS is set without a will"),
      );
    });
  });

  Deno.test(`v${version === 5 ? 5 : "3.1.1"}: a CONNECT with will QoS 3 is ${version === 5 ? "refused with CONNACK 0x81" : "closed without an answer"} [MQTT-3.1.2-12]`, async () => {
    await underAttack(undefined, async ({ open }) => {
      const raw = await open();
      await raw.write(frame(
        0x10, // CONNECT
        str("MQTT"), // protocol name
        version, // protocol level
        0x1e, // connect flags: clean start (0x02), will (0x04), will QoS 3 (0x18)
        u16(0), // keep alive off
        v5props(version), // no properties
        str("qos3-will"), // client identifier
        v5props(version), // will properties: none
        str("w"), // will topic
        str("x"), // will payload
      ));
      await raw.expectAnswerAndClose(
        refusedConnect(version, MALFORMED, "Invalid CONNECT: will QoS is 3"),
      );
    });
  });
}

Deno.test("v3.1.1: a will topic with a wildcard closes the connection without a CONNACK, as no return code applies [MQTT-3.2.2-6]", async () => {
  await underAttack(undefined, async ({ open }) => {
    const raw = await open();
    await raw.write(frame(
      0x10, // CONNECT
      str("MQTT"), // protocol name
      0x04, // protocol level 4
      0x06, // connect flags: clean session (0x02), will (0x04), will QoS 0
      u16(0), // keep alive off
      str("wild-will"), // client identifier
      str("will/+"), // will topic with a wildcard
      str("x"), // will payload
    ));
    // Return code 3 ("Server unavailable") would tell the client to retry later, wrongly.
    await raw.expectAnswerAndClose([]);
  });
});

Deno.test("v5: a will topic with a wildcard is refused with CONNACK 0x90", async () => {
  await underAttack(undefined, async ({ open }) => {
    const raw = await open();
    await raw.write(frame(
      0x10, // CONNECT
      str("MQTT"), // protocol name
      0x05, // protocol level 5
      0x06, // connect flags: clean start (0x02), will (0x04), will QoS 0
      u16(0), // keep alive off
      props(0x17, 0x00), // Request Problem Information = 0
      str("wild-will"), // client identifier
      props(), // will properties: none
      str("will/#"), // will topic with a wildcard
      str("x"), // will payload
    ));
    const answer = await raw.readToEnd();
    assert.equal(answer[0], 0x20, `expected CONNACK, got ${hex(answer)}`);
    assert.equal(answer[2], 0x00, "Session Present must be 0 on a refusal [MQTT-3.2.2-6]");
    assert.equal(answer[3], TOPIC_NAME_INVALID);
  });
});

Deno.test("v5: a password without a user name is legal in MQTT 5 and accepted (section 3.1.2.9)", async () => {
  await underAttack(undefined, async ({ open }) => {
    const raw = await open();
    await raw.write(frame(
      0x10, // CONNECT
      str("MQTT"), // protocol name
      0x05, // protocol level 5
      0x42, // connect flags: clean start (0x02), password (0x40), no user name
      u16(0), // keep alive off
      props(), // no properties
      str("pw-only"), // client identifier
      str("secret"), // password (binary data: two-byte length, then bytes)
    ));
    const connack = await raw.readPacket();
    assert.equal(connack[0], 0x20);
    assert.equal(connack[3], 0x00, `refused: ${hex(connack)}`);
    await raw.write([0xe0, 0x00]); // DISCONNECT, normal
    await raw.expectAnswerAndClose([]);
  });
});

// ---- floods of connections --------------------------------------------------------------------

/** Half-open connections per flood test: a few thousand fds, well inside the process's 20,000. */
const HALF_OPEN = 2000;

/**
 * A connection that costs the test process almost nothing (a 64-byte read buffer, where a
 * RawClient reads 64 KiB at a time): thousands of them must not weigh on tests running alongside.
 */
interface LightSocket {
  conn: Deno.Conn;
  /** Everything received, once the broker has closed the connection. */
  ended: Promise<number[]>;
}

async function openLight(port: number): Promise<LightSocket> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const ended = (async () => {
    const received: number[] = [];
    const buffer = new Uint8Array(64);
    try {
      for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
        received.push(...buffer.subarray(0, n));
      }
    } catch {
      // Reset by the broker: the end as well.
    }
    return received;
  })();
  return { conn, ended };
}

async function closeAll(sockets: LightSocket[]): Promise<void> {
  for (const socket of sockets) {
    try {
      socket.conn.close();
    } catch {
      // Already closed by the broker.
    }
  }
  await Promise.all(sockets.map((s) => s.ended));
}

Deno.test(`${HALF_OPEN} half-open connections (a CONNECT cut short) are all closed after connectTimeout, and other clients stay served meanwhile`, async () => {
  await underAttack({ mqtt: { connectTimeout: "3s" } }, async ({ server }) => {
    const partial = bytes(
      0x10, // CONNECT
      0x10, // remaining length 16, of which only the protocol name follows
      str("MQTT"), // protocol name, then nothing more
    );
    const sockets: LightSocket[] = [];
    try {
      for (let i = 0; i < HALF_OPEN; i++) {
        const socket = await openLight(server.port);
        await socket.conn.write(partial);
        sockets.push(socket);
      }
      // The broker still serves the connected bystander with all of them hanging (checked by
      // underAttack's round trip), and a newcomer can still connect.
      const { client, connack } = await TestClient.connect(server.port, { clientId: "newcomer" });
      assert.equal(connack.reasonCode, 0);
      await client.disconnect();
      // Each is closed by the broker, without an answer, once connectTimeout passes.
      const received = await Promise.all(sockets.map((s) => s.ended));
      assert.ok(received.every((r) => r.length === 0));
      assert.ok(server.broker.stats.connectionsAccepted >= HALF_OPEN + 2); // all were accepted
      assert.equal(server.broker.connections.size, 1); // the bystander only
    } finally {
      await closeAll(sockets);
    }
  });
});

Deno.test("thousands of connections from one address beyond limits.maxConnectionsPerAddress are refused and closed, bounded", async () => {
  const limit = 50;
  await underAttack(
    {
      limits: { maxConnectionsPerAddress: limit, exemptLoopback: false, connectRatePerAddress: 0 },
    },
    async ({ server }) => {
      const sockets: LightSocket[] = [];
      try {
        for (let i = 0; i < HALF_OPEN; i++) sockets.push(await openLight(server.port)); // no CONNECT
        // The last ones are closed at once, without a word (which also shows all were accepted:
        // connections are accepted in order).
        assert.deepEqual(await sockets[sockets.length - 1].ended, []);
        // Beyond the limit at most 256 refused connections wait to be told why; the rest were
        // closed at once, so a flood cannot hold more sockets than that.
        assert.ok(
          server.broker.connections.size <= limit + 256,
          `${server.broker.connections.size} connections held`,
        );
        assert.ok(server.broker.stats.connectionsRefused >= HALF_OPEN - limit);
        // The first one over the limit (the bystander holds one place) is held back to be told
        // why: its CONNECT gets CONNACK 0x97 Quota exceeded, and it is closed.
        const refused = sockets[limit - 1];
        await refused.conn.write(connectPacket(5, "late"));
        const answer = await refused.ended;
        // CONNACK, Session Present 0, 0x97 (a Reason String may follow in CONNACK [MQTT-3.1.2-29]).
        assert.equal(answer[0], 0x20, hex(answer));
        assert.deepEqual(answer.slice(2, 4), [0x00, 0x97], hex(answer));
      } finally {
        await closeAll(sockets);
      }
    },
  );
});
