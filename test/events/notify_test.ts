/**
 * Event notifications end to end in one process: a real broker on a free port, the notifier main
 * wires, and real receivers (an HTTP server, a gRPC server loading `proto/notify.proto`, a
 * nats-server). Sinks that hang or refuse never change what MQTT clients get: every message is
 * still delivered, checked by counts, while the sink's counters say what became of the events.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { PacketType } from "../../src/codec/mod.ts";
import type { PublishPacket } from "../../src/codec/packets.ts";
import type { ConfigInput } from "../../src/config/mod.ts";
import { createNotifier } from "../../src/events/setup.ts";
import type { Notifier } from "../../src/events/notifier.ts";
import { subscriptionId } from "../../src/events/records.ts";
import { nullLogger } from "../../src/util/logger.ts";
import { createSystemClock } from "../../src/util/clock.ts";
import { startBroker, type TestBroker } from "../helpers/broker.ts";
import { GrpcReceiver, WebhookReceiver } from "../helpers/receivers.ts";
import { startNatsServer } from "../helpers/nats.ts";
import { TestClient } from "../helpers/test_client.ts";

/** A broker with the notifier of `config` wired as main.ts wires it. */
async function notifyingBroker(
  config: ConfigInput,
): Promise<{ broker: TestBroker; notifier: Notifier; close(): Promise<void> }> {
  const broker = startBroker({ config });
  const notifier = await createNotifier(broker.config, {
    clock: createSystemClock(),
    logger: nullLogger,
  });
  broker.broker.onEvent((event) => notifier.event(event));
  return {
    broker,
    notifier,
    async close() {
      await broker.close();
      await notifier.close(0);
    },
  };
}

const CLIENT_FIELDS = [
  "id",
  "node_id",
  "host_name",
  "connect_ip",
  "intranet_ip",
  "public_ip",
  "platform",
  "arch",
  "os",
  "agent_version",
  "user_name",
  "proto_name",
  "proto_ver",
  "keep_alive",
  "clean_start",
  "status",
  "timestamp",
];

Deno.test("webhook: smq's events and fields, signed, POST {url}/{EventName}", async () => {
  const receiver = new WebhookReceiver();
  const { broker, notifier, close } = await notifyingBroker({
    notify: { webhook: { url: receiver.url, secret: "s3cret" } },
  });
  try {
    const { client } = await TestClient.connect(broker.port, {
      clientId: "c1",
      version: 5,
      username: "alice",
      keepAlive: 20,
      properties: { userProperties: [["platform", "debian"], ["zone", "eu"]] },
    });
    await client.subscribe("jobs/#", 1);
    await client.unsubscribe(["jobs/#"]);
    await client.disconnect();
    await receiver.until((r) => r.some((x) => x.name === "OnClientDisconnected"));
    assert.deepEqual(receiver.received.map((r) => r.name), [
      "OnClientConnect",
      "OnSubscribe",
      "OnUnSubscribe",
      "OnClientDisconnected",
    ]);
    const connect = receiver.bodies("OnClientConnect")[0];
    for (const field of CLIENT_FIELDS) assert.ok(field in connect, `${field} missing`);
    assert.equal(connect.id, "c1");
    assert.equal(connect.node_id, broker.config.node.id);
    assert.equal(connect.user_name, "alice");
    assert.equal(connect.connect_ip, "127.0.0.1");
    assert.equal(connect.platform, "debian");
    assert.equal(connect.proto_name, "MQTT");
    assert.equal(connect.proto_ver, 5);
    assert.equal(connect.keep_alive, 20);
    assert.equal(connect.clean_start, true);
    assert.equal(connect.status, 1);
    assert.equal(connect.listener, "tcp");
    assert.deepEqual(connect.user_properties, [["platform", "debian"], ["zone", "eu"]]);
    assert.ok(Math.abs((connect.timestamp as number) - Date.now() / 1000) < 60);
    const subscribe = receiver.bodies("OnSubscribe")[0];
    assert.deepEqual({ ...subscribe, timestamp: 0 }, {
      id: subscriptionId("jobs/#", "c1"),
      client_id: "c1",
      node_id: broker.config.node.id,
      topic: "jobs/#",
      qos: 1,
      timestamp: 0,
    });
    assert.match(subscriptionId("jobs/#", "c1"), /^[0-9a-f]{32}:c1$/);
    const gone = receiver.bodies("OnClientDisconnected")[0];
    assert.equal(gone.status, 2);
    assert.equal(gone.reason, "client_disconnect");
    assert.equal(gone.reason_code, 0);
    // The signature is an HMAC-SHA256 of the body with the configured secret.
    const first = receiver.received[0];
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode("s3cret"),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
    const signature = first.headers!.get("x-perch-signature")!;
    assert.match(signature, /^sha256=[0-9a-f]{64}$/);
    assert.ok(
      await crypto.subtle.verify(
        "HMAC",
        key,
        Uint8Array.fromHex(signature.slice(7)),
        new TextEncoder().encode(JSON.stringify(first.body)),
      ),
    );
    assert.equal(first.headers!.get("x-perch-event"), "OnClientConnect");
    await broker.until(() => notifier.sinks[0].sent === 4);
    assert.deepEqual(
      notifier.sinks.map((s) => [s.name, s.sent, s.failed, s.dropped, s.depth]),
      [["webhook", 4, 0, 0, 0]],
    );
  } finally {
    await close();
    await receiver.close();
  }
});

Deno.test("webhook: a 5xx is retried with backoff, a 4xx is not", async () => {
  const receiver = new WebhookReceiver((name, attempt) =>
    name === "OnClientConnect" ? (attempt < 3 ? 503 : 200) : name === "OnSubscribe" ? 400 : 200
  );
  const { broker, notifier, close } = await notifyingBroker({
    notify: { webhook: { url: receiver.url, retries: 3, retryDelay: "10ms" } },
  });
  try {
    const { client } = await TestClient.connect(broker.port, { clientId: "r1" });
    await client.subscribe("x", 0);
    await client.disconnect();
    await receiver.until((r) => r.some((x) => x.name === "OnUnSubscribe"));
    // One client's events stay in order: the connect went out (third try) before the rest, and
    // the subscription ended with the session, after the disconnect.
    assert.deepEqual(receiver.received.map((r) => r.name), [
      "OnClientConnect",
      "OnClientDisconnected",
      "OnUnSubscribe",
    ]);
    assert.equal(receiver.attempts.get("OnClientConnect"), 3);
    assert.equal(receiver.attempts.get("OnSubscribe"), 1);
    const [sink] = notifier.sinks;
    await broker.until(() => sink.sent === 3);
    assert.deepEqual([sink.sent, sink.failed, sink.dropped], [3, 1, 0]);
  } finally {
    await close();
    await receiver.close();
  }
});

/** Receives `count` QoS 1 messages, acknowledging each. */
async function receiveAndAck(client: TestClient, count: number): Promise<PublishPacket[]> {
  const got: PublishPacket[] = [];
  while (got.length < count) {
    const packet = await client.expect(PacketType.PUBLISH, 30_000);
    await client.ack(packet);
    got.push(packet);
  }
  return got;
}

/**
 * MQTT traffic next to a sink that takes nothing: every message delivered, and the sink's queue
 * full at its bound with the rest of the events counted as dropped.
 */
async function trafficBesideStuckSink(config: ConfigInput, stuck: () => number): Promise<void> {
  const { broker, notifier, close } = await notifyingBroker(config);
  const queueSize = 5;
  try {
    const { client: subscriber } = await TestClient.connect(broker.port, { clientId: "sub" });
    await subscriber.subscribe("load/#", 1);
    const { client: publisher } = await TestClient.connect(broker.port, { clientId: "pub" });
    const messages = 500;
    const arriving = receiveAndAck(subscriber, messages);
    for (let i = 0; i < messages; i++) {
      await publisher.publish(`load/${i % 7}`, `m${i}`, { qos: 1 });
    }
    // More lifecycle events: each short-lived client is a connect, a subscribe, a disconnect.
    for (let i = 0; i < 20; i++) {
      const { client } = await TestClient.connect(broker.port, { clientId: `short-${i}` });
      await client.subscribe("s", 0);
      await client.disconnect();
      await client.closed;
    }
    const got = await arriving;
    assert.equal(got.length, messages);
    assert.deepEqual(new Set(got.map((p) => new TextDecoder().decode(p.payload))).size, messages);
    const [sink] = notifier.sinks;
    await broker.until(() => sink.sent + sink.failed + sink.dropped + sink.depth >= 62);
    // sub, pub: connect and subscribe (3); 20 clients: connect, subscribe, disconnect,
    // unsubscribe at the end of their session (80). Nothing went out; the queue holds its bound.
    assert.equal(sink.sent, 0);
    assert.equal(sink.depth, queueSize);
    assert.equal(sink.dropped + sink.failed, 83 - queueSize);
    assert.ok(stuck() >= 0);
  } finally {
    await close();
  }
}

Deno.test("a webhook that never answers: every MQTT message delivered, events dropped at the bound", async () => {
  const receiver = new WebhookReceiver(() => "hang");
  try {
    await trafficBesideStuckSink(
      {
        notify: {
          webhook: { url: receiver.url, timeout: "5m", queueSize: 5, retries: 0 },
        },
      },
      () => receiver.hanging,
    );
    assert.equal(receiver.hanging, 1);
  } finally {
    await receiver.close();
  }
});

Deno.test("a webhook that refuses connections: every MQTT message delivered, events retried then dropped at the bound", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  await trafficBesideStuckSink(
    {
      notify: {
        webhook: {
          url: `http://127.0.0.1:${port}`,
          queueSize: 5,
          retries: 100,
          retryDelay: "1m",
        },
      },
    },
    () => 0,
  );
});

Deno.test("gRPC: smq's pb.Notify gets one call per event, with the JSON in an Any", async () => {
  const receiver = await GrpcReceiver.start();
  receiver.refuseFirst = 1;
  const { broker, notifier, close } = await notifyingBroker({
    notify: { grpc: { server: `127.0.0.1:${receiver.port}`, retryDelay: "10ms" } },
  });
  try {
    const { client } = await TestClient.connect(broker.port, { clientId: "g1", username: "bob" });
    await client.subscribe("a/b", 2);
    await client.disconnect();
    await receiver.until((r) => r.some((x) => x.name === "OnClientDisconnected"));
    assert.deepEqual(
      receiver.received.map((r) => r.name),
      [
        "OnClientConnect",
        "OnSubscribe",
        "OnClientDisconnected",
        "OnUnSubscribe",
      ].slice(0, receiver.received.length),
    );
    assert.equal(receiver.bodies("OnClientConnect")[0].user_name, "bob");
    assert.equal(receiver.bodies("OnClientConnect")[0].proto_ver, 4);
    assert.equal(receiver.bodies("OnSubscribe")[0].qos, 2);
    await receiver.until((r) => r.length === 4);
    const [sink] = notifier.sinks;
    // The first call was answered status false and sent again.
    await broker.until(() => sink.sent === 4);
    assert.deepEqual([sink.name, sink.sent, sink.failed], ["grpc", 4, 0]);
  } finally {
    await close();
    await receiver.close();
  }
});

Deno.test("gRPC: a receiver down at start costs failed events, and the broker runs", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const { broker, notifier, close } = await notifyingBroker({
    notify: { grpc: { server: `127.0.0.1:${port}`, retries: 1, retryDelay: "10ms" } },
  });
  try {
    const { client } = await TestClient.connect(broker.port, { clientId: "g2" });
    await client.subscribe("t", 1);
    const { client: publisher } = await TestClient.connect(broker.port, { clientId: "g2-pub" });
    await publisher.publish("t", "hello", { qos: 1 });
    const [message] = await client.publishes(1);
    assert.equal(new TextDecoder().decode(message.payload), "hello");
    await publisher.disconnect();
    const [sink] = notifier.sinks;
    // g2's connect and subscribe, g2-pub's connect, each tried twice.
    await broker.until(() => sink.failed === 3);
    assert.equal(sink.sent, 0);
    await client.disconnect();
  } finally {
    await close();
  }
});

Deno.test("NATS: events published to {prefix}.events.{EventName}", async () => {
  await using server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  const seen: { subject: string; body: Record<string, unknown> }[] = [];
  const { promise: four, resolve } = Promise.withResolvers<void>();
  nc.subscribe("fleet.events.>", {
    callback: (_error, msg) => {
      seen.push({ subject: msg.subject, body: msg.json() });
      if (seen.length === 4) resolve();
    },
  });
  await nc.flush();
  const { broker, notifier, close } = await notifyingBroker({
    notify: { nats: { enabled: true, servers: [server.url], prefix: "fleet" } },
  });
  try {
    const { client } = await TestClient.connect(broker.port, { clientId: "n1" });
    await client.subscribe("x/y", 1);
    await client.disconnect();
    await four;
    assert.deepEqual(seen.map((s) => s.subject), [
      "fleet.events.OnClientConnect",
      "fleet.events.OnSubscribe",
      "fleet.events.OnClientDisconnected",
      "fleet.events.OnUnSubscribe",
    ]);
    assert.equal(seen[0].body.id, "n1");
    assert.equal(seen[1].body.topic, "x/y");
    const [sink] = notifier.sinks;
    await broker.until(() => sink.sent === 4);
  } finally {
    await close();
    await nc.close();
  }
});

Deno.test("NATS: a server down at start: the broker runs, and the events go out once it is up", async () => {
  await using server = await startNatsServer();
  await server.stop();
  const { broker, notifier, close } = await notifyingBroker({
    notify: {
      nats: { enabled: true, servers: [server.url], timeout: "200ms", retries: 100 },
    },
  });
  try {
    const { client } = await TestClient.connect(broker.port, { clientId: "n2" });
    await client.subscribe("t", 1);
    const { client: publisher } = await TestClient.connect(broker.port, { clientId: "n2-pub" });
    await publisher.publish("t", "meanwhile", { qos: 1 });
    const [message] = await client.publishes(1);
    assert.equal(new TextDecoder().decode(message.payload), "meanwhile");
    const [sink] = notifier.sinks;
    assert.equal(sink.sent, 0);
    await server.start();
    // Resent until the sink's connection is back: n2's connect and subscribe, n2-pub's connect.
    await broker.until(() => sink.sent === 3, 30_000);
    const nc = await connect({ servers: server.url });
    const { promise: seen, resolve } = Promise.withResolvers<string>();
    nc.subscribe("perch.events.OnSubscribe", {
      callback: (_e, msg) => resolve(msg.json<{ topic: string }>().topic),
    });
    await nc.flush();
    await client.subscribe("after/restart", 0);
    assert.equal(await seen, "after/restart");
    await publisher.disconnect();
    await client.disconnect();
    await nc.close();
  } finally {
    await close();
  }
});
