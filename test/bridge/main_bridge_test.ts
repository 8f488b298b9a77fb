/**
 * The Kafka bridge as `src/main.ts` wires it, in a process of its own: started while Kafka is
 * down (the broker starts anyway and says so), smq's API call over HTTP, a QoS 1 publish taken
 * into the buffer, delivered once Kafka is up (read back with kcat), and a clean SIGTERM. Kafka is
 * the wire-level test server of `test/helpers/kafka/` (no Kafka broker can be installed on these
 * machines).
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { kcatConsume } from "../helpers/kafka/kcat.ts";
import { startKafkaTestServer } from "../helpers/kafka/mod.ts";
import { TestClient } from "../helpers/test_client.ts";

const TOKEN = "bridge-main-test-token-0123456789";
/** Longest wait for a log line (a guard, never a delay). */
const WAIT_MS = 30_000;

/** `deno run src/main.ts` with a config file; its JSON log lines, awaited by message. */
function startMain(configFile: string, env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../src/main.ts", import.meta.url).pathname, "-c", configFile],
    env: {
      PERCH_LOG__FORMAT: "json",
      PERCH_LISTENERS__TCP__HOST: "127.0.0.1",
      PERCH_LISTENERS__TCP__PORT: "0",
      PERCH_ADMIN__HOST: "127.0.0.1",
      PERCH_ADMIN__PORT: "0",
      PERCH_ADMIN__TOKENS: JSON.stringify([{ token: TOKEN, role: "admin" }]),
      PERCH_SYS__ENABLED: "false",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  const read = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let end;
      while ((end = pending.indexOf("\n")) !== -1) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 1);
        try {
          logs.push(JSON.parse(line));
        } catch {
          logs.push({ msg: line });
        }
        for (const waiter of [...waiters]) waiter();
      }
    }
  };
  const drained = Promise.all([read(child.stdout), read(child.stderr)]);
  return {
    logs,
    line(message: string): Promise<Record<string, unknown>> {
      const find = () => logs.find((entry) => entry.msg === message);
      const found = find();
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = () => {
          const entry = find();
          if (!entry) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(entry);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`No "${message}" log line; got ${JSON.stringify(logs)}`));
        }, WAIT_MS);
        waiters.add(check);
      });
    },
    async stop(): Promise<Deno.CommandStatus> {
      child.kill("SIGTERM");
      const status = await child.status;
      await drained;
      return status;
    },
  };
}

const portOf = (line: Record<string, unknown>) => Number(String(line.address).split(":").pop());

Deno.test("main: Kafka down at start-up does not stop the broker; smq's API maps a topic, and what was acknowledged reaches Kafka once it is up", async () => {
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
  const broker = startMain(configFile, {});
  try {
    await broker.line("broker started");
    await broker.line("kafka bridge disconnected");
    const admin = `http://127.0.0.1:${portOf(await broker.line("admin API started"))}`;
    const mqttPort = portOf(await broker.line("listener started"));
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
});
