import assert from "node:assert/strict";
import { PacketType } from "../../src/codec/mod.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";

Deno.test("a $share group delivers each message to exactly one member, round robin [MQTT-4.8.2-?]", async () => {
  const server = startBroker();
  try {
    const members = [];
    for (const id of ["m1", "m2", "m3"]) {
      const { client } = await TestClient.connect(server.port, { clientId: id, version: 5 });
      await client.subscribe("$share/g/jobs/+", 0);
      members.push(client);
    }
    const { client: normal } = await TestClient.connect(server.port, { clientId: "n" });
    await normal.subscribe("jobs/#", 0);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    for (let i = 0; i < 9; i++) await pub.publish(`jobs/${i}`, String(i));
    const received = await Promise.all(members.map((m) => m.publishes(3)));
    const all = received.flat().map((m) => text(m.payload)).sort();
    assert.deepEqual(all, ["0", "1", "2", "3", "4", "5", "6", "7", "8"]);
    for (const m of members) await m.expectNothingPending();
    // The non-shared subscriber gets every message as usual.
    assert.equal((await normal.publishes(9)).length, 9);
    await Promise.all([...members, normal, pub].map((c) => c.disconnect()));
  } finally {
    await server.close();
  }
});

Deno.test("the legacy $queue/ form is a shared group", async () => {
  const server = startBroker();
  try {
    const a = (await TestClient.connect(server.port, { clientId: "a" })).client;
    const b = (await TestClient.connect(server.port, { clientId: "b" })).client;
    await a.subscribe("$queue/work", 0);
    await b.subscribe("$queue/work", 0);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("work", "1");
    await pub.publish("work", "2");
    const got = [await a.expect(PacketType.PUBLISH), await b.expect(PacketType.PUBLISH)];
    assert.deepEqual(got.map((m) => text(m.payload)).sort(), ["1", "2"]);
    await Promise.all([a, b, pub].map((c) => c.disconnect()));
  } finally {
    await server.close();
  }
});

Deno.test("a member that leaves has its unacknowledged QoS 1 messages sent to another member [MQTT-4.8.2-5]", async () => {
  const server = startBroker();
  try {
    const { client: leaver } = await TestClient.connect(server.port, { clientId: "leaver" });
    await leaver.subscribe("$share/g/t", 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("t", "important", { qos: 1 });
    const unacked = await leaver.expect(PacketType.PUBLISH);
    assert.equal(text(unacked.payload), "important");
    const { client: stayer } = await TestClient.connect(server.port, { clientId: "stayer" });
    await stayer.subscribe("$share/g/t", 1);
    await leaver.destroy();
    const redelivered = await stayer.expect(PacketType.PUBLISH);
    assert.equal(text(redelivered.payload), "important");
    await stayer.ack(redelivered);
    await Promise.all([stayer, pub].map((c) => c.disconnect()));
  } finally {
    await server.close();
  }
});

Deno.test("QoS 1 shared messages wait in the group while no member can take them", async () => {
  const server = startBroker({ config: { mqtt: { maxInflight: 1 } } });
  try {
    const { client: member } = await TestClient.connect(server.port, { clientId: "m" });
    await member.subscribe("$share/g/q", 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    for (let i = 0; i < 3; i++) await pub.publish("q", String(i), { qos: 1 });
    const order: string[] = [];
    for (let i = 0; i < 3; i++) {
      const msg = await member.expect(PacketType.PUBLISH);
      order.push(text(msg.payload));
      await member.expectNothingPending(); // the window of 1 holds the rest back
      await member.ack(msg);
    }
    assert.deepEqual(order, ["0", "1", "2"]);
    await Promise.all([member, pub].map((c) => c.disconnect()));
  } finally {
    await server.close();
  }
});

Deno.test("No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]", async () => {
  const server = startBroker();
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "nl", version: 5 });
    await client.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{
        filter: "$share/g/x",
        qos: 0,
        noLocal: true,
        retainAsPublished: false,
        retainHandling: 0,
      }],
      properties: undefined,
    });
    assert.equal((await client.expect(PacketType.DISCONNECT)).reasonCode, 0x82);
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("retained messages are not sent to a new shared subscription", async () => {
  const server = startBroker();
  try {
    const { client: pub } = await TestClient.connect(server.port, { clientId: "p" });
    await pub.publish("sr", "kept", { retain: true, qos: 1 });
    const { client } = await TestClient.connect(server.port, { clientId: "s" });
    await client.subscribe("$share/g/sr", 0);
    await client.expectNothingPending();
    await Promise.all([client, pub].map((c) => c.disconnect()));
  } finally {
    await server.close();
  }
});
