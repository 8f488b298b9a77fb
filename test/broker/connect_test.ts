import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient } from "../helpers/test_client.ts";
import { targetTest } from "../helpers/targets.ts";

targetTest(
  "CONNACK accepts a 3.1.1 client with Session Present 0 on a clean session [MQTT-3.2.2-1]",
  {},
  async (server) => {
    const { client, connack } = await TestClient.connect(server.port, { clientId: "c1" });
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.sessionPresent, false);
    assert.equal(connack.properties, undefined);
    await client.disconnect();
  },
);

targetTest("CONNACK accepts an MQTT 3.1 (MQIsdp) client", {}, async (server) => {
  const { client, connack } = await TestClient.connect(server.port, {
    clientId: "legacy",
    version: 3,
  });
  assert.equal(connack.reasonCode, 0);
  await client.subscribe("x", 1);
  await client.publish("x", "hi");
  const message = await client.expect(PacketType.PUBLISH);
  assert.equal(message.topic, "x");
  await client.disconnect();
});

Deno.test("CONNACK announces the broker's limits to MQTT 5 clients [MQTT-3.2.2-9]", async () => {
  const server = startBroker({
    config: { mqtt: { receiveMaximum: 100, maxQos: 1, retainAvailable: false } },
  });
  try {
    const { client, connack } = await TestClient.connect(server.port, {
      clientId: "v5",
      version: 5,
    });
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.receiveMaximum, 100);
    assert.equal(connack.properties?.maximumQos, 1);
    assert.equal(connack.properties?.retainAvailable, 0);
    assert.equal(connack.properties?.maximumPacketSize, 1024 * 1024);
    assert.equal(connack.properties?.topicAliasMaximum, 64);
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("an empty client id gets an assigned id in MQTT 5 [MQTT-3.1.3-6] [MQTT-3.2.2-16]", async () => {
  const server = startBroker();
  try {
    const { client, connack } = await TestClient.connect(server.port, { version: 5 });
    assert.equal(connack.reasonCode, 0);
    const assigned = connack.properties?.assignedClientIdentifier;
    assert.ok(assigned && assigned.length > 0);
    assert.ok(await server.broker.getSession(assigned));
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("an empty client id without clean session is refused in 3.1.1 with return code 2 [MQTT-3.1.3-8]", async () => {
  const server = startBroker();
  try {
    const { client, connack } = await TestClient.connect(server.port, { cleanStart: false });
    assert.equal(connack.reasonCode, 2);
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("an empty client id with clean session is accepted in 3.1.1 [MQTT-3.1.3-7]", async () => {
  const server = startBroker();
  try {
    const { client, connack } = await TestClient.connect(server.port, { cleanStart: true });
    assert.equal(connack.reasonCode, 0);
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a too long client id is refused with 0x85 in MQTT 5", async () => {
  const server = startBroker({ config: { mqtt: { maxClientIdLength: 30 } } });
  try {
    const { client, connack } = await TestClient.connect(server.port, {
      version: 5,
      clientId: "x".repeat(31),
    });
    assert.equal(connack.reasonCode, ReasonCode.ClientIdentifierNotValid);
    await client.closed;
  } finally {
    await server.close();
  }
});

targetTest(
  "a second connection with the same client id takes the session over [MQTT-3.1.4-3]",
  {},
  async (server) => {
    const { client: first } = await TestClient.connect(server.port, {
      clientId: "same",
      version: 5,
    });
    const { client: second, connack } = await TestClient.connect(server.port, {
      clientId: "same",
      version: 5,
    });
    assert.equal(connack.reasonCode, 0);
    const disconnect = await first.expect(PacketType.DISCONNECT);
    assert.equal(disconnect.reasonCode, ReasonCode.SessionTakenOver);
    await first.closed;
    await second.subscribe("t", 0);
    await second.publish("t", "still here");
    assert.equal((await second.expect(PacketType.PUBLISH)).topic, "t");
    await second.disconnect();
  },
);

Deno.test("a 3.1.1 takeover closes the first connection without a packet [MQTT-3.1.4-2]", async () => {
  const server = startBroker();
  try {
    const { client: first } = await TestClient.connect(server.port, { clientId: "same" });
    const { client: second } = await TestClient.connect(server.port, { clientId: "same" });
    assert.equal(await first.next(), undefined);
    await second.disconnect();
  } finally {
    await server.close();
  }
});

targetTest(
  "Session Present is 1 when a persistent session resumes [MQTT-3.2.2-2]",
  {},
  async (server) => {
    const { client } = await TestClient.connect(server.port, {
      clientId: "p",
      cleanStart: false,
    });
    await client.subscribe("a/b", 1);
    await client.disconnect();
    const again = await TestClient.connect(server.port, { clientId: "p", cleanStart: false });
    assert.equal(again.connack.sessionPresent, true);
    await again.client.disconnect();
    const clean = await TestClient.connect(server.port, { clientId: "p", cleanStart: true });
    assert.equal(clean.connack.sessionPresent, false); // [MQTT-3.2.2-1]
    await clean.client.disconnect();
  },
);

Deno.test("a clean session discards the previous session's subscriptions [MQTT-3.1.2-4]", async () => {
  const server = startBroker();
  try {
    const first = await TestClient.connect(server.port, { clientId: "c", cleanStart: false });
    await first.client.subscribe("gone", 1);
    await first.client.disconnect();
    const { client } = await TestClient.connect(server.port, { clientId: "c", cleanStart: true });
    await client.publish("gone", "x", { qos: 1 });
    await client.expectNothingPending();
    assert.equal(server.broker.router.size, 0);
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("keep alive: silence for 1.5 periods closes the connection [MQTT-3.1.2-24]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client } = await TestClient.connect(server.port, {
      clientId: "ka",
      keepAlive: 10,
      version: 5,
    });
    clock.advance(14_000);
    await client.expectNothingPending(); // 14 s < 15 s: still open, and the PINGREQ counts.
    clock.advance(14_999);
    await client.expectNothingPending();
    clock.advance(15_000);
    const disconnect = await client.expect(PacketType.DISCONNECT);
    assert.equal(disconnect.reasonCode, ReasonCode.KeepAliveTimeout);
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("a connection that never sends CONNECT is closed after connectTimeout", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const client = await TestClient.open(server.port);
    // Wait until the broker has seen the connection before moving time.
    while (server.broker.connections.size === 0) await new Promise((r) => setTimeout(r, 1));
    clock.advance(9_999);
    assert.equal(server.broker.connections.size, 1);
    clock.advance(1);
    assert.equal(await client.next(), undefined);
  } finally {
    await server.close();
  }
});

Deno.test("MQTT 5 Server Keep Alive caps a larger keep alive [MQTT-3.2.2-21]", async () => {
  const server = startBroker({ config: { mqtt: { maxKeepAlive: 60 } } });
  try {
    const { client, connack } = await TestClient.connect(server.port, {
      version: 5,
      clientId: "k",
      keepAlive: 600,
    });
    assert.equal(connack.properties?.serverKeepAlive, 60);
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("PINGREQ is answered with PINGRESP [MQTT-3.12.4-1]", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "ping" });
    await client.send({ type: PacketType.PINGREQ });
    await client.expect(PacketType.PINGRESP);
    await client.disconnect();
  } finally {
    await server.close();
  }
});

targetTest("packets pipelined right after CONNECT are processed in order", {}, async (server) => {
  const client = await TestClient.open(server.port);
  const { encodePacket } = await import("../../src/codec/mod.ts");
  const bytes = [
    encodePacket({
      type: PacketType.CONNECT,
      protocolName: "MQTT",
      protocolVersion: 4,
      cleanStart: true,
      keepAlive: 0,
      clientId: "pipe",
      username: undefined,
      password: undefined,
      will: undefined,
      properties: undefined,
    }, 4),
    encodePacket({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{
        filter: "p",
        qos: 0,
        noLocal: false,
        retainAsPublished: false,
        retainHandling: 0,
      }],
      properties: undefined,
    }, 4),
    encodePacket({
      type: PacketType.PUBLISH,
      dup: false,
      qos: 0,
      retain: false,
      topic: "p",
      packetId: 0,
      properties: undefined,
      payload: new Uint8Array([1]),
    }, 4),
  ];
  const all = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
  let offset = 0;
  for (const b of bytes) {
    all.set(b, offset);
    offset += b.length;
  }
  await client.sendRaw(all);
  await client.expect(PacketType.CONNACK);
  await client.expect(PacketType.SUBACK);
  assert.equal((await client.expect(PacketType.PUBLISH)).topic, "p");
  await client.disconnect();
});
