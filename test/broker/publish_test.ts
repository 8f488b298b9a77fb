import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import type { QoS } from "../../src/codec/packets.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";
import { targetTest } from "../helpers/targets.ts";

targetTest("QoS 0 publish reaches a QoS 0 subscriber", {}, async (server) => {
  const { client: sub } = await TestClient.connect(server.port, { clientId: "s" });
  const suback = await sub.subscribe("a/+/c", 0);
  assert.deepEqual(suback.reasonCodes, [0]);
  const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
  await pub.publish("a/b/c", "hello");
  const msg = await sub.expect(PacketType.PUBLISH);
  assert.equal(msg.topic, "a/b/c");
  assert.equal(text(msg.payload), "hello");
  assert.equal(msg.qos, 0);
  assert.equal(msg.retain, false);
  await pub.disconnect();
  await sub.disconnect();
});

for (
  const [published, granted] of [[0, 2], [1, 2], [2, 2], [2, 1], [2, 0], [1, 0]] as [
    QoS,
    QoS,
  ][]
) {
  targetTest(
    `delivery QoS is min(publish ${published}, granted ${granted}) [MQTT-3.8.4-8]`,
    {},
    async (server) => {
      const { client: sub } = await TestClient.connect(server.port, { clientId: "s" });
      await sub.subscribe("t", granted);
      const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
      await pub.publish("t", "m", { qos: published });
      const msg = await sub.expect(PacketType.PUBLISH);
      assert.equal(msg.qos, Math.min(published, granted));
      assert.equal(msg.packetId === 0, msg.qos === 0);
      await sub.ack(msg);
      await sub.expectNothingPending();
      await pub.disconnect();
      await sub.disconnect();
    },
  );
}

Deno.test("QoS 1 publish is acknowledged with PUBACK carrying its packet id [MQTT-4.3.2-2]", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "p" });
    const ack = await client.publish("t", "x", { qos: 1, packetId: 4242 });
    assert.equal(ack?.type, PacketType.PUBACK);
    assert.equal((ack as { packetId: number }).packetId, 4242);
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("MQTT 5 PUBACK says 0x10 when nobody is subscribed", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "p", version: 5 });
    const ack = await client.publish("nobody", "x", { qos: 1 });
    assert.equal((ack as { reasonCode: number }).reasonCode, ReasonCode.NoMatchingSubscribers);
    await client.disconnect();
  } finally {
    await server.close();
  }
});

targetTest(
  "QoS 2 resent with the same packet id before PUBREL is delivered once [MQTT-4.3.3-9]",
  {},
  async (server) => {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s" });
    await sub.subscribe("q2", 2);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    const publish = {
      type: PacketType.PUBLISH,
      dup: false,
      qos: 2 as const,
      retain: false,
      topic: "q2",
      packetId: 7,
      properties: undefined,
      payload: new TextEncoder().encode("once"),
    };
    await pub.send(publish);
    assert.equal((await pub.expect(PacketType.PUBREC)).packetId, 7);
    await pub.send({ ...publish, dup: true });
    assert.equal((await pub.expect(PacketType.PUBREC)).packetId, 7);
    await pub.send({ type: PacketType.PUBREL, packetId: 7, reasonCode: 0, properties: undefined });
    assert.equal((await pub.expect(PacketType.PUBCOMP)).packetId, 7);
    const msg = await sub.expect(PacketType.PUBLISH);
    assert.equal(text(msg.payload), "once");
    await sub.ack(msg);
    await sub.expectNothingPending();
    // After PUBREL the id is free again: the same id now carries a new message.
    await pub.send({ ...publish, payload: new TextEncoder().encode("twice") });
    await pub.expect(PacketType.PUBREC);
    const second = await sub.expect(PacketType.PUBLISH);
    assert.equal(text(second.payload), "twice");
    await pub.disconnect();
    await sub.disconnect();
  },
);

targetTest(
  "outbound QoS 2 flow: PUBREC is answered with PUBREL, PUBCOMP frees the id [MQTT-4.3.3-4]",
  {},
  async (server) => {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s" });
    await sub.subscribe("q2", 2);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("q2", "m", { qos: 2 });
    const msg = await sub.expect(PacketType.PUBLISH);
    assert.equal(msg.qos, 2);
    await sub.send({
      type: PacketType.PUBREC,
      packetId: msg.packetId,
      reasonCode: 0,
      properties: undefined,
    });
    const pubrel = await sub.expect(PacketType.PUBREL);
    assert.equal(pubrel.packetId, msg.packetId);
    await sub.send({
      type: PacketType.PUBCOMP,
      packetId: msg.packetId,
      reasonCode: 0,
      properties: undefined,
    });
    await sub.expectNothingPending();
    assert.equal((await server.session("s"))?.inflight, 0);
    await pub.disconnect();
    await sub.disconnect();
  },
);

targetTest(
  "the inflight window holds back QoS 1 messages until acks arrive, in order [MQTT-4.6.0-6]",
  { config: { mqtt: { maxInflight: 2 } } },
  async (server) => {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s" });
    await sub.subscribe("w", 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    for (let i = 0; i < 5; i++) await pub.publish("w", `m${i}`, { qos: 1 });
    const first = await sub.publishes(2);
    assert.deepEqual(first.map((m) => text(m.payload)), ["m0", "m1"]);
    await sub.expectNothingPending(); // window full: nothing more until an ack
    assert.equal((await server.session("s"))?.queued, 3);
    for (const m of first) await sub.ack(m);
    const next = await sub.publishes(2);
    assert.deepEqual(next.map((m) => text(m.payload)), ["m2", "m3"]);
    await sub.expectNothingPending();
    for (const m of next) await sub.ack(m);
    const last = await sub.expect(PacketType.PUBLISH);
    assert.equal(text(last.payload), "m4");
    await sub.ack(last);
    await pub.disconnect();
    await sub.disconnect();
  },
);

Deno.test("3.1.1 live delivery clears RETAIN [MQTT-3.3.1-9]", async () => {
  const server = startBroker();
  try {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s" });
    await sub.subscribe("r", 0);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("r", "v", { retain: true });
    const msg = await sub.expect(PacketType.PUBLISH);
    assert.equal(msg.retain, false);
    await pub.disconnect();
    await sub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a subscriber with overlapping subscriptions gets one copy at the highest QoS [MQTT-3.3.4-2]", async () => {
  const server = startBroker();
  try {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s" });
    await sub.subscribe([{ filter: "o/#", qos: 0 }, { filter: "o/+", qos: 1 }, {
      filter: "o/x",
      qos: 0,
    }]);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("o/x", "m", { qos: 2 });
    const msg = await sub.expect(PacketType.PUBLISH);
    assert.equal(msg.qos, 1);
    await sub.ack(msg);
    await sub.expectNothingPending();
    await pub.disconnect();
    await sub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("wildcard subscriptions do not match $ topics [MQTT-4.7.2-1]", async () => {
  const server = startBroker();
  try {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s" });
    await sub.subscribe([{ filter: "#", qos: 0 }, { filter: "+/x", qos: 0 }]);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("$app/x", "hidden");
    await pub.publish("app/x", "seen");
    const msg = await sub.expect(PacketType.PUBLISH);
    assert.equal(msg.topic, "app/x");
    await sub.expectNothingPending();
    await pub.disconnect();
    await sub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("UNSUBSCRIBE stops delivery and UNSUBACK echoes the packet id [MQTT-3.10.4-4]", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "s", version: 5 });
    await client.subscribe("u", 0);
    const unsuback = await client.unsubscribe(["u", "never"]);
    assert.deepEqual(unsuback.reasonCodes, [ReasonCode.Success, ReasonCode.NoSubscriptionExisted]);
    await client.publish("u", "m");
    await client.expectNothingPending();
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a repeated SUBSCRIBE replaces the subscription's QoS [MQTT-3.8.4-3]", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "s" });
    await client.subscribe("rep", 0);
    await client.subscribe("rep", 1);
    assert.equal(server.broker.router.size, 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("rep", "m", { qos: 1 });
    const msg = await client.expect(PacketType.PUBLISH);
    assert.equal(msg.qos, 1);
    await client.ack(msg);
    await client.expectNothingPending();
    await pub.disconnect();
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a malformed filter closes the connection: 3.1.1 without an answer, MQTT 5 with DISCONNECT 0x81 [MQTT-4.7.1-1]", async () => {
  const server = startBroker();
  try {
    const { client: v4 } = await TestClient.connect(server.port, { clientId: "a" });
    await v4.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{
        filter: "a/#/b",
        qos: 0,
        noLocal: false,
        retainAsPublished: false,
        retainHandling: 0,
      }],
      properties: undefined,
    });
    assert.equal(await v4.next(), undefined);
    const { client: v5 } = await TestClient.connect(server.port, { clientId: "b", version: 5 });
    await v5.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{
        filter: "a+",
        qos: 0,
        noLocal: false,
        retainAsPublished: false,
        retainHandling: 0,
      }],
      properties: undefined,
    });
    const disconnect = await v5.expect(PacketType.DISCONNECT);
    assert.equal(disconnect.reasonCode, ReasonCode.MalformedPacket);
  } finally {
    await server.close();
  }
});
