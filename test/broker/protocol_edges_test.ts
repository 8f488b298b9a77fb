/**
 * Protocol edge cases: the broker says why before it closes, and lets the client read it. Each
 * case is raw bytes at both protocol levels, asserting the exact bytes the broker sends before it
 * closes (MQTT 5 attackers ask for no problem information unless a test says otherwise, so the
 * answers carry no Reason String).
 *
 * @module
 */

import assert from "node:assert/strict";
import { MqttError, PacketDecoder, PacketType } from "../../src/codec/mod.ts";
import type { ConnackPacket } from "../../src/codec/packets.ts";
import { startBroker } from "../helpers/broker.ts";
import {
  disconnectFor,
  MALFORMED,
  PROTOCOL_ERROR,
  RECEIVE_MAXIMUM_EXCEEDED,
  refusedConnect,
  underAttack,
  v5props,
  type Version,
  VERSIONS,
} from "../helpers/raw_attack.ts";
import { TestClient } from "../helpers/test_client.ts";
import { bytes, frame, props, str, u16, u32 } from "../vectors/mod.ts";

const label = (version: Version) => version === 5 ? "v5" : "v3.1.1";

/** The error the broker's own decoder raises for a CONNECT, to know the exact Reason String. */
function decoderError(connect: Uint8Array): MqttError {
  const decoder = new PacketDecoder({ onPacket() {} }, {
    maximumPacketSize: 1 << 20,
    role: "server",
  });
  try {
    decoder.push(connect);
  } catch (error) {
    if (error instanceof MqttError) return error;
    throw error;
  }
  throw new Error("the CONNECT decoded");
}

/** An MQTT 5 CONNECT with the given properties and, optionally, a will with its properties. */
function connectV5(
  properties: number[],
  will?: { properties: number[]; topic?: string; payload?: string },
): Uint8Array {
  return frame(
    0x10, // CONNECT
    str("MQTT"), // protocol name
    0x05, // protocol level 5
    will ? 0x0e : 0x02, // connect flags: clean start, and a QoS 1 will when asked
    u16(0), // keep alive off
    properties,
    str("edge"), // client identifier
    ...(will
      ? [
        will.properties, // will properties
        ...(will.topic === undefined ? [] : [str(will.topic)]), // will topic
        ...(will.payload === undefined ? [] : [str(will.payload)]), // will payload
      ]
      : []),
  );
}

// ---- an MQTT 5 CONNECT that does not decode is answered with CONNACK --------------------------

const BAD_CONNECTS: { what: string; code: number; connect: Uint8Array }[] = [
  {
    what: "a property given twice",
    code: PROTOCOL_ERROR, // MQTT 5 section 3.1.2.11: "a Protocol Error to include ... more than once"
    connect: connectV5(props(0x21, u16(10), 0x21, u16(20))), // Receive Maximum twice
  },
  {
    what: "a property not allowed in CONNECT",
    code: MALFORMED, // section 2.2.2.2: an identifier not valid for the packet type
    connect: connectV5(props(0x23, u16(1))), // Topic Alias
  },
  {
    what: "an unknown property id",
    code: MALFORMED,
    connect: connectV5(props(0x7f, 0x00)),
  },
  {
    what: "a property value cut short",
    code: MALFORMED,
    connect: connectV5(props(0x11, [0x00, 0x00])), // Session Expiry Interval with 2 of 4 bytes
  },
  {
    what: "a property not allowed in the will properties",
    code: MALFORMED,
    connect: connectV5(props(), { properties: props(0x11, u32(5)), topic: "w", payload: "x" }),
  },
  {
    what: "a will flag without will topic and payload",
    code: MALFORMED,
    connect: connectV5(props(), { properties: props() }),
  },
];

for (const { what, code, connect } of BAD_CONNECTS) {
  Deno.test(`v5: a CONNECT with ${what} is answered with CONNACK 0x${code.toString(16)} before the close`, async () => {
    await underAttack(undefined, async ({ server, open }) => {
      const raw = await open();
      await raw.write(connect);
      const reason = decoderError(connect);
      assert.equal(reason.reasonCode, code);
      await raw.expectAnswerAndClose(refusedConnect(5, code, reason.message));
      assert.equal(server.broker.stats.connectsRefusedProtocol, 1, "counted as a protocol refusal");
    });
  });
}

Deno.test("v5: a will whose Response Topic is empty is refused with CONNACK 0x82 [MQTT-4.7.3-1]", async () => {
  await underAttack(undefined, async ({ open }) => {
    const raw = await open();
    await raw.write(connectV5(props(0x17, 0x00), {
      properties: props(0x08, str("")), // Response Topic ""
      topic: "w",
      payload: "x",
    }));
    await raw.expectAnswerAndClose([...frame(0x20, 0x00, PROTOCOL_ERROR, props())]);
  });
});

// ---- packets a client never sends -------------------------------------------------------------

const SERVER_ONLY: { name: string; bytes: number[] }[] = [
  { name: "CONNACK", bytes: [0x20, 0x02, 0x00, 0x00] },
  { name: "SUBACK", bytes: [0x90, 0x03, 0x00, 0x01, 0x00] },
  { name: "UNSUBACK", bytes: [0xb0, 0x02, 0x00, 0x01] },
  { name: "PINGRESP", bytes: [0xd0, 0x00] },
  // A huge announced length is never waited for: the first byte decides.
  { name: "SUBACK announcing 256 MB", bytes: [0x90, 0xff, 0xff, 0xff, 0x7f] },
  { name: "CONNACK with a malformed body", bytes: [0x20, 0x01, 0xff] },
];

for (const version of VERSIONS) {
  for (const { name, bytes: packet } of SERVER_ONLY) {
    Deno.test(`${label(version)}: a ${name} from a client is a protocol error${version === 5 ? " (DISCONNECT 0x82)" : ""}, whatever its body`, async () => {
      await underAttack(undefined, async ({ connect }) => {
        const raw = await connect(version);
        await raw.write(packet);
        await raw.expectAnswerAndClose(disconnectFor(version, PROTOCOL_ERROR));
      });
    });
  }

  Deno.test(`${label(version)}: the reserved packet type 0 closes the connection at once${version === 5 ? " (DISCONNECT 0x81)" : ""}, without waiting for its length`, async () => {
    await underAttack(undefined, async ({ connect }) => {
      const raw = await connect(version);
      await raw.write([0x00]); // one byte: type 0, and no remaining length yet
      await raw.expectAnswerAndClose(disconnectFor(version, MALFORMED));
    });
  });
}

Deno.test("v5: AUTH when no authentication method was agreed is a protocol error (DISCONNECT 0x82) [MQTT-4.12.0-7]", async () => {
  await underAttack(undefined, async ({ connect }) => {
    const raw = await connect(5);
    // A huge announced length: the first byte decides, before any body arrives.
    await raw.write([0xf0, 0xff, 0xff, 0xff, 0x7f]);
    await raw.expectAnswerAndClose(disconnectFor(5, PROTOCOL_ERROR));
  });
});

// ---- control characters ------------------------------------------------------------------------

for (const version of VERSIONS) {
  Deno.test(`${label(version)}: a client id with a control character is refused with CONNACK ${version === 5 ? "0x85" : "2"}`, async () => {
    await underAttack(undefined, async ({ open }) => {
      const raw = await open();
      await raw.write(frame(
        0x10, // CONNECT
        str("MQTT"),
        version,
        0x02, // clean start
        u16(0), // keep alive off
        v5props(version, 0x17, 0x00), // Request Problem Information = 0
        str("bad\u0007id"), // client identifier with BEL
      ));
      await raw.expectAnswerAndClose(
        version === 5 ? [0x20, 0x03, 0x00, 0x85, 0x00] : [0x20, 0x02, 0x00, 0x02],
      );
    });
  });

  Deno.test(`${label(version)}: a user name with a control character is ${version === 5 ? "refused with CONNACK 0x81" : "closed without an answer"}`, async () => {
    await underAttack(undefined, async ({ open }) => {
      const raw = await open();
      await raw.write(frame(
        0x10, // CONNECT
        str("MQTT"),
        version,
        0x82, // user name flag, clean start
        u16(0), // keep alive off
        v5props(version, 0x17, 0x00), // Request Problem Information = 0
        str("ctl-user"), // client identifier
        str("eve\u001b[31m"), // user name with ESC
      ));
      await raw.expectAnswerAndClose(version === 5 ? [0x20, 0x03, 0x00, 0x81, 0x00] : []);
    });
  });

  Deno.test(`${label(version)}: a PUBLISH topic with a control character closes the connection${version === 5 ? " (DISCONNECT 0x81)" : ""}`, async () => {
    await underAttack(undefined, async ({ connect }) => {
      const raw = await connect(version);
      await raw.write(frame(0x30, str("log/\u0085line"), v5props(version), "x"));
      await raw.expectAnswerAndClose(disconnectFor(version, MALFORMED));
    });
  });

  Deno.test(`${label(version)}: a SUBSCRIBE filter with a control character closes the connection${version === 5 ? " (DISCONNECT 0x81)" : ""}`, async () => {
    await underAttack(undefined, async ({ connect }) => {
      const raw = await connect(version);
      await raw.write(frame(0x82, u16(1), v5props(version), str("a/\u0001/#"), 0x00));
      await raw.expectAnswerAndClose(disconnectFor(version, MALFORMED));
    });
  });
}

Deno.test("mqtt.rejectControlCharacters: false lets control characters through", async () => {
  const server = startBroker({ config: { mqtt: { rejectControlCharacters: false } } });
  try {
    const { client, connack } = await TestClient.connect(server.port, {
      clientId: "tab\tid",
      version: 5,
    });
    assert.equal(connack.reasonCode, 0);
    await client.subscribe("a\tb", 0);
    await client.publish("a\tb", "ok");
    assert.equal((await client.expect(PacketType.PUBLISH)).topic, "a\tb");
    await client.disconnect();
  } finally {
    await server.close();
  }
});

// ---- malformed topic filters -------------------------------------------------------------------

for (const version of VERSIONS) {
  for (
    const [what, packet] of [
      ["an empty filter in SUBSCRIBE", frame(0x82, u16(1), v5props(version), str(""), 0x00)],
      ["a misplaced '#' in SUBSCRIBE", frame(0x82, u16(1), v5props(version), str("a/#/b"), 0x00)],
      ["a '+' sharing its level in UNSUBSCRIBE", frame(0xa2, u16(1), v5props(version), str("a+"))],
      [
        "a share name with '+' in SUBSCRIBE",
        frame(0x82, u16(1), v5props(version), str("$share/g+/a"), 0x00),
      ],
    ] as const
  ) {
    Deno.test(`${label(version)}: ${what} closes the connection${version === 5 ? " (DISCONNECT 0x81)" : ""} [MQTT-4.7.3-1] [MQTT-4.7.1-1]`, async () => {
      await underAttack(undefined, async ({ connect }) => {
        const raw = await connect(version);
        await raw.write(packet);
        await raw.expectAnswerAndClose(disconnectFor(version, MALFORMED));
      });
    });
  }
}

Deno.test("v5: a filter beyond mqtt.maxTopicLevels is still answered in SUBACK with 0x8F (not malformed)", async () => {
  await underAttack({ mqtt: { maxTopicLevels: 2 } }, async ({ connect }) => {
    const raw = await connect(5);
    await raw.write(frame(0x82, u16(7), props(), str("a/b/c"), 0x00));
    assert.deepEqual(await raw.readPacket(), [0x90, 0x04, 0x00, 0x07, 0x00, 0x8f]);
  });
});

// ---- acknowledgements of the wrong kind --------------------------------------------------------

for (const version of VERSIONS) {
  for (
    const [what, qos, reply] of [
      ["a PUBACK for a QoS 2 message", 2, (id: number) => [0x40, 0x02, ...u16(id)]],
      ["a PUBREC for a QoS 1 message", 1, (id: number) => [0x50, 0x02, ...u16(id)]],
      ["a PUBCOMP before PUBREL", 2, (id: number) => [0x70, 0x02, ...u16(id)]],
    ] as const
  ) {
    Deno.test(`${label(version)}: ${what} is a protocol error${version === 5 ? " (DISCONNECT 0x82)" : ""}`, async () => {
      await underAttack(undefined, async ({ server, connect }) => {
        const raw = await connect(version);
        await raw.write(frame(0x82, u16(1), v5props(version), str("ack/kind"), qos));
        await raw.readPacket(); // SUBACK
        const { client: pub } = await TestClient.connect(server.port, { clientId: "pub" });
        await pub.publish("ack/kind", "x", { qos });
        const publish = await raw.readPacket();
        assert.equal(publish[0] >> 4, PacketType.PUBLISH);
        const topicLength = (publish[2] << 8) | publish[3];
        const id = (publish[4 + topicLength] << 8) | publish[5 + topicLength];
        await raw.write(reply(id));
        await raw.expectAnswerAndClose(disconnectFor(version, PROTOCOL_ERROR));
        await pub.disconnect();
      });
    });
  }
}

Deno.test("v5: a PUBREC with a failure code ends the flow: no PUBREL, and the message is not sent again [MQTT-4.3.3-4]", async () => {
  const server = startBroker();
  try {
    const { client: sub } = await TestClient.connect(server.port, {
      clientId: "refuser",
      version: 5,
      cleanStart: false,
      properties: { sessionExpiryInterval: 60 },
    });
    await sub.subscribe("refused", 2);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    await pub.publish("refused", "no thanks", { qos: 2 });
    const publish = await sub.expect(PacketType.PUBLISH);
    await sub.send({
      type: PacketType.PUBREC,
      packetId: publish.packetId,
      reasonCode: 0x80,
      properties: undefined,
    });
    await sub.expectNothingPending();
    await sub.disconnect();
    const again = await TestClient.connect(server.port, {
      clientId: "refuser",
      version: 5,
      cleanStart: false,
      properties: { sessionExpiryInterval: 60 },
    });
    assert.equal(again.connack.sessionPresent, true);
    await again.client.expectNothingPending();
    await again.client.disconnect();
    await pub.disconnect();
  } finally {
    await server.close();
  }
});

// ---- answers that fit, and say only what helps ------------------------------------------------

Deno.test("v5: a success PUBACK carries no Reason String, even with problem information requested", async () => {
  await underAttack(undefined, async ({ open }) => {
    const raw = await open();
    await raw.write(frame(0x10, str("MQTT"), 0x05, 0x02, u16(0), props(), str("quiet-ack")));
    await raw.readPacket(); // CONNACK
    await raw.write(frame(0x32, str("nobody/listens"), u16(9), props(), "x"));
    // 0x10 No matching subscribers: packet id and reason code, nothing more.
    assert.deepEqual(await raw.readPacket(), [0x40, 0x03, 0x00, 0x09, 0x10]);
  });
});

Deno.test("v5: a CONNACK is shrunk to the client's Maximum Packet Size by leaving out optional properties [MQTT-3.1.2-24]", async () => {
  const server = startBroker({ config: { mqtt: { responseInformation: "replies/%c" } } });
  try {
    const asked = { requestResponseInformation: 1 as const };
    const roomy = await TestClient.connect(server.port, {
      clientId: "roomy",
      version: 5,
      properties: asked,
    });
    assert.equal(roomy.connack.properties?.responseInformation, "replies/roomy");
    await roomy.client.disconnect();
    const raw = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      const maximum = 24;
      await raw.write(frame(
        0x10,
        str("MQTT"),
        0x05,
        0x02,
        u16(0),
        props(0x27, u32(maximum), 0x19, 0x01), // Maximum Packet Size 24, Request Response Information
        str("tight"),
      ));
      const buffer = new Uint8Array(256);
      const n = (await raw.read(buffer))!;
      assert.ok(n <= maximum, `CONNACK of ${n} bytes exceeds ${maximum}`);
      let connack: ConnackPacket | undefined;
      new PacketDecoder({ onPacket: (p) => void (connack = p as ConnackPacket) }, {
        maximumPacketSize: 1024,
        protocolVersion: 5,
      }).push(buffer.subarray(0, n));
      assert.equal(connack?.reasonCode, 0);
      assert.equal(connack?.properties?.responseInformation, undefined, "left out to fit");
      assert.ok(connack?.properties?.maximumPacketSize, "required ones stay");
    } finally {
      raw.close();
    }
    const tiny = await TestClient.open(server.port, 5);
    await tiny.sendConnectOnly({ clientId: "", properties: { maximumPacketSize: 8 } });
    assert.equal(await tiny.next(), undefined, "no CONNACK fits in 8 bytes: closed");
  } finally {
    await server.close();
  }
});

// ---- the client can read why ---------------------------------------------------------------------

Deno.test("v5: a client that keeps writing after the broker's DISCONNECT still reads its reason code", async () => {
  await underAttack({ mqtt: { receiveMaximum: 2 } }, async ({ connect }) => {
    const raw = await connect(5);
    const qos2 = (id: number) => frame(0x34, str("flood"), u16(id), props(), "x");
    // Receive Maximum + 1 QoS 2 messages, then PUBRELs still in flight when the broker's
    // DISCONNECT goes out.
    const pubrels: Uint8Array[] = [];
    for (let i = 0; i < 4000; i++) pubrels.push(frame(0x62, u16(1 + (i % 2)), 0x00, 0x00));
    const sending = raw.write(bytes(qos2(1), qos2(2), qos2(3), ...pubrels));
    const pubrec = (id: number) => [0x50, 0x03, ...u16(id), 0x10]; // 0x10: no subscribers
    await raw.expectAnswerAndClose([
      ...pubrec(1),
      ...pubrec(2),
      ...disconnectFor(5, RECEIVE_MAXIMUM_EXCEEDED),
    ]);
    await sending;
  });
});

Deno.test("v5: after its DISCONNECT the broker only half-closes: what the client still sends is drained, not reset", async () => {
  const server = startBroker({ config: { mqtt: { receiveMaximum: 1 } } });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await conn.write(frame(0x10, str("MQTT"), 0x05, 0x02, u16(0), props(0x17, 0x00), str("hc")));
    // Two QoS 2 messages in one write: the second exceeds Receive Maximum 1, since the first counts
    // until its PUBCOMP (a QoS 1 message stored at once is answered before the next is read).
    const qos2 = (id: number) => frame(0x34, str("t"), u16(id), props(), "x");
    await conn.write(bytes(qos2(1), qos2(2)));
    const received: number[] = [];
    const buffer = new Uint8Array(1024);
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      received.push(...buffer.subarray(0, n));
    }
    const tail = received.slice(-3);
    assert.deepEqual(
      tail,
      [0xe0, 0x01, RECEIVE_MAXIMUM_EXCEEDED],
      "the DISCONNECT, then end of stream",
    );
    // The broker closed its side (the end of stream above) but still reads: a client that keeps
    // writing is not reset, so nothing it has not read yet is thrown away.
    const more = new Uint8Array(4096).fill(0xc0);
    for (let i = 0; i < 16; i++) await conn.write(more);
  } finally {
    conn.close();
    await server.close();
  }
});
