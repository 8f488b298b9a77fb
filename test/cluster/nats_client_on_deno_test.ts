/**
 * The NATS client library the cluster mode builds on (`@nats-io/transport-node` and friends from
 * npm) against a real nats-server from Deno: each test is one feature the cluster needs, and shows
 * the library's API for it.
 *
 * - core: `connect({ servers })`, `nc.subscribe(subject, { queue, callback })`, `nc.publish(subject,
 *   data, { headers })` with `headers()` from nats-core, `nc.flush()` as a round trip;
 * - JetStream: `jetstreamManager(nc).streams.add(config)`, `jetstream(nc).publish(subject, data,
 *   { msgID, ttl })` resolving to a `PubAck`;
 * - pull consumers: `jsm.consumers.add(stream, { durable_name, filter_subjects })`,
 *   `jsm.consumers.update(stream, durable, { filter_subjects })`, `js.consumers.get(stream,
 *   durable)`, `consumer.next()`, `msg.nak()`, `msg.ackAck()`;
 * - KV: `new Kvm(nc).create(bucket)`, `kv.create(key, value)` (only if absent), `kv.update(key,
 *   value, revision)` (compare-and-set), `kv.watch({ key })`.
 *
 * Every wait is for an event (a message, an ack, a round trip); the JetStream calls' timeouts are
 * failure guards for a loaded machine.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { headers, type Msg, nanos, type NatsConnection } from "@nats-io/nats-core";
import { AckPolicy, jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type NatsServer, startNatsServer } from "../helpers/nats.ts";

/** JetStream API and pull timeouts: failure guards, never measurements. */
const TIMEOUT_MS = 30_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Runs `body` with a connection to a fresh server, and cleans both up. */
async function withNats(body: (nc: NatsConnection, server: NatsServer) => Promise<void>) {
  await using server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  try {
    await body(nc, server);
  } finally {
    await nc.close();
  }
}

Deno.test("nats client on Deno: core publish and subscribe carry headers", async () => {
  await withNats(async (nc) => {
    const received: Msg[] = [];
    nc.subscribe("perch.t.a", { callback: (_err, msg) => void received.push(msg) });
    const h = headers();
    h.set("Perch-Qos", "1");
    h.append("Perch-User-Property", "k=v");
    h.append("Perch-User-Property", "k=w");
    nc.publish("perch.t.a", encoder.encode("hello"), { headers: h });
    // Our own subscription on the same connection: its messages arrive before the PONG.
    await nc.flush();
    assert.equal(received.length, 1);
    assert.equal(decoder.decode(received[0].data), "hello");
    assert.equal(received[0].headers?.get("Perch-Qos"), "1");
    assert.deepEqual(received[0].headers?.values("Perch-User-Property"), ["k=v", "k=w"]);
  });
});

Deno.test("nats client on Deno: a queue group delivers each message to one member", async () => {
  await withNats(async (publisher, server) => {
    const members = [
      await connect({ servers: server.url }),
      await connect({ servers: server.url }),
    ];
    const counts = [0, 0];
    let everyone = 0;
    members.forEach((nc, i) => {
      nc.subscribe("perch.q", { queue: "workers", callback: () => void counts[i]++ });
    });
    publisher.subscribe("perch.q", { callback: () => void everyone++ });
    for (const nc of members) await nc.flush(); // Both queue subscriptions are registered.
    const total = 50;
    for (let i = 0; i < total; i++) publisher.publish("perch.q", encoder.encode(String(i)));
    await publisher.flush();
    // The server queued every delivery before answering the publisher's PING; each member's own
    // round trip then comes back after its deliveries.
    for (const nc of members) await nc.flush();
    assert.equal(everyone, total);
    assert.equal(counts[0] + counts[1], total);
    // Random choice: both members go unused with probability 2^-49.
    assert.ok(counts[0] > 0 && counts[1] > 0, `queue members got ${counts}`);
    for (const nc of members) await nc.close();
  });
});

Deno.test("nats client on Deno: a JetStream publish is acknowledged and deduplicated by msgID", async () => {
  await withNats(async (nc) => {
    const jsm = await jetstreamManager(nc, { timeout: TIMEOUT_MS });
    const js = jetstream(nc, { timeout: TIMEOUT_MS });
    await jsm.streams.add({ name: "MSGS", subjects: ["perch.m.>"], storage: StorageType.File });
    const ack = await js.publish("perch.m.a", encoder.encode("one"), { msgID: "node1-1" });
    assert.deepEqual([ack.stream, ack.seq, ack.duplicate], ["MSGS", 1, false]);
    const again = await js.publish("perch.m.a", encoder.encode("one"), { msgID: "node1-1" });
    assert.deepEqual([again.seq, again.duplicate], [1, true]);
    const other = await js.publish("perch.m.b", encoder.encode("two"));
    assert.equal(other.seq, 2);
    // No stream takes the subject: the request meets "no responders", which the library reports
    // as JetStreamNotEnabled (the same error a server without JetStream gives).
    await assert.rejects(
      js.publish("perch.elsewhere", encoder.encode("x")),
      /jetstream is not enabled/,
    );
  });
});

Deno.test("nats client on Deno: a durable pull consumer with several filter subjects, updated, with nak and redelivery", async () => {
  await withNats(async (nc) => {
    const jsm = await jetstreamManager(nc, { timeout: TIMEOUT_MS });
    const js = jetstream(nc, { timeout: TIMEOUT_MS });
    await jsm.streams.add({ name: "MSGS", subjects: ["perch.m.>"], storage: StorageType.File });
    await jsm.consumers.add("MSGS", {
      durable_name: "node1",
      ack_policy: AckPolicy.Explicit,
      filter_subjects: ["perch.m.a", "perch.m.b.>"],
    });
    for (const subject of ["perch.m.a", "perch.m.b.x", "perch.m.c", "perch.m.b"]) {
      await js.publish(subject, encoder.encode(subject));
    }
    const consumer = await js.consumers.get("MSGS", "node1");
    // Only the filtered subjects are pending; perch.m.c and perch.m.b (not under perch.m.b.>) are
    // not.
    assert.equal((await consumer.info()).num_pending, 2);

    const first = await consumer.next({ expires: TIMEOUT_MS });
    assert.equal(first?.subject, "perch.m.a");
    assert.equal(first?.redelivered, false);
    // nak() is fire-and-forget, and the server takes acks and pull requests on separate paths: the
    // redelivery may come before or after the next new message.
    first?.nak();
    const delivered: string[] = [];
    for (let i = 0; i < 2; i++) {
      const msg = await consumer.next({ expires: TIMEOUT_MS });
      assert.ok(msg);
      delivered.push(`${msg.subject} delivery ${msg.info.deliveryCount}`);
      assert.equal(msg.redelivered, msg.info.deliveryCount > 1);
      // ackAck() waits for the server's confirmation; ack() would not.
      assert.equal(await msg.ackAck(), true);
    }
    assert.deepEqual(delivered.sort(), ["perch.m.a delivery 2", "perch.m.b.x delivery 1"]);

    // A subscription change: the durable consumer keeps its position, with new filters.
    const updated = await jsm.consumers.update("MSGS", "node1", {
      filter_subjects: ["perch.m.c", "perch.m.b"],
    });
    assert.deepEqual(updated.config.filter_subjects, ["perch.m.c", "perch.m.b"]);
    await js.publish("perch.m.a", encoder.encode("no longer wanted"));
    await js.publish("perch.m.c", encoder.encode("wanted"));
    const info = await consumer.info();
    assert.deepEqual([info.num_pending, info.num_ack_pending], [3, 0]);
    const subjects: string[] = [];
    for (let i = 0; i < 3; i++) {
      const msg = await consumer.next({ expires: TIMEOUT_MS });
      assert.ok(msg);
      subjects.push(`${msg.seq}:${msg.subject}`);
      assert.equal(await msg.ackAck(), true);
    }
    assert.deepEqual(subjects, ["3:perch.m.c", "4:perch.m.b", "6:perch.m.c"]);
    assert.equal((await consumer.info()).num_pending, 0);
  });
});

Deno.test("nats client on Deno: KV create, compare-and-set update and watch", async () => {
  await withNats(async (nc) => {
    const kv = await new Kvm(nc).create("sessions", { history: 3 });
    const watch = await kv.watch({ key: "client.>" });

    const r1 = await kv.create("client.a", "v1");
    await assert.rejects(kv.create("client.a", "again"), /wrong last sequence/);
    const r2 = await kv.update("client.a", "v2", r1);
    assert.ok(r2 > r1);
    // A writer that read r1 lost the race: its update is refused.
    await assert.rejects(kv.update("client.a", "stale", r1), /wrong last sequence/);
    await kv.put("other", "not watched");
    await kv.delete("client.a");
    // After a delete, create succeeds again.
    const r3 = await kv.create("client.a", "v3");

    const entry = await kv.get("client.a");
    assert.deepEqual([entry?.string(), entry?.revision], ["v3", r3]);

    const seen: string[] = [];
    for await (const e of watch) {
      seen.push(`${e.operation} ${e.key} ${e.revision} ${e.string()}`);
      if (e.revision === r3) break;
    }
    assert.deepEqual(seen, [
      `PUT client.a ${r1} v1`,
      `PUT client.a ${r2} v2`,
      `DEL client.a ${r3 - 1} `,
      `PUT client.a ${r3} v3`,
    ]);
    watch.stop();
  });
});

Deno.test("nats client on Deno: a per-message TTL (Nats-TTL) removes the message and leaves a delete marker", async () => {
  await withNats(async (nc) => {
    const jsm = await jetstreamManager(nc, { timeout: TIMEOUT_MS });
    const js = jetstream(nc, { timeout: TIMEOUT_MS });
    await jsm.streams.add({ name: "PLAIN", subjects: ["perch.p.>"] });
    // Without allow_msg_ttl the server refuses a TTL instead of ignoring it.
    await assert.rejects(js.publish("perch.p.x", encoder.encode("x"), { ttl: "1s" }), /TTL/);

    await jsm.streams.add({
      name: "RETAINED",
      subjects: ["perch.r.>"],
      allow_msg_ttl: true,
      // When a message expires, a marker takes its place: the event this test waits for.
      subject_delete_marker_ttl: nanos(60_000),
      // With delete markers on, the server raises a shorter message TTL to the markers' TTL,
      // except in a stream that keeps one message per subject (as retained messages need).
      max_msgs_per_subject: 1,
    });
    await jsm.consumers.add("RETAINED", { durable_name: "watch", ack_policy: AckPolicy.None });
    const ack = await js.publish("perch.r.c1", encoder.encode("gone soon"), { ttl: "1s" });
    const kept = await js.publish("perch.r.c2", encoder.encode("kept"));
    const stored = await jsm.streams.getMessage("RETAINED", { seq: ack.seq });
    assert.equal(stored?.header.get("Nats-TTL"), "1s");

    const consumer = await js.consumers.get("RETAINED", "watch");
    const subjects: string[] = [];
    let marker;
    while (marker === undefined) {
      const msg = await consumer.next({ expires: TIMEOUT_MS });
      assert.ok(msg, "no delete marker arrived");
      subjects.push(msg.subject);
      if (msg.headers?.get("Nats-Marker-Reason")) marker = msg;
    }
    assert.deepEqual(subjects, ["perch.r.c1", "perch.r.c2", "perch.r.c1"]);
    assert.equal(marker.headers?.get("Nats-Marker-Reason"), "MaxAge");
    assert.equal(marker.data.length, 0);
    // A missing message is null, not an error.
    assert.equal(await jsm.streams.getMessage("RETAINED", { seq: ack.seq }), null);
    const survivor = await jsm.streams.getMessage("RETAINED", { seq: kept.seq });
    assert.equal(survivor?.string(), "kept");
  });
});
