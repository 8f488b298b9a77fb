/**
 * Interoperability with Eclipse Paho's Python client (Debian's python3-paho-mqtt) over MQTT 5:
 * session expiry, topic aliases, subscription identifiers, flow control, will delay and
 * request/response. Paho runs as a subprocess (`paho_client.py`) and reports what it sees; the
 * assertions are here.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType } from "../../src/codec/mod.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startBroker } from "../helpers/broker.ts";
import { PahoRun } from "../helpers/paho.ts";
import { TestClient, text } from "../helpers/test_client.ts";
import { targetTest } from "../helpers/targets.ts";

targetTest(
  "Paho v5: a session with Session Expiry Interval keeps its subscription and queued message across a reconnect, and DISCONNECT can end it [MQTT-3.1.2-23] [MQTT-3.2.2-3]",
  {},
  async (server) => {
    const paho = await PahoRun.start("session", server.port);
    try {
      await paho.next("ready");
      assert.equal((await server.session("paho-session"))?.expiryInterval, 60);
      const { client: pub } = await TestClient.connect(server.port, {
        clientId: "pub",
        version: 5,
      });
      await pub.publish("paho/session", "while away", { qos: 1 });
      await pub.disconnect();
      await paho.go();
      const connack = await paho.next("connack");
      assert.equal(connack.session_present, true);
      const message = await paho.next("message");
      assert.equal(message.payload, "while away");
      assert.equal(message.qos, 1);
      await paho.next("done");
      await paho.finish();
      assert.equal(await server.session("paho-session"), undefined);
    } finally {
      await paho.kill();
    }
  },
);

targetTest(
  "Paho v5: topic aliases from the client resolve to the topic they were set with [MQTT-3.3.2-12]",
  {},
  async (server) => {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "sub", version: 5 });
    const paho = await PahoRun.start("topic-alias", server.port);
    try {
      await sub.subscribe("paho/alias/#", 1);
      const connack = await paho.next("connack");
      assert.equal(connack.reason_code, 0);
      await paho.next("done");
      await paho.finish();
      const got = await sub.publishes(4);
      assert.deepEqual(got.map((p) => [p.topic, text(p.payload)]), [
        ["paho/alias/topic", "first"],
        ["paho/alias/topic", "second"],
        ["paho/alias/topic", "third"],
        ["paho/alias/topic", "fourth"],
      ]);
      for (const p of got) await sub.ack(p);
      await sub.disconnect();
    } finally {
      await paho.kill();
    }
  },
);

targetTest(
  "Paho v5: one message matching two subscriptions carries both Subscription Identifiers [MQTT-3.3.4-3] [MQTT-3.3.4-4]",
  {},
  async (server) => {
    const paho = await PahoRun.start("subscription-ids", server.port);
    try {
      await paho.next("ready");
      const { client: pub } = await TestClient.connect(server.port, { clientId: "pub" });
      await pub.publish("paho/ids/a", "both", { qos: 1 });
      await pub.publish("paho/ids/a/b", "deep only", { qos: 1 });
      await pub.disconnect();
      const first = await paho.next("message");
      assert.equal(first.payload, "both");
      assert.deepEqual([...(first.subscription_identifiers as number[])].sort(), [11, 22]);
      const second = await paho.next("message");
      assert.equal(second.payload, "deep only");
      assert.deepEqual(second.subscription_identifiers, [22]);
      await paho.next("done");
      await paho.finish();
    } finally {
      await paho.kill();
    }
  },
);

targetTest(
  "Paho v5: the broker keeps within Paho's Receive Maximum while Paho holds a message, then delivers the rest in order [MQTT-3.3.4-9]",
  {},
  async (server) => {
    const paho = await PahoRun.start("flow-control", server.port);
    try {
      await paho.next("ready");
      const { client: pub } = await TestClient.connect(server.port, { clientId: "pub" });
      for (let i = 1; i <= 5; i++) await pub.publish("paho/flow", `m${i}`, { qos: 1 });
      await pub.disconnect();
      const held = await paho.next("holding");
      assert.equal(held.payload, "m1");
      // Paho has not acknowledged m1: two messages in flight (its Receive Maximum), three queued.
      const session = (await server.session("paho-flow"))!;
      assert.equal(session.inflight, 2);
      assert.equal(session.queued, 3);
      await paho.go();
      const payloads = [];
      for (let i = 0; i < 5; i++) payloads.push((await paho.next("message")).payload);
      assert.deepEqual(payloads, ["m1", "m2", "m3", "m4", "m5"]);
      await paho.next("done");
      await paho.finish();
    } finally {
      await paho.kill();
    }
  },
);

Deno.test("Paho v5: a will with Will Delay Interval goes out only after the delay, with its user property [MQTT-3.1.3-9] [MQTT-3.1.3-10]", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({ clock });
  const { client: watcher } = await TestClient.connect(server.port, {
    clientId: "watcher",
    version: 5,
  });
  const paho = await PahoRun.start("will-delay", server.port);
  try {
    await watcher.subscribe("paho/will", 1);
    await paho.next("ready");
    await paho.kill(); // no DISCONNECT: the will is due
    await server.until(async () =>
      (await server.broker.getSession("paho-will"))?.connected === false
    );
    clock.advance(29_999);
    await watcher.expectNothingPending();
    clock.advance(1);
    const will = await watcher.expect(PacketType.PUBLISH);
    assert.equal(text(will.payload), "paho is offline");
    assert.deepEqual(will.properties?.userProperties, [["reason", "gone"]]);
    await watcher.ack(will);
    await watcher.disconnect();
  } finally {
    await paho.kill();
    await server.close();
  }
});

targetTest(
  "Paho v5: request/response with Response Information, Response Topic and Correlation Data [MQTT-3.1.2-28] [MQTT-3.3.2-15] [MQTT-3.3.2-16]",
  {},
  async (server) => {
    const { client: service } = await TestClient.connect(server.port, {
      clientId: "service",
      version: 5,
    });
    await service.subscribe("paho/service", 1);
    const paho = await PahoRun.start("request-response", server.port);
    try {
      const connack = await paho.next("connack");
      assert.equal(connack.response_information, "response/paho-requester");
      const request = await service.expect(PacketType.PUBLISH);
      await service.ack(request);
      assert.equal(text(request.payload), "ping");
      assert.equal(request.properties?.responseTopic, "response/paho-requester/reply");
      await service.publish(request.properties!.responseTopic!, "pong", {
        qos: 1,
        properties: { correlationData: request.properties!.correlationData },
      });
      const reply = await paho.next("message");
      assert.equal(reply.topic, "response/paho-requester/reply");
      assert.equal(reply.payload, "pong");
      assert.equal(reply.correlation_data, new TextEncoder().encode("\x01\x02req-7").toHex());
      await paho.next("done");
      await paho.finish();
      await service.disconnect();
    } finally {
      await paho.kill();
    }
  },
);
