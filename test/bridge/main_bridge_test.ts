/**
 * The Kafka bridge as `src/main.ts` wires it, in a process of its own on Deno and on Bun
 * (`broker_process.ts`): started while Kafka is
 * down (the broker starts anyway and says so), smq's API call over HTTP, a QoS 1 publish taken
 * into the buffer, delivered once Kafka is up (read back with kcat), and a clean SIGTERM. Kafka is
 * the wire-level test server of `test/helpers/kafka/` (no Kafka broker can be installed on these
 * machines).
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { runtimeTest, startBrokerProcess } from "../helpers/broker_process.ts";
import { kcatConsume } from "../helpers/kafka/kcat.ts";
import { startKafkaTestServer } from "../helpers/kafka/mod.ts";
import { TestClient } from "../helpers/test_client.ts";

const TOKEN = "bridge-main-test-token-0123456789";

runtimeTest(
  "main: Kafka down at start-up does not stop the broker; smq's API maps a topic, and what was acknowledged reaches Kafka once it is up",
  async (runtime) => {
    await using kafka = await startKafkaTestServer();
    await kafka.stop();
    const dir = await Deno.makeTempDir({ prefix: "perch_bridge_main_" });
    const configFile = `${dir}/perch.yaml`;
    await Deno.writeTextFile(
      configFile,
      [
        "acl: { rules: [{ permission: allow, action: publish, topic: $queue/# }] }",
        "bridge:",
        "  kafka:",
        `    brokers: ["${kafka.bootstrap}"]`,
        "    retry: { initialDelay: 20ms, maxDelay: 200ms }",
        "    connectTimeout: 1s",
      ].join("\n"),
    );
    const broker = await startBrokerProcess(runtime, {
      args: ["-c", configFile],
      env: { PERCH_ADMIN__TOKENS: JSON.stringify([{ token: TOKEN, role: "admin" }]) },
    });
    try {
      const ports = await broker.started();
      await broker.line("kafka bridge disconnected");
      const admin = `http://127.0.0.1:${ports.admin}`;
      const mqttPort = ports.tcp!;
      const ready = await fetch(`${admin}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual((await ready.json()).bridges, {
        kafka: { state: "disconnected", buffered: 0 },
      });
      const mapped = await fetch(`${admin}/api/v1/bridge/`, {
        method: "POST",
        headers: { "x-token": TOKEN, "content-type": "application/json" },
        body: JSON.stringify({ topic: "event", queue: "event" }),
      });
      assert.equal(mapped.status, 201);
      await mapped.body?.cancel();
      const { client } = await TestClient.connect(mqttPort, { clientId: "smq-client", version: 5 });
      const puback = await client.publish("$queue/event", "clicked", { qos: 1 });
      assert.equal(puback?.type === PacketType.PUBACK && puback.reasonCode, ReasonCode.Success);
      await kafka.start();
      await kafka.waitForRecords("event", 1);
      assert.deepEqual(await kcatConsume(kafka, "event", 0, "%k %s\\n"), ["event clicked"]);
      await broker.line("kafka bridge connected");
      await client.disconnect();
    } finally {
      assert.equal((await broker.stop()).code, 0);
      await Deno.remove(dir, { recursive: true });
    }
    assert.ok(broker.logs.some((entry) => entry.msg === "kafka bridge stopped"));
  },
);
