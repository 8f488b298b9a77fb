import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import type { PublishPacket } from "../../src/codec/packets.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";

function qosPublish(qos: 1 | 2, packetId: number, payload = "x"): PublishPacket {
  return {
    type: PacketType.PUBLISH,
    dup: false,
    qos,
    retain: false,
    topic: "flow",
    packetId,
    properties: undefined,
    payload: new TextEncoder().encode(payload),
  };
}

Deno.test("the broker never has more QoS 1/2 PUBLISHes unacknowledged than the client's Receive Maximum [MQTT-3.3.4-9] [MQTT-4.9.0-2]", async () => {
  const server = startBroker(); // maxInflight 32: the client's smaller window wins
  try {
    const { client: sub } = await TestClient.connect(server.port, {
      clientId: "s",
      version: 5,
      properties: { receiveMaximum: 2 },
    });
    await sub.subscribe([{ filter: "rm/q", qos: 1 }, { filter: "rm/zero", qos: 0 }]);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p", version: 5 });
    for (let i = 1; i <= 5; i++) await pub.publish("rm/q", `m${i}`, { qos: 1 });
    const window = await sub.publishes(2);
    assert.deepEqual(window.map((p) => text(p.payload)), ["m1", "m2"]);
    // With the quota at 0, QoS 0 messages and other packets still flow [MQTT-3.3.4-10] [MQTT-4.9.0-3].
    await pub.publish("rm/zero", "qos0");
    assert.equal(text((await sub.expect(PacketType.PUBLISH)).payload), "qos0");
    await sub.expectNothingPending();
    assert.equal((await server.broker.getSession("s"))?.inflight, 2);
    await sub.ack(window[0]);
    const third = await sub.expect(PacketType.PUBLISH);
    assert.equal(text(third.payload), "m3");
    await sub.expectNothingPending();
    await sub.ack(window[1]);
    await sub.ack(third);
    const rest = await sub.publishes(2);
    assert.deepEqual(rest.map((p) => text(p.payload)), ["m4", "m5"]);
    for (const p of rest) await sub.ack(p);
    await pub.disconnect();
    await sub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a client over our Receive Maximum with QoS 1 and 2 together gets DISCONNECT 0x93 [MQTT-3.3.4-7]", async () => {
  const server = startBroker({ config: { mqtt: { receiveMaximum: 2 } } });
  try {
    const { client, connack } = await TestClient.connect(server.port, {
      clientId: "greedy",
      version: 5,
    });
    assert.equal(connack.properties?.receiveMaximum, 2);
    // Two QoS 2 flows left open at PUBREC use up the quota until their PUBCOMP.
    await client.send(qosPublish(2, 1));
    assert.equal((await client.expect(PacketType.PUBREC)).packetId, 1);
    await client.send(qosPublish(2, 2));
    assert.equal((await client.expect(PacketType.PUBREC)).packetId, 2);
    // A QoS 1 PUBLISH now is one too many.
    await client.send(qosPublish(1, 3));
    const disconnect = await client.expect(PacketType.DISCONNECT);
    assert.equal(disconnect.reasonCode, ReasonCode.ReceiveMaximumExceeded);
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("a client that completes its flows stays within Receive Maximum however many it sends [MQTT-3.3.4-7]", async () => {
  const server = startBroker({ config: { mqtt: { receiveMaximum: 2 } } });
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "polite", version: 5 });
    for (let i = 0; i < 10; i++) {
      const ack = await client.publish("flow", `q${i}`, { qos: ((i % 2) + 1) as 1 | 2 });
      assert.ok(ack && "reasonCode" in ack && ack.reasonCode < 0x80);
    }
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a PUBREL releases a QoS 2 slot of the Receive Maximum quota [MQTT-3.3.4-7]", async () => {
  const server = startBroker({ config: { mqtt: { receiveMaximum: 1 } } });
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "q2", version: 5 });
    await client.send(qosPublish(2, 7));
    await client.expect(PacketType.PUBREC);
    await client.send({
      type: PacketType.PUBREL,
      packetId: 7,
      reasonCode: 0,
      properties: undefined,
    });
    await client.expect(PacketType.PUBCOMP);
    await client.send(qosPublish(1, 8));
    assert.equal((await client.expect(PacketType.PUBACK)).packetId, 8);
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("each connection starts with the full Receive Maximum quota: QoS 2 flows left open before a reconnect do not count (section 4.9) [MQTT-4.9.0-1]", async () => {
  const server = startBroker({ config: { mqtt: { receiveMaximum: 2 } } });
  try {
    const options = {
      clientId: "resume",
      version: 5 as const,
      cleanStart: false,
      properties: { sessionExpiryInterval: 60 },
    };
    const first = await TestClient.connect(server.port, options);
    for (const id of [1, 2]) {
      await first.client.send(qosPublish(2, id));
      const pubrec = await first.client.expect(PacketType.PUBREC);
      assert.equal(pubrec.reasonCode, ReasonCode.NoMatchingSubscribers); // accepted
    }
    await first.client.destroy();
    await server.until(async () => (await server.broker.getSession("resume"))?.connected === false);
    const { client, connack } = await TestClient.connect(server.port, options);
    assert.equal(connack.sessionPresent, true);
    for (const id of [3, 4]) {
      await client.send(qosPublish(2, id));
      const pubrec = await client.expect(PacketType.PUBREC);
      assert.equal(pubrec.reasonCode, ReasonCode.NoMatchingSubscribers); // not 0x93
    }
    // The old flows complete as well [MQTT-4.3.3-9]: their ids are still known.
    for (const id of [1, 2, 3, 4]) {
      await client.send({
        type: PacketType.PUBREL,
        packetId: id,
        reasonCode: 0,
        properties: undefined,
      });
      const pubcomp = await client.expect(PacketType.PUBCOMP);
      assert.deepEqual([pubcomp.packetId, pubcomp.reasonCode], [id, 0]);
    }
    await client.disconnect();
  } finally {
    await server.close();
  }
});
