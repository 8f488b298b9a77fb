/**
 * `/api/v1/bridges` and smq's `/api/v1/bridge/` over a broker with the Kafka bridge, plus the
 * bridge's `/readyz` detail and metrics. Kafka is the wire-level test server of
 * `test/helpers/kafka/` (no Kafka broker can be installed on these machines); MQTT clients are
 * real, over TCP.
 *
 * @module
 */

import assert from "node:assert/strict";
import { body, startAdmin } from "../helpers/admin.ts";
import { type BridgedBroker, QUEUE_RULE, startBridgedBroker } from "../helpers/bridged_broker.ts";
import { type KafkaTestServer, startKafkaTestServer } from "../helpers/kafka/mod.ts";
import { TestClient } from "../helpers/test_client.ts";

async function withBridge(fn: (server: BridgedBroker, kafka: KafkaTestServer) => Promise<void>) {
  await using kafka = await startKafkaTestServer();
  const server = await startBridgedBroker({
    config: { acl: { rules: [QUEUE_RULE] }, bridge: { kafka: { brokers: [kafka.bootstrap] } } },
  });
  try {
    await fn(server, kafka);
  } finally {
    await server.close();
  }
}

const json = (value: unknown) => ({ body: JSON.stringify(value) });

Deno.test("bridges API: create, list with the bridge's state, get, replace and delete a mapping", async () => {
  await withBridge(async (server, kafka) => {
    const created = await server.api("/api/v1/bridges", {
      method: "POST",
      ...json({ name: "sensors", filter: "sensors/#", kafkaTopic: "sensors", format: "json" }),
    });
    assert.equal(created.status, 201);
    assert.deepEqual(await body(created), {
      name: "sensors",
      filter: "sensors/#",
      kafkaTopic: "sensors",
      key: "{topic}",
      format: "json",
      payloadEncoding: "base64",
      headers: true,
      copy: false,
      source: "api",
      stats: {
        produced: 0,
        failed: 0,
        dropped: 0,
        refused: 0,
        bufferedMessages: 0,
        bufferedBytes: 0,
        oldestBufferedAgeSeconds: 0,
      },
    });
    const again = await server.api("/api/v1/bridges", {
      method: "POST",
      ...json({ name: "sensors", filter: "x", kafkaTopic: "x" }),
    });
    assert.equal(again.status, 409);
    assert.match((await body(again)).message as string, /A mapping named "sensors" exists/);

    await server.state("connected");
    const list = await body<{
      data: { name: string }[];
      meta: { count: number };
      kafka: Record<string, unknown>;
    }>(await server.api("/api/v1/bridges"));
    assert.deepEqual(list.data.map((m) => m.name), ["sensors"]);
    assert.equal(list.meta.count, 1);
    assert.equal(list.kafka.state, "connected");
    assert.deepEqual(list.kafka.brokers, [kafka.bootstrap]);
    assert.equal(list.kafka.durable, false);

    const replaced = await server.api("/api/v1/bridges/sensors", {
      method: "PUT",
      ...json({ filter: "sensors/+/temp", kafkaTopic: "temps", copy: true }),
    });
    assert.equal(replaced.status, 200);
    const one = await body(await server.api("/api/v1/bridges/sensors"));
    assert.deepEqual([one.filter, one.kafkaTopic, one.copy, one.format], [
      "sensors/+/temp",
      "temps",
      true,
      "raw",
    ]);
    const missing = await server.api("/api/v1/bridges/nope", {
      method: "PUT",
      ...json({ filter: "a", kafkaTopic: "a" }),
    });
    assert.equal(missing.status, 404);
    await missing.body?.cancel();

    assert.equal((await server.api("/api/v1/bridges/sensors", { method: "DELETE" })).status, 204);
    assert.equal((await server.api("/api/v1/bridges/sensors", { method: "DELETE" })).status, 404);
    assert.equal((await server.api("/api/v1/bridges/sensors")).status, 404);
  });
});

Deno.test("bridges API: a mapping that is not valid gets 400 naming each field", async () => {
  await withBridge(async (server) => {
    const response = await server.api("/api/v1/bridges", {
      method: "POST",
      ...json({ name: "bad name", filter: "a/#/b", kafkaTopic: "no spaces", key: "{nope}" }),
    });
    assert.equal(response.status, 400);
    const { issues } = await body<{ issues: { field: string; message: string }[] }>(response);
    assert.deepEqual(issues.map((i) => i.field), ["name", "filter", "kafkaTopic", "key"]);
    assert.match(issues[3].message, /unknown placeholder \{nope\}/);
    const shape = await server.api("/api/v1/bridges", {
      method: "POST",
      ...json({ name: "x", filter: "x", kafkaTopic: "x", format: "xml", extra: 1 }),
    });
    assert.equal(shape.status, 400);
    const fields = (await body<{ issues: { field: string }[] }>(shape)).issues.map((i) => i.field);
    assert.ok(fields.includes("format"), fields.join());
    const shared = await server.api("/api/v1/bridges", {
      method: "POST",
      ...json({ name: "x", filter: "$queue/x", kafkaTopic: "x" }),
    });
    assert.equal(shared.status, 400);
    assert.match((await body(shared)).message as string, /without \$share\/ or \$queue\//);
  });
});

Deno.test("smq's POST /api/v1/bridge/ {topic, queue} maps $queue/{topic} to the Kafka topic queue", async () => {
  await withBridge(async (server, kafka) => {
    const created = await server.api("/api/v1/bridge/", {
      method: "POST",
      ...json({ topic: "event", queue: "event" }),
    });
    assert.equal(created.status, 201);
    assert.deepEqual(
      [(await body(created)).filter, (await server.bridge.mapping("event-event"))?.kafkaTopic],
      ["event", "event"],
    );
    const repeated = await server.api("/api/v1/bridge/", {
      method: "POST",
      ...json({ topic: "event", queue: "event" }),
    });
    assert.equal(repeated.status, 200, "the same call again changes nothing");
    await repeated.body?.cancel();
    const bad = await server.api("/api/v1/bridge/", {
      method: "POST",
      ...json({ topic: "a/#/b", queue: "bad queue" }),
    });
    assert.equal(bad.status, 400);
    const issues = (await body<{ issues: { field: string }[] }>(bad)).issues.map((i) => i.field);
    assert.deepEqual(issues, ["topic", "queue"]);

    const { client } = await TestClient.connect(server.port, { clientId: "smq", version: 4 });
    await client.publish("$queue/event", '{"kind":"click"}', { qos: 1 });
    const [record] = await kafka.waitForRecords("event", 1);
    assert.equal(new TextDecoder().decode(record.value!), '{"kind":"click"}');
    assert.equal(new TextDecoder().decode(record.key!), "event");
    await client.disconnect();
  });
});

Deno.test("bridges API: /readyz shows the bridge's state without depending on it, /metrics counts per mapping", async () => {
  const kafka = await startKafkaTestServer();
  await kafka.stop();
  const server = await startBridgedBroker({
    config: {
      acl: { rules: [QUEUE_RULE] },
      bridge: { kafka: { brokers: [kafka.bootstrap], retry: { maxDelay: "200ms" } } },
    },
  });
  try {
    await server.state("disconnected");
    const ready = await server.api("/readyz");
    assert.equal(ready.status, 200, "Kafka away never makes the node unready");
    assert.deepEqual(await body(ready), {
      status: "ready",
      checks: { listeners: true, backbone: true },
      bridges: { kafka: { state: "disconnected", buffered: 0 } },
    });
    const created = await server.api("/api/v1/bridges", {
      method: "POST",
      ...json({ name: "m1", filter: "#", kafkaTopic: "m1" }),
    });
    await created.body?.cancel();
    const { client } = await TestClient.connect(server.port, { clientId: "c", version: 5 });
    await client.publish("$queue/a", "12345", { qos: 1 });
    const metrics = await (await server.api("/metrics")).text();
    assert.match(metrics, /perch_kafka_bridge_connected\{node="[^"]+"\} 0/);
    assert.match(metrics, /perch_kafka_bridge_buffered_messages\{mapping="m1",node="[^"]+"\} 1/);
    assert.match(metrics, /perch_kafka_bridge_buffered_bytes\{mapping="m1",node="[^"]+"\} 6/);
    assert.match(metrics, /perch_kafka_bridge_produced_total\{mapping="m1",node="[^"]+"\} 0/);
    assert.match(metrics, /perch_kafka_bridge_oldest_buffered_age_seconds\{mapping="m1"/);
    assert.match(metrics, /perch_kafka_bridge_outbox\{unit="messages",node="[^"]+"\} 1/);
    await kafka.start();
    await kafka.waitForRecords("m1", 1);
    await server.state("connected");
    await client.publish("$queue/a", "6", { qos: 1 }); // answered once Kafka has it
    const after = await (await server.api("/metrics")).text();
    assert.match(after, /perch_kafka_bridge_connected\{node="[^"]+"\} 1/);
    assert.match(after, /perch_kafka_bridge_produced_total\{mapping="m1",node="[^"]+"\} 2/);
    await client.disconnect();
  } finally {
    await server.close();
    await kafka.close();
  }
});

Deno.test("bridges API: without bridge.kafka configured the routes answer 409 saying so", async () => {
  const admin = await startAdmin();
  try {
    const response = await admin.request("/api/v1/bridges");
    assert.equal(response.status, 409);
    assert.match((await body(response)).message as string, /set bridge\.kafka\.brokers/);
    const smq = await admin.request("/api/v1/bridge/", {
      method: "POST",
      body: JSON.stringify({ topic: "a", queue: "a" }),
    });
    assert.equal(smq.status, 409);
    await smq.body?.cancel();
    const openapi = await body<{ paths: Record<string, unknown> }>(
      await admin.request("/api/v1/openapi.json"),
    );
    assert.ok(openapi.paths["/api/v1/bridges"] && openapi.paths["/api/v1/bridges/{name}"]);
    assert.ok(openapi.paths["/api/v1/bridge/"]);
  } finally {
    await admin.close();
  }
});

Deno.test("bridges API: mappings of the config file work from the start, are listed first and are read-only here", async () => {
  await using kafka = await startKafkaTestServer();
  const server = await startBridgedBroker({
    config: {
      acl: { rules: [QUEUE_RULE] },
      bridge: {
        kafka: {
          brokers: [kafka.bootstrap],
          mappings: [{ name: "fromfile", filter: "f/#", kafkaTopic: "file", format: "json" }],
        },
      },
    },
  });
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "c", version: 5 });
    await client.publish("$queue/f/1", "x", { qos: 1 });
    const [record] = await kafka.waitForRecords("file", 1);
    assert.equal(JSON.parse(new TextDecoder().decode(record.value!)).topic, "f/1");
    await client.disconnect();
    const added = await server.api("/api/v1/bridges", {
      method: "POST",
      ...json({ name: "fromapi", filter: "a", kafkaTopic: "a" }),
    });
    await added.body?.cancel();
    const list = await body<{ data: { name: string; source: string }[] }>(
      await server.api("/api/v1/bridges"),
    );
    assert.deepEqual(list.data.map((m) => [m.name, m.source]), [
      ["fromfile", "config"],
      ["fromapi", "api"],
    ]);
    for (
      const [method, path, payload] of [
        ["PUT", "/api/v1/bridges/fromfile", { filter: "g", kafkaTopic: "g" }],
        ["DELETE", "/api/v1/bridges/fromfile", undefined],
        ["POST", "/api/v1/bridges", { name: "fromfile", filter: "g", kafkaTopic: "g" }],
      ] as const
    ) {
      const response = await server.api(path, {
        method,
        ...(payload ? json(payload) : {}),
      });
      assert.equal(response.status, 409, `${method} ${path}`);
      await response.body?.cancel();
    }
  } finally {
    await server.close();
  }
});
