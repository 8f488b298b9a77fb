import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import type { PublishPacket } from "../../src/codec/packets.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";
import { targetTest } from "../helpers/targets.ts";

function publish(topic: string, payload: string, topicAlias?: number): PublishPacket {
  return {
    type: PacketType.PUBLISH,
    dup: false,
    qos: 0,
    retain: false,
    topic,
    packetId: 0,
    properties: topicAlias === undefined ? undefined : { topicAlias },
    payload: new TextEncoder().encode(payload),
  };
}

targetTest(
  "inbound topic aliases up to the announced Topic Alias Maximum set and resolve topics [MQTT-3.3.2-12]",
  { config: { mqtt: { topicAliasMaximum: 2 } } },
  async (server) => {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "s", version: 5 });
    await sub.subscribe("alias/#", 0);
    const { client: pub, connack } = await TestClient.connect(server.port, {
      clientId: "p",
      version: 5,
    });
    assert.equal(connack.properties?.topicAliasMaximum, 2);
    await pub.send(publish("alias/one", "1", 1));
    await pub.send(publish("alias/two", "2", 2));
    await pub.send(publish("", "3", 1));
    await pub.send(publish("", "4", 2));
    await pub.send(publish("alias/three", "5", 1)); // remaps alias 1
    await pub.send(publish("", "6", 1));
    const got = await sub.publishes(6);
    assert.deepEqual(got.map((p) => `${p.topic}=${text(p.payload)}`), [
      "alias/one=1",
      "alias/two=2",
      "alias/one=3",
      "alias/two=4",
      "alias/three=5",
      "alias/three=6",
    ]);
    // The alias belongs to the publisher's connection: it is not forwarded.
    assert.ok(got.every((p) => p.properties?.topicAlias === undefined));
    await pub.disconnect();
    await sub.disconnect();
  },
);

Deno.test("an inbound topic alias above the Topic Alias Maximum gets DISCONNECT 0x94 [MQTT-3.3.2-9] [MQTT-3.2.2-17]", async () => {
  const server = startBroker({ config: { mqtt: { topicAliasMaximum: 2 } } });
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "p", version: 5 });
    await client.send(publish("t", "x", 3));
    const disconnect = await client.expect(PacketType.DISCONNECT);
    assert.equal(disconnect.reasonCode, ReasonCode.TopicAliasInvalid);
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("with topicAliasMaximum 0 no Topic Alias Maximum is announced and any alias gets 0x94 [MQTT-3.2.2-18]", async () => {
  const server = startBroker({ config: { mqtt: { topicAliasMaximum: 0 } } });
  try {
    const { client, connack } = await TestClient.connect(server.port, {
      clientId: "p",
      version: 5,
    });
    assert.equal(connack.properties?.topicAliasMaximum, undefined);
    await client.send(publish("t", "x", 1));
    assert.equal((await client.expect(PacketType.DISCONNECT)).reasonCode, 0x94);
    await client.closed;
  } finally {
    await server.close();
  }
});

targetTest(
  "outbound topic aliases stay within the client's Topic Alias Maximum and replace the topic after first use [MQTT-3.3.2-11]",
  {},
  async (server) => {
    const { client: sub } = await TestClient.connect(server.port, {
      clientId: "s",
      version: 5,
      properties: { topicAliasMaximum: 2 },
    });
    await sub.subscribe("o/#", 0);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    for (const topic of ["o/a", "o/a", "o/b", "o/b", "o/c", "o/c", "o/a"]) {
      await pub.publish(topic, topic);
    }
    const got = await sub.publishes(7);
    const seen = new Map<number, string>(); // the client's side of the mapping
    for (const packet of got) {
      const alias = packet.properties?.topicAlias;
      assert.ok(alias !== undefined && alias >= 1 && alias <= 2, `alias ${alias}`);
      if (packet.topic !== "") seen.set(alias, packet.topic);
      assert.equal(seen.get(alias), text(packet.payload), "alias resolves to the published topic");
    }
    assert.deepEqual(got.map((p) => p.topic), ["o/a", "", "o/b", "", "o/c", "", "o/a"]);
    await pub.disconnect();
    await sub.disconnect();
  },
);

Deno.test("no outbound topic aliases for a client without Topic Alias Maximum, nor when the policy is off [MQTT-3.1.2-27]", async () => {
  for (const policy of ["lru", "off"] as const) {
    const server = startBroker({ config: { mqtt: { outboundTopicAliases: policy } } });
    try {
      const { client: sub } = await TestClient.connect(server.port, {
        clientId: "s",
        version: 5,
        properties: policy === "off" ? { topicAliasMaximum: 10 } : undefined,
      });
      await sub.subscribe("n", 0);
      const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
      await pub.publish("n", "1");
      await pub.publish("n", "2");
      const got = await sub.publishes(2);
      assert.deepEqual(got.map((p) => [p.topic, p.properties?.topicAlias]), [
        ["n", undefined],
        ["n", undefined],
      ]);
      await pub.disconnect();
      await sub.disconnect();
    } finally {
      await server.close();
    }
  }
});

Deno.test("topic aliases do not carry over to a new connection, in either direction [MQTT-3.3.2-7]", async () => {
  const server = startBroker();
  try {
    const options = {
      clientId: "r",
      version: 5 as const,
      cleanStart: false,
      properties: { topicAliasMaximum: 5, sessionExpiryInterval: 60 },
    };
    const first = await TestClient.connect(server.port, options);
    await first.client.subscribe("ra", 0);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("ra", "1");
    await pub.publish("ra", "2");
    assert.deepEqual((await first.client.publishes(2)).map((p) => p.topic), ["ra", ""]);
    await first.client.send(publish("ra", "in", 1)); // inbound alias 1 -> ra
    assert.equal((await first.client.expect(PacketType.PUBLISH)).topic, "");
    await first.client.disconnect();

    const second = await TestClient.connect(server.port, options);
    assert.equal(second.connack.sessionPresent, true);
    await pub.publish("ra", "3");
    const again = await second.client.expect(PacketType.PUBLISH);
    assert.equal(again.topic, "ra", "the server sets the alias up again");
    assert.equal(again.properties?.topicAlias, 1);
    // The client's alias 1 from the last connection means nothing here: protocol error.
    await second.client.send(publish("", "stale", 1));
    assert.equal((await second.client.expect(PacketType.DISCONNECT)).reasonCode, 0x82);
    await second.client.closed;
    await pub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a PUBLISH too large for the client is dropped for it without spending a topic alias [MQTT-3.1.2-24] [MQTT-3.1.2-25]", async () => {
  const server = startBroker();
  try {
    const { client: sub } = await TestClient.connect(server.port, {
      clientId: "small",
      version: 5,
      properties: { maximumPacketSize: 64, topicAliasMaximum: 4 },
    });
    await sub.subscribe("big", 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p", version: 5 });
    await pub.publish("big", "x".repeat(100), { qos: 1 });
    await pub.publish("big", "fits", { qos: 1 });
    const got = await sub.expect(PacketType.PUBLISH);
    assert.equal(text(got.payload), "fits");
    assert.equal(got.topic, "big", "the dropped packet set no alias mapping");
    assert.equal(got.properties?.topicAlias, 1);
    assert.equal(server.broker.stats.droppedTooLarge, 1);
    // Dropped as if delivered: nothing waits in flight for it [MQTT-3.1.2-25].
    await sub.ack(got);
    await sub.expectNothingPending();
    assert.equal((await server.broker.getSession("small"))?.inflight, 0);
    await pub.disconnect();
    await sub.disconnect();
  } finally {
    await server.close();
  }
});
