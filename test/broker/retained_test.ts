import assert from "node:assert/strict";
import { PacketType } from "../../src/codec/mod.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";
import { targetTest } from "../helpers/targets.ts";

targetTest(
  "a retained message is sent to later subscribers with RETAIN set [MQTT-3.3.1-5] [MQTT-3.3.1-8]",
  {},
  async (server) => {
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("home/temp", "21", { retain: true, qos: 1 });
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s" });
    await sub.subscribe("home/+", 1);
    const msg = await sub.expect(PacketType.PUBLISH);
    assert.deepEqual([msg.topic, text(msg.payload), msg.retain, msg.qos], [
      "home/temp",
      "21",
      true,
      1,
    ]);
    await sub.ack(msg);
    await pub.disconnect();
    await sub.disconnect();
  },
);

Deno.test("a newer retained message replaces the older one [MQTT-3.3.1-5]", async () => {
  const server = startBroker();
  try {
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("r", "old", { retain: true, qos: 1 });
    await pub.publish("r", "new", { retain: true, qos: 1 });
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s" });
    await sub.subscribe("r", 0);
    assert.equal(text((await sub.expect(PacketType.PUBLISH)).payload), "new");
    await sub.expectNothingPending();
    await pub.disconnect();
    await sub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("an empty retained payload clears the topic and is still delivered live [MQTT-3.3.1-6] [MQTT-3.3.1-7]", async () => {
  const server = startBroker();
  try {
    const { client: live } = await TestClient.connect(server.port, { clientId: "live" });
    await live.subscribe("c", 0);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("c", "value", { retain: true });
    await pub.publish("c", "", { retain: true });
    assert.equal(text((await live.expect(PacketType.PUBLISH)).payload), "value");
    assert.equal((await live.expect(PacketType.PUBLISH)).payload.length, 0);
    assert.equal(await server.backbone.retained.count(), 0);
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s" });
    await sub.subscribe("c", 0);
    await sub.expectNothingPending();
    await pub.disconnect();
    await sub.disconnect();
    await live.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("retained messages are matched by wildcard filters without $ topics [MQTT-4.7.2-1]", async () => {
  const server = startBroker();
  try {
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    for (const topic of ["a/1", "a/2", "a/2/x", "b/1", "$x/1"]) {
      await pub.publish(topic, topic, { retain: true, qos: 1 });
    }
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s" });
    await sub.subscribe("#", 0);
    const got = (await sub.publishes(4)).map((m) => m.topic).sort();
    assert.deepEqual(got, ["a/1", "a/2", "a/2/x", "b/1"]);
    await sub.expectNothingPending();
    await pub.disconnect();
    await sub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("MQTT 5 Retain Handling 1 sends retained messages only for a new subscription [MQTT-3.3.1-10]", async () => {
  const server = startBroker();
  try {
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("rh", "v", { retain: true, qos: 1 });
    const { client } = await TestClient.connect(server.port, { clientId: "s", version: 5 });
    await client.subscribe([{ filter: "rh", retainHandling: 1 }]);
    await client.expect(PacketType.PUBLISH);
    await client.subscribe([{ filter: "rh", retainHandling: 1 }]);
    await client.expectNothingPending();
    await client.subscribe([{ filter: "rh", retainHandling: 0 }]);
    await client.expect(PacketType.PUBLISH);
    await client.subscribe([{ filter: "rh2", retainHandling: 2 }, {
      filter: "rh",
      retainHandling: 2,
    }]);
    await client.expectNothingPending();
    await pub.disconnect();
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("MQTT 5 Retain As Published keeps RETAIN on live delivery [MQTT-3.3.1-12] [MQTT-3.3.1-13]", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "s", version: 5 });
    await client.subscribe([{ filter: "rap/keep", retainAsPublished: true }, {
      filter: "rap/clear",
    }]);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("rap/keep", "1", { retain: true });
    await pub.publish("rap/clear", "2", { retain: true });
    const [keep, clear] = await client.publishes(2);
    assert.equal(keep.retain, true);
    assert.equal(clear.retain, false);
    await pub.disconnect();
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("retained messages expire with their Message Expiry Interval [MQTT-3.3.2-5]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  try {
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p", version: 5 });
    await pub.publish("exp", "short", {
      retain: true,
      qos: 1,
      properties: { messageExpiryInterval: 10 },
    });
    const { client: early } = await TestClient.connect(server.port, {
      clientId: "early",
      version: 5,
    });
    clock.advance(4_000);
    await early.subscribe("exp", 0);
    const msg = await early.expect(PacketType.PUBLISH);
    assert.equal(msg.properties?.messageExpiryInterval, 6); // [MQTT-3.3.2-6]
    clock.advance(6_000);
    const { client: late } = await TestClient.connect(server.port, { clientId: "late" });
    await late.subscribe("exp", 0);
    await late.expectNothingPending();
    await Promise.all([pub.disconnect(), early.disconnect(), late.disconnect()]);
  } finally {
    await server.close();
  }
});
