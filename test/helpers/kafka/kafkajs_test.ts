/**
 * kafkajs (npm) against the Kafka test server: the producer the bridge will use sends keys,
 * headers, several partitions and gzip, idempotently with acks -1, and what the server stored is
 * what was sent; the fault controls make kafkajs retry, and the idempotent producer's retries are
 * not stored twice.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CompressionTypes, type Consumer, type Producer } from "kafkajs";
import { testKafka } from "./kafkajs.ts";
import { ApiKey, ErrorCode, type KafkaRecord, startKafkaTestServer } from "./mod.ts";

const text = (bytes: Uint8Array | null) => bytes === null ? null : new TextDecoder().decode(bytes);

/** A record as [key, value, {header: value}] strings, for comparing with what was sent. */
const plain = (r: KafkaRecord) => [
  text(r.key),
  text(r.value),
  Object.fromEntries(r.headers.map((h) => [h.key, text(h.value)])),
];

async function disconnectAll(...producers: (Producer | undefined)[]): Promise<void> {
  for (const producer of producers) await producer?.disconnect();
}

Deno.test("kafkajs: an idempotent producer's keys, headers, partitions and gzip batches are stored as sent", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 3 } });
  const { kafka } = testKafka(server);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  try {
    await producer.connect();
    await producer.send({
      topic: "events",
      acks: -1,
      compression: CompressionTypes.GZIP,
      messages: [
        { partition: 0, key: "k1", value: "v1", headers: { trace: "t1", unit: "C" } },
        { partition: 0, key: "k2", value: "v2" },
        { partition: 2, key: "k3", value: "v3", headers: { trace: "t3" } },
      ],
    });
    await producer.send({
      topic: "events",
      acks: -1,
      messages: [{ partition: 0, key: null, value: "v4" }, { partition: 1, value: "v5" }],
    });

    assert.deepEqual(server.records("events", 0).map(plain), [
      ["k1", "v1", { trace: "t1", unit: "C" }],
      ["k2", "v2", {}],
      [null, "v4", {}],
    ]);
    assert.deepEqual(server.records("events", 1).map(plain), [[null, "v5", {}]]);
    assert.deepEqual(server.records("events", 2).map(plain), [["k3", "v3", { trace: "t3" }]]);

    const partition0 = server.records("events", 0);
    assert.deepEqual(partition0.map((r) => r.offset), [0, 1, 2]);
    assert.deepEqual(partition0.map((r) => r.compression), [1, 1, 0]); // gzip, gzip, none
    // One producer id from InitProducerId, sequences counted per partition from 0.
    const producerIds = new Set(server.records("events").map((r) => r.producerId));
    assert.equal(producerIds.size, 1);
    assert.ok([...producerIds][0] >= 0);
    assert.deepEqual(partition0.map((r) => r.sequence), [0, 1, 2]);
    assert.ok(server.requests.some((r) => r.apiKey === ApiKey.InitProducerId));
    assert.ok(server.requests.every((r) => r.supported));
    assert.deepEqual(server.problems, []);
  } finally {
    await disconnectAll(producer);
  }
});

Deno.test("kafkajs: sending to an unknown topic creates it with the default partition count", async () => {
  await using server = await startKafkaTestServer({ defaultPartitions: 2 });
  const { kafka } = testKafka(server);
  const producer = kafka.producer();
  try {
    await producer.connect();
    await producer.send({ topic: "fresh", messages: [{ partition: 1, value: "hello" }] });
    assert.deepEqual(server.topics(), { fresh: 2 });
    assert.deepEqual(server.records("fresh").map(plain), [[null, "hello", {}]]);
    assert.equal(server.records("fresh")[0].partition, 1);
  } finally {
    await disconnectAll(producer);
  }
});

Deno.test("kafkajs: a producer retries while the server is stopped and succeeds once it starts again on the same port", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 } });
  const port = server.port;
  const client = testKafka(server);
  const producer = client.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  try {
    await producer.connect();
    await producer.send({ topic: "events", acks: -1, messages: [{ value: "before" }] });
    await server.stop();
    const failedBefore = client.sockets.failed;
    const sending = producer.send({ topic: "events", acks: -1, messages: [{ value: "during" }] });
    // Two refused connection attempts: kafkajs is retrying against a broker that is down.
    await client.until(() => client.sockets.failed >= failedBefore + 2);
    await server.start();
    await sending;
    assert.equal(server.port, port);
    assert.deepEqual(server.records("events").map((r) => text(r.value)), ["before", "during"]);
  } finally {
    await disconnectAll(producer);
  }
});

Deno.test("kafkajs: failNext errors make the producer retry, and the record is stored once", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 } });
  const { kafka } = testKafka(server);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  try {
    await producer.connect();
    server.failNext(ApiKey.Produce, ErrorCode.NOT_LEADER_OR_FOLLOWER, 2);
    await producer.send({ topic: "events", acks: -1, messages: [{ value: "once" }] });
    const produces = server.requests.filter((r) => r.apiKey === ApiKey.Produce);
    assert.equal(produces.length, 3);
    assert.deepEqual(server.records("events").map((r) => text(r.value)), ["once"]);
  } finally {
    await disconnectAll(producer);
  }
});

Deno.test("kafkajs: a lost acknowledgement is retried; the idempotent producer's retry is not stored twice, a plain producer's is", async () => {
  await using server = await startKafkaTestServer({ topics: { idempotent: 1, plain: 1 } });
  const { kafka } = testKafka(server);
  const idempotent = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const plainProducer = kafka.producer();
  try {
    await idempotent.connect();
    await plainProducer.connect();
    server.failNext(ApiKey.Produce, ErrorCode.REQUEST_TIMED_OUT, 1, { afterAppend: true });
    await idempotent.send({ topic: "idempotent", acks: -1, messages: [{ value: "a" }] });
    await idempotent.send({ topic: "idempotent", acks: -1, messages: [{ value: "b" }] });
    assert.deepEqual(server.records("idempotent").map((r) => text(r.value)), ["a", "b"]);
    // "a" was sent twice (its first answer was an error), "b" once.
    assert.equal(server.requests.filter((r) => r.apiKey === ApiKey.Produce).length, 3);

    server.failNext(ApiKey.Produce, ErrorCode.REQUEST_TIMED_OUT, 1, { afterAppend: true });
    await plainProducer.send({ topic: "plain", acks: -1, messages: [{ value: "a" }] });
    assert.deepEqual(server.records("plain").map((r) => text(r.value)), ["a", "a"]);
  } finally {
    await disconnectAll(idempotent, plainProducer);
  }
});

Deno.test("kafkajs: slow() responses time the producer's request out; without it the send succeeds", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 } });
  const { kafka } = testKafka(server, { requestTimeout: 100, retry: { retries: 0 } });
  const producer = kafka.producer();
  try {
    await producer.connect();
    await producer.send({ topic: "events", messages: [{ value: "first" }] }); // metadata known
    server.slow(1000);
    await assert.rejects(
      producer.send({ topic: "events", messages: [{ value: "late" }] }),
      (err: Error) => /Produce.*timed out/.test(err.message),
    );
    server.slow(0);
    await producer.send({ topic: "events", messages: [{ value: "on time" }] });
    // The slowed request was served, only its answer came late: all three are stored.
    const records = await server.waitForRecords("events", 3);
    assert.deepEqual(records.map((r) => text(r.value)).sort(), ["first", "late", "on time"]);
  } finally {
    await disconnectAll(producer);
  }
});

Deno.test("kafkajs: while refuse() is on the producer's connections are closed and retried; it connects once it is off", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 1 } });
  const { kafka } = testKafka(server);
  const producer = kafka.producer();
  try {
    server.refuse();
    const connecting = producer.connect();
    await server.until(() => server.refusedConnections >= 2);
    server.refuse(false);
    await connecting;
    await producer.send({ topic: "events", messages: [{ value: "through" }] });
    assert.deepEqual(server.records("events").map((r) => text(r.value)), ["through"]);
  } finally {
    await disconnectAll(producer);
  }
});

for (
  const mechanism of [
    ["plain", "PLAIN"],
    ["scram-sha-256", "SCRAM-SHA-256"],
    ["scram-sha-512", "SCRAM-SHA-512"],
  ] as const
) {
  Deno.test(`kafkajs: SASL ${mechanism[1]} with the right password is served, with a wrong one refused`, async () => {
    await using server = await startKafkaTestServer({
      topics: { events: 1 },
      sasl: { users: { alice: "wonderland" } },
    });
    const sasl = (password: string) => ({
      sasl: { mechanism: mechanism[0], username: "alice", password },
      retry: { retries: 0 },
    });
    // deno-lint-ignore no-explicit-any -- kafkajs types the mechanism union per variant
    const good = testKafka(server, sasl("wonderland") as any).kafka.producer();
    // deno-lint-ignore no-explicit-any
    const bad = testKafka(server, sasl("looking-glass") as any).kafka.producer();
    try {
      await good.connect();
      await good.send({ topic: "events", messages: [{ value: "authenticated" }] });
      assert.deepEqual(server.records("events").map((r) => text(r.value)), ["authenticated"]);
      const produce = server.requests.find((r) => r.apiKey === ApiKey.Produce);
      assert.equal(produce?.user, "alice");

      await assert.rejects(
        bad.connect(),
        (err: Error) => err.name === "KafkaJSSASLAuthenticationError",
      );
    } finally {
      await disconnectAll(good, bad);
    }
  });
}

Deno.test("kafkajs consumers in one group split the partitions, each record is read once, and a later member resumes from the committed offsets", async () => {
  await using server = await startKafkaTestServer({ topics: { events: 2 } });
  const { kafka } = testKafka(server);
  const producer = kafka.producer();
  const consumers: Consumer[] = [];
  const seen: string[] = [];
  const assigned = new Map<Consumer, number[]>();
  const events = new EventTarget();
  const until = (predicate: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!predicate()) return;
        events.removeEventListener("change", check);
        resolve();
      };
      events.addEventListener("change", check);
      check();
    });
  const startConsumer = async () => {
    // Short fetch waits and heartbeats, so a member hears of a rebalance soon.
    const consumer = kafka.consumer({
      groupId: "readers",
      maxWaitTimeInMs: 50,
      heartbeatInterval: 50,
    });
    consumers.push(consumer);
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      assigned.set(consumer, e.payload.memberAssignment["events"] ?? []);
      events.dispatchEvent(new Event("change"));
    });
    await consumer.connect();
    await consumer.subscribe({ topic: "events", fromBeginning: true });
    await consumer.run({
      autoCommitThreshold: 1,
      eachMessage: ({ message }) => {
        seen.push(`${text(message.key)}=${text(message.value)}`);
        events.dispatchEvent(new Event("change"));
        return Promise.resolve();
      },
    });
  };
  try {
    await producer.connect();
    await startConsumer();
    await startConsumer();
    // Both members in the same generation: one partition each.
    await until(() =>
      [...assigned.values()].map((p) => p.join()).sort().join(" ") === "0 1" && assigned.size === 2
    );
    await producer.send({
      topic: "events",
      messages: [
        { partition: 0, key: "a", value: "1" },
        { partition: 1, key: "b", value: "2" },
        { partition: 0, key: "c", value: "3" },
      ],
    });
    await until(() => seen.length === 3);
    assert.deepEqual(seen.sort(), ["a=1", "b=2", "c=3"]);
    await server.until(() =>
      server.committedOffset("readers", "events", 0) === 2 &&
      server.committedOffset("readers", "events", 1) === 1
    );
    await Promise.all(consumers.map((c) => c.disconnect()));

    await producer.send({ topic: "events", messages: [{ partition: 1, key: "d", value: "4" }] });
    seen.length = 0;
    await startConsumer();
    await until(() => seen.length >= 1);
    assert.deepEqual(seen, ["d=4"]);
    assert.deepEqual(server.problems, []);
  } finally {
    for (const consumer of consumers) await consumer.disconnect();
    await disconnectAll(producer);
  }
});
