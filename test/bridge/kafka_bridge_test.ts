/**
 * The Kafka bridge end to end: real MQTT clients (mqtt.js and our test client) publish over TCP to
 * a broker whose bridge produces with kafkajs to a Kafka server, and kcat (librdkafka, Debian's
 * `kcat`) reads back what was produced. No Kafka broker can be installed on these machines: the
 * Kafka server is the wire-level test server of `test/helpers/kafka/`, which both kafkajs and
 * librdkafka take for a single-node cluster.
 *
 * Every wait is for an event: a CONNACK, a PUBACK, a record stored, a bridge state, a log line.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import type { Envelope } from "../../src/bridge/records.ts";
import { type BridgedBroker, QUEUE_RULE, startBridgedBroker } from "../helpers/bridged_broker.ts";
import {
  ApiKey,
  ErrorCode,
  type KafkaTestServer,
  startKafkaTestServer,
} from "../helpers/kafka/mod.ts";
import { kcatConsume } from "../helpers/kafka/kcat.ts";
import { makeCerts } from "../helpers/certs.ts";
import { connackOf, endAll, WAIT_MS } from "../helpers/mqttjs.ts";
import { TestClient } from "../helpers/test_client.ts";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { ConfigInput } from "../../src/config/mod.ts";

const decoder = new TextDecoder();
/** The reason code of an mqtt.js acknowledgement (0 when it carries none). */
const reasonOf = (packet: unknown) =>
  (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
const text = (bytes: Uint8Array | null) => bytes === null ? null : decoder.decode(bytes);

/** A broker bridged to `kafka`, with `$queue/#` publishable and the bridge connected. */
async function bridged(
  kafka: KafkaTestServer,
  config: ConfigInput = {},
): Promise<BridgedBroker> {
  const server = await startBridgedBroker({
    config: {
      ...config,
      acl: { rules: [QUEUE_RULE], ...config.acl },
      bridge: {
        kafka: {
          retry: { initialDelay: "20ms", maxDelay: "200ms" },
          connectTimeout: "1s",
          requestTimeout: "5s",
          ...config.bridge?.kafka,
          brokers: [kafka.bootstrap],
        },
      },
    },
  });
  return server;
}

async function addMapping(server: BridgedBroker, mapping: Record<string, unknown>): Promise<void> {
  const response = await server.api("/api/v1/bridges", {
    method: "POST",
    body: JSON.stringify(mapping),
  });
  assert.equal(response.status, 201, await response.text());
}

async function mqttClient(
  server: BridgedBroker,
  options: IClientOptions = {},
): Promise<MqttClient> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${server.port}`, {
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    protocolVersion: 5,
    ...options,
  });
  await connackOf(client);
  return client;
}

Deno.test("bridge: a $queue/ publish reaches Kafka with its payload, the MQTT topic as key and user properties as headers; kcat reads it back", async () => {
  await using kafka = await startKafkaTestServer({ topics: { sensors: 1 } });
  const server = await bridged(kafka);
  const client = await mqttClient(server, { clientId: "dev-1", username: "alice" });
  try {
    await server.state("connected");
    await addMapping(server, { name: "sensors", filter: "sensors/#", kafkaTopic: "sensors" });
    const puback = await client.publishAsync("$queue/sensors/1", "21.5", {
      qos: 1,
      properties: { userProperties: { unit: "C", site: "north" } },
    });
    assert.equal(reasonOf(puback), 0);
    await client.publishAsync("$queue/sensors/2", "19.0", { qos: 0 });
    await kafka.waitForRecords("sensors", 2);
    assert.deepEqual(await kcatConsume(kafka, "sensors", 0), [
      "sensors/1 21.5 unit=C,site=north",
      "sensors/2 19.0 ",
    ]);
  } finally {
    await endAll([client]);
    await server.close();
  }
});

Deno.test("bridge: the json envelope carries the topic, payload (utf8 or base64), qos, retain, client id, user name, MQTT 5 properties and a timestamp", async () => {
  await using kafka = await startKafkaTestServer({ topics: { audit: 1 } });
  const server = await bridged(kafka);
  const client = await mqttClient(server, { clientId: "dev-2", username: "bob" });
  try {
    await addMapping(server, {
      name: "audit",
      filter: "audit/+",
      kafkaTopic: "audit",
      format: "json",
      payloadEncoding: "utf8",
      key: "{clientId}/{username}",
    });
    const before = Date.now();
    await client.publishAsync("$queue/audit/login", "ok ✓", {
      qos: 1,
      properties: {
        contentType: "text/plain",
        correlationData: new Uint8Array([1, 2, 3]) as never,
        responseTopic: "replies/dev-2",
        payloadFormatIndicator: true,
        messageExpiryInterval: 60,
        userProperties: { trace: "t-1" },
      },
    });
    await client.publishAsync("$queue/audit/blob", new Uint8Array([0xff, 0x00, 0xfe]) as never, {
      qos: 2,
    });
    const records = await kafka.waitForRecords("audit", 2);
    const [login, blob] = records.map((r) => JSON.parse(text(r.value)!) as Envelope);
    assert.deepEqual({ ...login, timestamp: 0 }, {
      topic: "audit/login",
      payloadEncoding: "utf8",
      payload: "ok ✓",
      qos: 1,
      retain: false,
      clientId: "dev-2",
      username: "bob",
      properties: {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 60,
        contentType: "text/plain",
        responseTopic: "replies/dev-2",
        correlationData: "AQID",
        userProperties: [["trace", "t-1"]],
      },
      timestamp: 0,
    });
    assert.ok(login.timestamp >= before && login.timestamp <= Date.now());
    assert.equal(records[0].timestamp, login.timestamp, "the record's CreateTime");
    assert.deepEqual([blob.payloadEncoding, blob.payload, blob.qos], ["base64", "/wD+", 2]);
    assert.deepEqual(records.map((r) => text(r.key)), ["dev-2/bob", "dev-2/bob"]);
    // kcat (librdkafka) reads the same envelope.
    const [line] = await kcatConsume(kafka, "audit", 0, "%s\\n");
    assert.equal(JSON.parse(line).payload, "ok ✓");
  } finally {
    await endAll([client]);
    await server.close();
  }
});

Deno.test("bridge: records of one key stay in order across partitions and batches", async () => {
  await using kafka = await startKafkaTestServer({ topics: { ordered: 3 } });
  const server = await bridged(kafka, {
    bridge: { kafka: { batch: { maxMessages: 7, linger: "2ms" } } },
  });
  const client = await mqttClient(server);
  try {
    await addMapping(server, { name: "ordered", filter: "k/+", kafkaTopic: "ordered" });
    const keys = ["k/a", "k/b", "k/c", "k/d", "k/e"];
    const sent: Promise<unknown>[] = [];
    for (let i = 0; i < 100; i++) {
      // QoS 1 and 0 mixed, sent without waiting: they are in flight together.
      sent.push(
        client.publishAsync(`$queue/${keys[i % keys.length]}`, String(i), {
          qos: i % 3 === 0 ? 0 : 1,
        }),
      );
    }
    await Promise.all(sent);
    const records = await kafka.waitForRecords("ordered", 100);
    for (const key of keys) {
      const mine = records.filter((r) => text(r.key) === key);
      assert.equal(new Set(mine.map((r) => r.partition)).size, 1, `${key} in one partition`);
      const values = mine.map((r) => Number(text(r.value)));
      assert.deepEqual(values, [...values].sort((x, y) => x - y), `${key} in publish order`);
      assert.equal(values.length, 20);
    }
    assert.ok(new Set(records.map((r) => r.partition)).size > 1, "keys spread over partitions");
  } finally {
    await endAll([client]);
    await server.close();
  }
});

Deno.test("bridge: a publish several mappings match goes to each Kafka topic; a copy mapping also leaves MQTT delivery alone", async () => {
  await using kafka = await startKafkaTestServer({ topics: { all: 1, temps: 1, copies: 1 } });
  const server = await bridged(kafka);
  const publisher = await mqttClient(server);
  const subscriber = await mqttClient(server);
  try {
    await addMapping(server, { name: "all", filter: "#", kafkaTopic: "all" });
    await addMapping(server, { name: "temps", filter: "+/temp", kafkaTopic: "temps" });
    await addMapping(server, {
      name: "copies",
      filter: "plant/#",
      kafkaTopic: "copies",
      copy: true,
    });
    await subscriber.subscribeAsync("plant/#", { qos: 1 });
    const received = new Promise<string>((resolve) =>
      subscriber.once("message", (topic, payload) => resolve(`${topic} ${payload}`))
    );
    await publisher.publishAsync("$queue/room/temp", "20", { qos: 1 });
    await publisher.publishAsync("plant/press", "on", { qos: 1 });
    assert.equal(await received, "plant/press on");
    assert.deepEqual((await kafka.waitForRecords("all", 1)).map((r) => text(r.value)), ["20"]);
    assert.deepEqual((await kafka.waitForRecords("temps", 1)).map((r) => text(r.value)), ["20"]);
    const [copy] = await kafka.waitForRecords("copies", 1);
    assert.deepEqual([text(copy.key), text(copy.value)], ["plant/press", "on"]);
    // Only `copy` mappings take ordinary publishes: "all" (filter #) did not take plant/press.
    assert.equal(kafka.records("all").length, 1);
  } finally {
    await endAll([publisher, subscriber]);
    await server.close();
  }
});

Deno.test("bridge: a $queue/ publish reaches no MQTT subscriber ($queue/ shared, #, or the topic itself)", async () => {
  await using kafka = await startKafkaTestServer({ topics: { jobs: 1 } });
  const server = await bridged(kafka);
  const { client: watcher } = await TestClient.connect(server.port, { clientId: "w", version: 5 });
  const { client: publisher } = await TestClient.connect(server.port, {
    clientId: "p",
    version: 5,
  });
  try {
    await addMapping(server, { name: "jobs", filter: "jobs/#", kafkaTopic: "jobs" });
    await watcher.subscribe([
      { filter: "#", qos: 1 },
      { filter: "jobs/#", qos: 1 },
      { filter: "$queue/jobs/#", qos: 1 },
    ]);
    const puback = await publisher.publish("$queue/jobs/1", "run", { qos: 1, retain: true });
    assert.equal(puback?.type === PacketType.PUBACK && puback.reasonCode, ReasonCode.Success);
    await kafka.waitForRecords("jobs", 1);
    await watcher.expectNothingPending();
    assert.equal(await server.backbone.retained.get("$queue/jobs/1"), undefined);
    assert.equal(server.broker.stats.publishSentByQos.reduce((a, b) => a + b), 0);
  } finally {
    await watcher.disconnect();
    await publisher.disconnect();
    await server.close();
  }
});

Deno.test("bridge: the publish ACL applies to the topic as published: a $queue/ topic no rule allows is refused and never reaches Kafka", async () => {
  await using kafka = await startKafkaTestServer({ topics: { secret: 1, open: 1 } });
  const server = await bridged(kafka, {
    acl: { rules: [{ permission: "allow", action: "publish", topic: "$queue/open/#" }] },
  });
  const { client } = await TestClient.connect(server.port, { clientId: "c", version: 5 });
  try {
    await addMapping(server, { name: "secret", filter: "secret/#", kafkaTopic: "secret" });
    await addMapping(server, { name: "open", filter: "open/#", kafkaTopic: "open" });
    const denied = await client.publish("$queue/secret/x", "no", { qos: 1 });
    assert.equal(denied?.type === PacketType.PUBACK && denied.reasonCode, ReasonCode.NotAuthorized);
    await client.publish("$queue/open/x", "yes", { qos: 1 });
    await kafka.waitForRecords("open", 1);
    assert.deepEqual(kafka.records("secret"), []);
  } finally {
    await client.disconnect();
    await server.close();
  }
});

Deno.test("bridge: while Kafka is stopped, QoS 1/2 publishes are acknowledged from the buffer; once it is back every record arrives once, in order", async () => {
  await using kafka = await startKafkaTestServer({ topics: { events: 2 } });
  const server = await bridged(kafka);
  const client = await mqttClient(server);
  try {
    await addMapping(server, { name: "events", filter: "e/#", kafkaTopic: "events" });
    await client.publishAsync("$queue/e/a", "0", { qos: 1 });
    await kafka.waitForRecords("events", 1);
    await kafka.stop();
    // The next request finds Kafka gone: the bridge says so, once.
    await client.publishAsync("$queue/e/a", "1", { qos: 1 });
    await server.state("disconnected");
    for (let i = 2; i < 40; i++) {
      const puback = await client.publishAsync(`$queue/e/${i % 2 ? "a" : "b"}`, String(i), {
        qos: (i % 2 + 1) as 1 | 2,
      });
      assert.equal(reasonOf(puback), 0);
    }
    assert.equal(server.bridge.stats().get("events")!.bufferedMessages > 0, true);
    await kafka.start();
    await server.state("connected");
    // With Kafka connected, a QoS 1 publish on a memory buffer is answered once Kafka has it, so
    // its PUBACK also means everything taken before it is in Kafka.
    await client.publishAsync("$queue/e/b", "40", { qos: 1 });
    const records = kafka.records("events");
    const values = records.map((r) => Number(text(r.value)));
    assert.deepEqual(values.toSorted((x, y) => x - y), Array.from({ length: 41 }, (_, i) => i));
    for (const key of ["e/a", "e/b"]) {
      const mine = records.filter((r) => text(r.key) === key).map((r) => Number(text(r.value)));
      assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `${key} in order`);
    }
    assert.equal(new Set(records.map((r) => r.producerId)).size, 1, "one idempotent producer");
    // One line per state change, never one per retry: no state is logged twice in a row.
    const states = server.logs.map((l) =>
      /kafka bridge (connected|disconnected|retrying)/.exec(l.line)?.[1]
    )
      .filter((state) => state !== undefined);
    assert.ok(states.includes("disconnected"));
    assert.ok(states.every((state, i) => i === 0 || state !== states[i - 1]), states.join(","));
    assert.equal(server.bridge.stats().get("events")!.produced, 41);
    assert.equal(server.bridge.stats().get("events")!.bufferedMessages, 0);
  } finally {
    await endAll([client]);
    await server.close();
  }
});

Deno.test("bridge: answers lost after Kafka stored a batch make the bridge send it again, and the idempotent producer stores it once", async () => {
  await using kafka = await startKafkaTestServer({ topics: { once: 1 } });
  const server = await bridged(kafka);
  const client = await mqttClient(server);
  try {
    await addMapping(server, { name: "once", filter: "#", kafkaTopic: "once" });
    await server.state("connected");
    // More failures than kafkajs retries itself: the bridge's own retry sends the batch again.
    kafka.failNext(ApiKey.Produce, ErrorCode.NOT_LEADER_OR_FOLLOWER, 4, { afterAppend: true });
    await client.publishAsync("$queue/x", "only once", { qos: 1 });
    await client.publishAsync("$queue/x", "then this", { qos: 1 });
    await kafka.waitForRecords("once", 2);
    await server.state("connected");
    // Answered once Kafka has it: every earlier send is over by then.
    await client.publishAsync("$queue/x", "last", { qos: 1 });
    assert.deepEqual(kafka.records("once").map((r) => text(r.value)), [
      "only once",
      "then this",
      "last",
    ]);
    const produces = kafka.requests.filter((r) => r.apiKey === ApiKey.Produce).length;
    assert.ok(produces >= 6, `${produces} produce requests`);
    await server.logged("kafka bridge retrying");
  } finally {
    await endAll([client]);
    await server.close();
  }
});

Deno.test("bridge: at the buffer bound a QoS 1/2 publish gets 0x97 and QoS 0 is dropped and counted; what was taken arrives once Kafka is back", async () => {
  await using kafka = await startKafkaTestServer({ topics: { bounded: 1 } });
  const server = await bridged(kafka, {
    bridge: { kafka: { buffer: { maxMessages: 5 } } },
  });
  const { client } = await TestClient.connect(server.port, { clientId: "c", version: 5 });
  try {
    await addMapping(server, { name: "bounded", filter: "#", kafkaTopic: "bounded" });
    await server.state("connected");
    await kafka.stop();
    await client.publish("$queue/b", "0", { qos: 1 });
    await server.state("disconnected");
    for (let i = 1; i < 5; i++) {
      const ack = await client.publish("$queue/b", String(i), { qos: 1 });
      assert.equal(ack?.type === PacketType.PUBACK && ack.reasonCode, ReasonCode.Success);
    }
    const full = await client.publish("$queue/b", "5", { qos: 1 });
    assert.equal(full?.type === PacketType.PUBACK && full.reasonCode, ReasonCode.QuotaExceeded);
    assert.equal(
      full?.type === PacketType.PUBACK && full.properties?.reasonString,
      "A bridge's buffer is full",
    );
    const pubrec = await client.publish("$queue/b", "6", { qos: 2 });
    assert.equal(pubrec?.type === PacketType.PUBREC && pubrec.reasonCode, 0x97);
    await client.publish("$queue/b", "7", { qos: 0 });
    await client.expectNothingPending();
    assert.deepEqual(
      [
        server.bridge.stats().get("bounded")!.refused,
        server.bridge.stats().get("bounded")!.dropped,
      ],
      [2, 1],
    );
    await server.logged("kafka bridge buffer full: message not taken");
    await kafka.start();
    const records = await kafka.waitForRecords("bounded", 5);
    assert.deepEqual(records.map((r) => text(r.value)), ["0", "1", "2", "3", "4"]);
    const after = await client.publish("$queue/b", "8", { qos: 1 });
    assert.equal(after?.type === PacketType.PUBACK && after.reasonCode, ReasonCode.Success);
  } finally {
    await client.disconnect();
    await server.close();
  }
});

Deno.test("bridge: Kafka down at start-up does not stop the broker; messages wait and go once Kafka comes up", async () => {
  const kafka = await startKafkaTestServer({ topics: { late: 1 } });
  await kafka.stop();
  const server = await bridged(kafka);
  const client = await mqttClient(server);
  try {
    await server.state("disconnected");
    await addMapping(server, { name: "late", filter: "#", kafkaTopic: "late" });
    await client.publishAsync("$queue/x", "early", { qos: 1 });
    await kafka.start();
    const [record] = await kafka.waitForRecords("late", 1);
    assert.equal(text(record.value), "early");
    await server.state("connected");
  } finally {
    await endAll([client]);
    await server.close();
    await kafka.close();
  }
});

Deno.test("bridge: a record Kafka refuses for good is dropped, counted and logged; the ones around it go through", async () => {
  await using kafka = await startKafkaTestServer({ topics: { strict: 1 } });
  const server = await bridged(kafka);
  const client = await mqttClient(server);
  try {
    await addMapping(server, { name: "strict", filter: "#", kafkaTopic: "strict" });
    await server.state("connected");
    // Three records wait while Kafka is away, so they go in one request when it is back.
    await kafka.stop();
    await client.publishAsync("$queue/s", "a", { qos: 1 });
    await server.state("disconnected");
    await client.publishAsync("$queue/s", "b", { qos: 1 });
    await client.publishAsync("$queue/s", "c", { qos: 1 });
    // The request of three is refused, then the first record alone: the bridge sends them one
    // by one to find which.
    kafka.failNext(ApiKey.Produce, ErrorCode.MESSAGE_TOO_LARGE, 2);
    await kafka.start();
    const records = await kafka.waitForRecords("strict", 2);
    assert.deepEqual(records.map((r) => text(r.value)), ["b", "c"]);
    await client.publishAsync("$queue/s", "d", { qos: 1 }); // answered once Kafka has it
    const stats = server.bridge.stats().get("strict")!;
    assert.deepEqual([stats.failed, stats.produced, stats.bufferedMessages], [1, 3, 0]);
    await server.logged("kafka refused a record for good: dropped");
  } finally {
    await endAll([client]);
    await server.close();
  }
});

for (const mechanism of ["plain", "scram-sha-256", "scram-sha-512"] as const) {
  Deno.test(`bridge: SASL ${mechanism} and gzip batches`, async () => {
    await using kafka = await startKafkaTestServer({
      topics: { secured: 1 },
      sasl: { users: { perch: "s3cret" } },
    });
    const server = await bridged(kafka, {
      bridge: {
        kafka: {
          sasl: { mechanism, username: "perch", password: "s3cret" },
          compression: "gzip",
        },
      },
    });
    const client = await mqttClient(server);
    try {
      await addMapping(server, { name: "secured", filter: "#", kafkaTopic: "secured" });
      await client.publishAsync("$queue/s", "over sasl", { qos: 1 });
      const [record] = await kafka.waitForRecords("secured", 1);
      assert.deepEqual([text(record.value), record.compression], ["over sasl", 1]);
      const produce = kafka.requests.find((r) => r.apiKey === ApiKey.Produce);
      assert.equal(produce?.user, "perch");
      assert.deepEqual(kafka.problems, []);
    } finally {
      await endAll([client]);
      await server.close();
    }
  });
}

Deno.test("bridge: TLS to Kafka with the CA of bridge.kafka.tls.ca: produced over an encrypted link", async () => {
  const certs = await makeCerts();
  try {
    await using kafka = await startKafkaTestServer({
      topics: { sealed: 1 },
      tls: { cert: certs.serverCert, key: certs.serverKey },
    });
    const server = await bridged(kafka, {
      bridge: { kafka: { tls: { enabled: true, ca: `${certs.dir}/ca.crt` } } },
    });
    const client = await mqttClient(server);
    try {
      await server.state("connected");
      await addMapping(server, { name: "sealed", filter: "#", kafkaTopic: "sealed" });
      await client.publishAsync("$queue/s", "over tls", { qos: 1 });
      const [record] = await kafka.waitForRecords("sealed", 1);
      assert.equal(text(record.value), "over tls");
      assert.deepEqual(kafka.problems, []);
    } finally {
      await endAll([client]);
      await server.close();
    }
  } finally {
    await certs.remove();
  }
});

Deno.test("bridge: a Kafka certificate the bridge does not trust keeps it disconnected, saying why, and loses nothing", async () => {
  const certs = await makeCerts();
  try {
    await using kafka = await startKafkaTestServer({
      topics: { sealed: 1 },
      tls: { cert: certs.serverCert, key: certs.serverKey },
    });
    // No CA: the system's roots do not know the test CA.
    const server = await bridged(kafka, { bridge: { kafka: { tls: { enabled: true } } } });
    const client = await mqttClient(server);
    try {
      await server.state("disconnected");
      assert.match(server.bridge.status().error ?? "", /certificate|issuer|self.signed|verify/i);
      await addMapping(server, { name: "sealed", filter: "#", kafkaTopic: "sealed" });
      await client.publishAsync("$queue/s", "kept", { qos: 1 });
      assert.equal(server.bridge.stats().get("sealed")!.bufferedMessages, 1);
      assert.deepEqual(kafka.records("sealed"), []);
    } finally {
      await endAll([client]);
      await server.close();
    }
  } finally {
    await certs.remove();
  }
});

Deno.test("bridge: a SASL password Kafka refuses keeps the bridge disconnected, saying why, and loses nothing", async () => {
  await using kafka = await startKafkaTestServer({
    topics: { guarded: 1 },
    sasl: { users: { perch: "right" } },
  });
  const server = await bridged(kafka, {
    bridge: {
      kafka: { sasl: { mechanism: "scram-sha-256", username: "perch", password: "wrong" } },
    },
  });
  const client = await mqttClient(server);
  try {
    await server.state("disconnected");
    assert.match(server.bridge.status().error ?? "", /SASL|authenticat/i);
    await addMapping(server, { name: "guarded", filter: "#", kafkaTopic: "guarded" });
    await client.publishAsync("$queue/g", "kept", { qos: 1 });
    assert.equal(server.bridge.stats().get("guarded")!.bufferedMessages, 1);
    assert.deepEqual(kafka.records("guarded"), []);
  } finally {
    await endAll([client]);
    await server.close();
  }
});
