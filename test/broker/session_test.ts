import assert from "node:assert/strict";
import { PacketType } from "../../src/codec/mod.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";
import { targetTest } from "../helpers/targets.ts";

targetTest(
  "a persistent session receives QoS 1 and 2 messages published while offline [MQTT-3.1.2-5]",
  {},
  async (server) => {
    const first = await TestClient.connect(server.port, { clientId: "p", cleanStart: false });
    await first.client.subscribe([{ filter: "q/1", qos: 1 }, { filter: "q/2", qos: 2 }, {
      filter: "q/0",
      qos: 0,
    }]);
    await first.client.disconnect();

    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub" });
    await pub.publish("q/1", "one", { qos: 1 });
    await pub.publish("q/2", "two", { qos: 2 });
    await pub.publish("q/0", "zero"); // QoS 0 is not kept for offline sessions
    await pub.disconnect();
    assert.equal((await server.session("p"))?.queued, 2);

    const { client, connack } = await TestClient.connect(server.port, {
      clientId: "p",
      cleanStart: false,
    });
    assert.equal(connack.sessionPresent, true);
    const [one, two] = await client.publishes(2);
    assert.deepEqual([one.topic, text(one.payload), one.qos], ["q/1", "one", 1]);
    assert.deepEqual([two.topic, text(two.payload), two.qos], ["q/2", "two", 2]);
    await client.ack(one);
    await client.ack(two);
    await client.expectNothingPending();
    await client.disconnect();
  },
);

targetTest(
  "unacknowledged messages are resent with DUP after reconnecting [MQTT-4.4.0-1] [MQTT-3.3.1-1]",
  {},
  async (server) => {
    const { client: sub } = await TestClient.connect(server.port, {
      clientId: "s",
      cleanStart: false,
    });
    await sub.subscribe([{ filter: "d/1", qos: 1 }, { filter: "d/2", qos: 2 }]);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub" });
    await pub.publish("d/1", "a", { qos: 1 });
    await pub.publish("d/2", "b", { qos: 2 });
    const [m1, m2] = await sub.publishes(2);
    // Acknowledge the QoS 2 message half way: PUBREC, but no PUBCOMP.
    await sub.send({
      type: PacketType.PUBREC,
      packetId: m2.packetId,
      reasonCode: 0,
      properties: undefined,
    });
    await sub.expect(PacketType.PUBREL);
    await sub.destroy();

    const { client } = await TestClient.connect(server.port, { clientId: "s", cleanStart: false });
    const resent = await client.expect(PacketType.PUBLISH);
    assert.equal(resent.dup, true);
    assert.equal(resent.packetId, m1.packetId);
    assert.equal(text(resent.payload), "a");
    // The QoS 2 message had its PUBREC: only PUBREL is resent [MQTT-4.4.0-1].
    const pubrel = await client.expect(PacketType.PUBREL);
    assert.equal(pubrel.packetId, m2.packetId);
    await client.ack(resent);
    await client.send({
      type: PacketType.PUBCOMP,
      packetId: m2.packetId,
      reasonCode: 0,
      properties: undefined,
    });
    await client.expectNothingPending();
    assert.equal((await server.session("s"))?.inflight, 0);
    await client.disconnect();
    await pub.disconnect();
  },
);

Deno.test("a clean 3.1.1 session ends with its connection [MQTT-3.1.2-6]", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "c", cleanStart: true });
    await client.subscribe("x", 1);
    await client.disconnect();
    assert.equal(await server.broker.getSession("c"), undefined);
    assert.equal(server.broker.router.size, 0);
  } finally {
    await server.close();
  }
});

Deno.test("MQTT 5 session expiry: kept for the interval, then removed with its queue [MQTT-3.1.2-23]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client } = await TestClient.connect(server.port, {
      clientId: "e",
      version: 5,
      properties: { sessionExpiryInterval: 60 },
    });
    await client.subscribe("e/t", 1);
    await client.disconnect();
    await server.offline("e");
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub" });
    await pub.publish("e/t", "queued", { qos: 1 });
    assert.equal((await server.broker.getSession("e"))?.queued, 1);
    clock.advance(59_999);
    assert.ok(await server.broker.getSession("e"));
    clock.advance(1);
    await server.gone("e");
    assert.equal(
      (await server.backbone.queues.size({ kind: "session", clientId: "e" })).messages,
      0,
    );
    assert.equal(server.broker.router.size, 0);
    const again = await TestClient.connect(server.port, {
      clientId: "e",
      version: 5,
      cleanStart: false,
      properties: { sessionExpiryInterval: 60 },
    });
    assert.equal(again.connack.sessionPresent, false);
    await again.client.disconnect();
    await pub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("MQTT 5 session expiry 0 ends the session at close, even without clean start", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, {
      clientId: "z",
      version: 5,
      cleanStart: false,
    });
    await client.subscribe("z", 1);
    await client.disconnect();
    await server.gone("z");
  } finally {
    await server.close();
  }
});

Deno.test("DISCONNECT may shorten the session expiry but not raise it from 0 (section 3.14.2.2.2)", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client } = await TestClient.connect(server.port, {
      clientId: "d",
      version: 5,
      properties: { sessionExpiryInterval: 3600 },
    });
    await client.subscribe("d", 1);
    await client.disconnect(0, { sessionExpiryInterval: 5 });
    await server.offline("d");
    clock.advance(5000);
    await server.gone("d");

    const { client: zero } = await TestClient.connect(server.port, {
      clientId: "z",
      version: 5,
    });
    await zero.send({
      type: PacketType.DISCONNECT,
      reasonCode: 0,
      properties: { sessionExpiryInterval: 10 },
    });
    const answer = await zero.expect(PacketType.DISCONNECT);
    assert.equal(answer.reasonCode, 0x82);
    await zero.closed;
  } finally {
    await server.close();
  }
});

Deno.test("the offline queue is bounded and counts what it drops", async () => {
  const server = startBroker({ config: { mqtt: { maxQueuedMessages: 3 } } });
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "b", cleanStart: false });
    await client.subscribe("b", 1);
    await client.disconnect();
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub" });
    for (let i = 0; i < 5; i++) await pub.publish("b", `m${i}`, { qos: 1 });
    assert.equal((await server.broker.getSession("b"))?.queued, 3);
    assert.equal(server.broker.stats.droppedQueueFull, 2);
    const { client: again } = await TestClient.connect(server.port, {
      clientId: "b",
      cleanStart: false,
    });
    const got = await again.publishes(3);
    assert.deepEqual(got.map((m) => text(m.payload)), ["m0", "m1", "m2"]);
    for (const m of got) await again.ack(m);
    await again.disconnect();
    await pub.disconnect();
  } finally {
    await server.close();
  }
});
