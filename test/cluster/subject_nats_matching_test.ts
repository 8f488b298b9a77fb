/**
 * `cluster/subject.ts` against a real nats-server: NATS's own subscription matching of mapped
 * subjects gives exactly MQTT's matching (the broker's `topicMatchesFilter`) for random topics
 * and filters full of reserved characters, empty levels and `$` topics; and a subject of the
 * default maximum length goes through a JetStream publish with headers and a pull consumer.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { headers } from "@nats-io/nats-core";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { DEFAULT_MAX_SUBJECT_BYTES, SubjectMapping } from "../../cluster/subject.ts";
import { topicMatchesFilter } from "../../src/topic/matches.ts";
import { prng } from "../topic/_reference.ts";
import { startNatsServer } from "../helpers/nats.ts";
import { adversarialFilter, adversarialTopic } from "./_subjects.ts";

/** JetStream API and pull timeouts: failure guards, never measurements. */
const TIMEOUT_MS = 30_000;

const mapping = new SubjectMapping("perch.m");

Deno.test("subject mapping on nats-server: subscriptions to mapped filters receive exactly the topics MQTT matches", async () => {
  const random = prng(0xa75);
  const topics = [...new Set(Array.from({ length: 200 }, () => adversarialTopic(random)))];
  const filters = [
    ...new Set(topics.slice(0, 150).map((topic) => adversarialFilter(random, topic))),
  ];

  await using server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  /** received[f][t]: deliveries of topic t to filter f's subscriptions. */
  const received = filters.map(() => topics.map(() => 0));
  /** Delivered subjects that do not decode to the topic published on them. */
  const undecodable: string[] = [];
  filters.forEach((filter, f) => {
    for (const subject of mapping.filterToSubjects(filter)) {
      nc.subscribe(subject, {
        callback: (_err, msg) => {
          const t = Number(msg.string());
          if (mapping.subjectToTopic(msg.subject) !== topics[t]) undecodable.push(msg.subject);
          received[f][t]++;
        },
      });
    }
  });
  topics.forEach((topic, t) => nc.publish(mapping.topicToSubject(topic), String(t)));
  // Our own subscriptions: every delivery arrives before the PONG.
  await nc.flush();
  await nc.close();

  assert.deepEqual(undecodable, []);
  let matches = 0;
  filters.forEach((filter, f) => {
    topics.forEach((topic, t) => {
      const expected = topicMatchesFilter(topic, filter) ? 1 : 0;
      matches += expected;
      assert.equal(
        received[f][t],
        expected,
        `filter ${JSON.stringify(filter)} topic ${JSON.stringify(topic)}`,
      );
    });
  });
  assert.ok(matches >= 100, `only ${matches} matching pairs`);
});

Deno.test("subject mapping on nats-server: a subject of the default maximum length passes through JetStream with headers", async () => {
  await using server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc, { timeout: TIMEOUT_MS });
  const js = jetstream(nc, { timeout: TIMEOUT_MS });
  await jsm.streams.add({ name: "MSGS", subjects: ["perch.m.>"] });
  await jsm.consumers.add("MSGS", { durable_name: "node1", ack_policy: AckPolicy.Explicit });

  const topic = "é/".repeat(799) + "x".repeat(DEFAULT_MAX_SUBJECT_BYTES - 10 - 3 * 799);
  const subject = mapping.topicToSubject(topic);
  assert.equal(new TextEncoder().encode(subject).length, DEFAULT_MAX_SUBJECT_BYTES);
  const h = headers();
  h.set("Perch-Qos", "1");
  const ack = await js.publish(subject, "payload", { headers: h, msgID: "node1-1" });
  assert.equal(ack.seq, 1);

  const msg = await (await js.consumers.get("MSGS", "node1")).next({ expires: TIMEOUT_MS });
  assert.ok(msg);
  assert.equal(mapping.subjectToTopic(msg.subject), topic);
  assert.equal(msg.headers?.get("Perch-Qos"), "1");
  assert.equal(await msg.ackAck(), true);
  assert.equal(nc.isClosed(), false);
  await nc.close();
});
