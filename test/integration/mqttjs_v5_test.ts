/**
 * Interoperability with mqtt.js (npm `mqtt`) over MQTT 5: session expiry, topic aliases in both
 * directions, flow control, will delay and request/response (subscription identifiers, No Local
 * and forwarded properties are in `mqttjs_test.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import mqtt, { type IPublishPacket, type MqttClient } from "mqtt";
import { PacketType } from "../../src/codec/mod.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startBroker } from "../helpers/broker.ts";
import { collect, connackOf, connect, endAll } from "../helpers/mqttjs.ts";
import { TestClient, text } from "../helpers/test_client.ts";
import { targetTest } from "../helpers/targets.ts";

Deno.test("mqtt.js v5: Session Expiry Interval keeps the session and its queued message across a reconnect, then it expires [MQTT-3.1.2-23] [MQTT-3.2.2-3]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  let client: MqttClient | undefined;
  try {
    const options = {
      protocolVersion: 5 as const,
      clientId: "mj-session",
      clean: false,
      properties: { sessionExpiryInterval: 60 },
    };
    ({ client } = await connect(server, options));
    await client.subscribeAsync("mj/session", { qos: 1 });
    await client.endAsync();
    await server.offline("mj-session");
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    await pub.publish("mj/session", "kept for you", { qos: 1 });
    await pub.disconnect();
    clock.advance(59_000);
    // Listen before the CONNACK: the queued message follows it at once.
    client = mqtt.connect(`mqtt://127.0.0.1:${server.port}`, { ...options, reconnectPeriod: 0 });
    const arriving = collect(client, 1);
    assert.equal((await connackOf(client)).sessionPresent, true);
    const [message] = await arriving;
    assert.equal(message.payload.toString(), "kept for you");
    await client.endAsync();
    await server.offline("mj-session");
    clock.advance(59_999);
    assert.ok(await server.broker.getSession("mj-session"));
    clock.advance(1);
    await server.gone("mj-session");
  } finally {
    await endAll([client]);
    await server.close();
  }
});

targetTest(
  "mqtt.js v5: topic aliases both ways: mqtt.js's aliases resolve here [MQTT-3.3.2-12], ours within its Topic Alias Maximum resolve there [MQTT-3.3.2-11]",
  {},
  async (server) => {
    let pub: MqttClient | undefined;
    let sub: MqttClient | undefined;
    try {
      ({ client: sub } = await connect(server, {
        protocolVersion: 5,
        clientId: "mj-alias-sub",
        properties: { topicAliasMaximum: 2 },
      }));
      await sub.subscribeAsync("mj/alias/#", { qos: 1 });
      const { client: watcher } = await TestClient.connect(server.port, {
        clientId: "watcher",
        version: 5,
      });
      await watcher.subscribe("mj/alias/#", 1);
      const arriving = collect(sub, 4);
      ({ client: pub } = await connect(server, { protocolVersion: 5, clientId: "mj-alias-pub" }));
      await pub.publishAsync("mj/alias/a", "1", { qos: 1, properties: { topicAlias: 1 } });
      await pub.publishAsync("", "2", { qos: 1, properties: { topicAlias: 1 } });
      await pub.publishAsync("mj/alias/b", "3", { qos: 1, properties: { topicAlias: 2 } });
      await pub.publishAsync("", "4", { qos: 1, properties: { topicAlias: 1 } });
      const expected = [["mj/alias/a", "1"], ["mj/alias/a", "2"], ["mj/alias/b", "3"], [
        "mj/alias/a",
        "4",
      ]];
      // Our own client sees the topics the aliases stood for.
      const seen = await watcher.publishes(4);
      assert.deepEqual(seen.map((p) => [p.topic, text(p.payload)]), expected);
      for (const p of seen) await watcher.ack(p);
      // mqtt.js resolved the aliases we sent it; each message came with one within its maximum.
      const got = await arriving;
      assert.deepEqual(got.map((m) => [m.topic, m.payload.toString()]), expected);
      for (const m of got) {
        const alias = m.packet.properties?.topicAlias;
        assert.ok(alias !== undefined && alias >= 1 && alias <= 2, `alias ${alias}`);
      }
      await watcher.disconnect();
    } finally {
      await endAll([pub, sub]);
    }
  },
);

targetTest(
  "mqtt.js v5: the broker stays within mqtt.js's Receive Maximum while a message is unacknowledged [MQTT-3.3.4-9]",
  {},
  async (server) => {
    let sub: MqttClient | undefined;
    try {
      ({ client: sub } = await connect(server, {
        protocolVersion: 5,
        clientId: "mj-flow",
        properties: { receiveMaximum: 2 },
      }));
      await sub.subscribeAsync("mj/flow", { qos: 1 });
      // mqtt.js acknowledges once handleMessage calls back, and reads nothing more until then.
      const held = Promise.withResolvers<() => void>();
      const handleMessage = sub.handleMessage.bind(sub);
      let first = true;
      sub.handleMessage = (packet: IPublishPacket, callback) => {
        if (!first) return handleMessage(packet, callback);
        first = false;
        held.resolve(() => handleMessage(packet, callback));
      };
      const arriving = collect(sub, 5);
      const { client: pub } = await TestClient.connect(server.port, { clientId: "pub" });
      for (let i = 1; i <= 5; i++) await pub.publish("mj/flow", `m${i}`, { qos: 1 });
      await pub.disconnect();
      const release = await held.promise;
      const session = (await server.session("mj-flow"))!;
      assert.equal(session.inflight, 2);
      assert.equal(session.queued, 3);
      release();
      const got = await arriving;
      assert.deepEqual(got.map((m) => m.payload.toString()), ["m1", "m2", "m3", "m4", "m5"]);
    } finally {
      await endAll([sub]);
    }
  },
);

Deno.test("mqtt.js v5: Will Delay Interval: a reconnection in time cancels the will, a longer absence sends it [MQTT-3.1.3-9]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  let client: MqttClient | undefined;
  try {
    const { client: watcher } = await TestClient.connect(server.port, {
      clientId: "watcher",
      version: 5,
    });
    await watcher.subscribe("mj/will", 1);
    const options = {
      protocolVersion: 5 as const,
      clientId: "mj-will",
      clean: false,
      properties: { sessionExpiryInterval: 300 },
      will: {
        topic: "mj/will",
        payload: Buffer.from("mqtt.js went away"),
        qos: 1 as const,
        retain: false,
        properties: { willDelayInterval: 30 },
      },
    };
    const dropConnection = async (c: MqttClient) => {
      c.stream.destroy(); // no DISCONNECT: the will is due
      await server.until(async () =>
        (await server.broker.getSession("mj-will"))?.connected === false
      );
    };
    ({ client } = await connect(server, options));
    await dropConnection(client);
    await client.endAsync(true);
    clock.advance(20_000);
    ({ client } = await connect(server, options)); // back before the delay ran out
    clock.advance(60_000);
    await watcher.expectNothingPending();
    await dropConnection(client);
    clock.advance(30_000);
    const will = await watcher.expect(PacketType.PUBLISH);
    assert.equal(text(will.payload), "mqtt.js went away");
    await watcher.ack(will);
    await watcher.disconnect();
  } finally {
    await endAll([client]);
    await server.close();
  }
});

targetTest(
  "mqtt.js v5: request/response with Response Information, Response Topic and Correlation Data [MQTT-3.1.2-28] [MQTT-3.3.2-15] [MQTT-3.3.2-16]",
  {},
  async (server) => {
    let requester: MqttClient | undefined;
    let responder: MqttClient | undefined;
    try {
      ({ client: responder } = await connect(server, {
        protocolVersion: 5,
        clientId: "mj-responder",
      }));
      await responder.subscribeAsync("mj/service", { qos: 1 });
      responder.on("message", (_topic, payload, packet) => {
        const { responseTopic, correlationData } = packet.properties ?? {};
        if (!responseTopic) return;
        responder!.publish(responseTopic, `echo ${payload}`, {
          qos: 1,
          properties: { correlationData },
        });
      });
      let connack;
      ({ client: requester, connack } = await connect(server, {
        protocolVersion: 5,
        clientId: "mj-requester",
        properties: { requestResponseInformation: true },
      }));
      const responseInformation = connack.properties?.responseInformation;
      assert.equal(responseInformation, "response/mj-requester");
      const replyTo = `${responseInformation}/replies`;
      await requester.subscribeAsync(replyTo, { qos: 1 });
      const reply = collect(requester, 1);
      const correlationData = Buffer.from([0xde, 0xad, 0x00, 0x01]);
      await requester.publishAsync("mj/service", "hello", {
        qos: 1,
        properties: { responseTopic: replyTo, correlationData },
      });
      const [message] = await reply;
      assert.equal(message.topic, replyTo);
      assert.equal(message.payload.toString(), "echo hello");
      assert.deepEqual([...message.packet.properties!.correlationData!], [...correlationData]);
    } finally {
      await endAll([requester, responder]);
    }
  },
);
