/**
 * The Kafka bridge on the NATS JetStream backbone, over a real nats-server: a mapping added
 * through one node's admin API applies on another node, and the outbox is JetStream's, so what a
 * node acknowledged while Kafka was away survives that node: a new process with the same node id
 * hands it to Kafka. Kafka is the wire-level test server of `test/helpers/kafka/` (no Kafka broker
 * can be installed on these machines); MQTT clients are real, over TCP.
 *
 * @module
 */

import assert from "node:assert/strict";
import { NatsBackbone } from "../../cluster/nats_backbone.ts";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { createSystemClock } from "../../src/util/clock.ts";
import { type BridgedBroker, QUEUE_RULE, startBridgedBroker } from "../helpers/bridged_broker.ts";
import { type KafkaTestServer, startKafkaTestServer } from "../helpers/kafka/mod.ts";
import { type NatsServer, startNatsServer } from "../helpers/nats.ts";
import { TestClient } from "../helpers/test_client.ts";

let nats: Promise<NatsServer> | undefined;
let prefixes = 0;

/** A node on the shared nats-server: its own NATS backbone under `prefix`, bridged to `kafka`. */
async function node(id: string, prefix: string, kafka: KafkaTestServer): Promise<BridgedBroker> {
  nats ??= startNatsServer();
  const clock = createSystemClock();
  const backbone = new NatsBackbone({
    servers: [(await nats).url],
    prefix,
    clock,
    storage: "file",
    timeoutMs: 10_000,
  });
  await backbone.start({ id, version: "perch test", startedAt: clock.now() });
  const server = await startBridgedBroker({
    backbone,
    config: {
      node: { id },
      acl: { rules: [QUEUE_RULE] },
      bridge: {
        kafka: {
          brokers: [kafka.bootstrap],
          retry: { initialDelay: "20ms", maxDelay: "200ms" },
          connectTimeout: "1s",
        },
      },
    },
  });
  return {
    ...server,
    async close() {
      await server.close();
      await backbone.close();
    },
  };
}

const text = (bytes: Uint8Array | null) => bytes && new TextDecoder().decode(bytes);

Deno.test("cluster bridge: a mapping added through one node's API applies on another node", async () => {
  await using kafka = await startKafkaTestServer({ topics: { orders: 1 } });
  const prefix = `bridge${++prefixes}`;
  const a = await node("node-a", prefix, kafka);
  const b = await node("node-b", prefix, kafka);
  const { client } = await TestClient.connect(b.port, { clientId: "on-b", version: 5 });
  try {
    const created = await a.api("/api/v1/bridges", {
      method: "POST",
      body: JSON.stringify({ name: "orders", filter: "orders/#", kafkaTopic: "orders" }),
    });
    assert.equal(created.status, 201);
    await created.body?.cancel();
    await b.logged("kafka bridge mappings applied");
    assert.equal(b.bridge.mapping("orders")?.kafkaTopic, "orders");
    const puback = await client.publish("$queue/orders/42", "paid", { qos: 1 });
    assert.equal(puback?.type === PacketType.PUBACK && puback.reasonCode, ReasonCode.Success);
    const [record] = await kafka.waitForRecords("orders", 1);
    assert.deepEqual([text(record.key), text(record.value)], ["orders/42", "paid"]);
    // Node b's durable outbox acknowledged it: its bridge says so.
    assert.equal(b.bridge.status().durable, true);
  } finally {
    await client.disconnect();
    await a.close();
    await b.close();
  }
});

Deno.test("cluster bridge: what a node acknowledged while Kafka was away is in JetStream; a new process with the node's id hands it to Kafka", async () => {
  const kafka = await startKafkaTestServer({ topics: { kept: 1 } });
  const prefix = `bridge${++prefixes}`;
  const first = await node("node-k", prefix, kafka);
  try {
    const created = await first.api("/api/v1/bridges", {
      method: "POST",
      body: JSON.stringify({ name: "kept", filter: "#", kafkaTopic: "kept" }),
    });
    await created.body?.cancel();
    await first.state("connected");
    await kafka.stop();
    const { client } = await TestClient.connect(first.port, { clientId: "p", version: 5 });
    for (let i = 0; i < 10; i++) {
      const ack = await client.publish("$queue/k", String(i), { qos: 1 });
      assert.equal(ack?.type === PacketType.PUBACK && ack.reasonCode, ReasonCode.Success);
    }
    await client.disconnect();
    assert.equal((await first.bridge.outboxSize()).messages, 10);
  } finally {
    // The node goes away with its outbox full: no grace, Kafka is still down.
    await first.close();
  }
  await kafka.start();
  const second = await node("node-k", prefix, kafka);
  try {
    const records = await kafka.waitForRecords("kept", 10);
    assert.deepEqual(
      records.map((r) => text(r.value)),
      Array.from({ length: 10 }, (_, i) => `${i}`),
    );
    await second.logged("kafka bridge started");
    assert.match(
      second.logs.find((l) => l.line.includes("kafka bridge started"))!.line,
      /waiting=10/,
    );
  } finally {
    await second.close();
    await kafka.close();
  }
});

Deno.test("cluster bridge: a node that went away while Kafka was away leaves its outbox to a survivor, which hands it to Kafka in order", async () => {
  const kafka = await startKafkaTestServer({ topics: { adopted: 1 } });
  const prefix = `bridge${++prefixes}`;
  const gone = await node("node-gone", prefix, kafka);
  const survivor = await node("node-survivor", prefix, kafka);
  try {
    const created = await gone.api("/api/v1/bridges", {
      method: "POST",
      body: JSON.stringify({ name: "adopted", filter: "#", kafkaTopic: "adopted" }),
    });
    await created.body?.cancel();
    await gone.state("connected");
    await kafka.stop();
    const { client } = await TestClient.connect(gone.port, { clientId: "p", version: 5 });
    for (let i = 0; i < 10; i++) {
      const ack = await client.publish("$queue/a", String(i), { qos: 1 });
      assert.equal(ack?.type === PacketType.PUBACK && ack.reasonCode, ReasonCode.Success);
    }
    await client.disconnect();
    assert.equal((await gone.bridge.outboxSize()).messages, 10);
    // It leaves the cluster with its outbox full and never comes back.
    await gone.close();
    await survivor.logged("kafka bridge: taking over a lost node's outbox");
    await kafka.start();
    const records = await kafka.waitForRecords("adopted", 10);
    assert.deepEqual(
      records.map((r) => text(r.value)),
      Array.from({ length: 10 }, (_, i) => `${i}`),
    );
    await survivor.logged("kafka bridge: a lost node's outbox is drained");
    assert.equal(kafka.records("adopted").length, 10, "each once");
  } finally {
    await survivor.close();
    await kafka.close();
  }
});

Deno.test("cluster bridge: the nats-server stops", async () => {
  if (nats) await (await nats).close();
});
