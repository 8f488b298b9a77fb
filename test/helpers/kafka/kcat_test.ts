/**
 * kcat (librdkafka 2.0) against the Kafka test server: it lists the cluster, reads back exactly
 * what kafkajs produced (keys and headers included), produces itself (keys, headers, gzip,
 * idempotence), and authenticates with SASL PLAIN and SCRAM.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CompressionTypes } from "kafkajs";
import { testKafka } from "./kafkajs.ts";
import { kcat, kcatConsume } from "./kcat.ts";
import { ApiKey, startKafkaTestServer } from "./mod.ts";

const text = (bytes: Uint8Array | null) => bytes === null ? null : new TextDecoder().decode(bytes);

Deno.test("kcat -L lists the topics, their partitions and this broker as the leader of each", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 3, audit: 1 } });
  const result = await kcat(server, ["-L"]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, new RegExp(`broker 1 at ${server.bootstrap} \\(controller\\)`));
  assert.match(result.stdout, /topic "events" with 3 partitions:/);
  assert.match(result.stdout, /topic "audit" with 1 partitions:/);
  assert.match(result.stdout, /partition 2, leader 1, replicas: 1, isrs: 1/);
  assert.deepEqual(server.problems, []);
});

Deno.test("kcat -C reads back exactly what an idempotent, gzip kafkajs producer sent, keys and headers included", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 2 } });
  const { kafka } = testKafka(server);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  try {
    await producer.connect();
    await producer.send({
      topic: "events",
      acks: -1,
      compression: CompressionTypes.GZIP,
      messages: [
        { partition: 0, key: "sensor/1", value: "21.5", headers: { unit: "C", qos: "1" } },
        { partition: 0, key: "sensor/2", value: "22.0" },
        { partition: 1, key: "sensor/3", value: "19.0", headers: { unit: "F" } },
      ],
    });
    await producer.send({
      topic: "events",
      acks: -1,
      messages: [{ partition: 0, key: "sensor/1", value: "21.7", headers: { unit: "C" } }],
    });
  } finally {
    await producer.disconnect();
  }
  assert.deepEqual(await kcatConsume(server, "events", 0), [
    "sensor/1 21.5 unit=C,qos=1",
    "sensor/2 22.0 ",
    "sensor/1 21.7 unit=C",
  ]);
  assert.deepEqual(await kcatConsume(server, "events", 1, "%o %k %s %h\\n"), [
    "0 sensor/3 19.0 unit=F",
  ]);
  const fetches = server.requests.filter((r) => r.apiKey === ApiKey.Fetch);
  assert.ok(fetches.length > 0 && fetches.every((r) => r.supported));
  assert.deepEqual(server.problems, []);
});

Deno.test("kcat -P with keys, headers, gzip and idempotence is stored as sent and read back", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 } });
  const long = "compressible ".repeat(40).trim();
  const produced = await kcat(server, [
    "-P",
    "-t",
    "events",
    "-p",
    "0",
    "-K",
    ":",
    "-H",
    "origin=kcat",
    "-z",
    "gzip",
    "-X",
    "enable.idempotence=true",
  ], { input: `k1:first\nk2:${long}\n` });
  assert.equal(produced.code, 0, produced.stderr);

  const records = server.records("events");
  assert.deepEqual(records.map((r) => [text(r.key), text(r.value)]), [["k1", "first"], [
    "k2",
    long,
  ]]);
  assert.deepEqual(records.map((r) => r.headers.map((h) => [h.key, text(h.value)])), [
    [["origin", "kcat"]],
    [["origin", "kcat"]],
  ]);
  assert.ok(records.every((r) => r.producerId >= 0 && r.compression === 1));
  assert.deepEqual(records.map((r) => r.sequence), [0, 1]);
  assert.deepEqual(await kcatConsume(server, "events", 0, "%o:%k\\n"), ["0:k1", "1:k2"]);
});

Deno.test("kcat -P with snappy, lz4 or zstd fails delivery with UNSUPPORTED_COMPRESSION_TYPE", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 } });
  for (const codec of ["snappy", "lz4", "zstd"]) {
    const result = await kcat(server, ["-P", "-t", "events", "-z", codec], {
      input: `${"compressible ".repeat(40)}\n`,
    });
    assert.notEqual(result.code, 0, codec);
    assert.match(result.stderr, /Unsupported compression type/, codec);
  }
  assert.deepEqual(server.records("events"), []);
});

for (const mechanism of ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]) {
  Deno.test(`kcat with SASL ${mechanism}: the right password lists and produces, a wrong one is refused`, async () => {
    await using server = await startKafkaTestServer({
      topics: { events: 1 },
      sasl: { users: { alice: "wonderland" } },
    });
    const good = { mechanism, user: "alice", password: "wonderland" };
    const listed = await kcat(server, ["-L"], { sasl: good });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /topic "events" with 1 partitions/);
    const produced = await kcat(server, ["-P", "-t", "events"], { sasl: good, input: "hi\n" });
    assert.equal(produced.code, 0, produced.stderr);
    assert.deepEqual(server.records("events").map((r) => text(r.value)), ["hi"]);

    // kcat retries authentication until its metadata timeout (-m, seconds) runs out.
    const refused = await kcat(server, ["-L", "-m", "1"], {
      sasl: { ...good, password: "looking-glass" },
    });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /SASL authentication error: Authentication failed/);
  });
}

Deno.test("kcat -G reads every partition as a consumer group member and commits its offsets", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 2 } });
  await kcat(server, ["-P", "-t", "events", "-p", "0"], { input: "a\nb\n" });
  await kcat(server, ["-P", "-t", "events", "-p", "1"], { input: "c\n" });
  const result = await kcat(server, [
    "-G",
    "readers",
    "-o",
    "beginning",
    "-e",
    "-q",
    "-f",
    "%p:%o:%s\\n",
    "-X",
    "heartbeat.interval.ms=100",
    "events",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.stdout.split("\n").slice(0, -1).sort(), ["0:0:a", "0:1:b", "1:0:c"]);
  assert.equal(server.committedOffset("readers", "events", 0), 2);
  assert.equal(server.committedOffset("readers", "events", 1), 1);
  for (const key of [ApiKey.JoinGroup, ApiKey.SyncGroup, ApiKey.OffsetCommit, ApiKey.LeaveGroup]) {
    assert.ok(server.requests.some((r) => r.apiKey === key), `API key ${key}`);
  }
  assert.deepEqual(server.problems, []);
});
