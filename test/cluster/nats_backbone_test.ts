/**
 * The backbone conformance suite against a real nats-server: every test gets a fresh backbone
 * under its own prefix (streams, buckets and subjects apart) on one server started for the file.
 * Lock TTLs run on the server's clock, so the suite's `advance` waits for real.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  checkServerVersion,
  MIN_SERVER_VERSION,
  NatsBackbone,
  NatsStartError,
} from "../../cluster/nats_backbone.ts";
import type { QueuedDelivery } from "../../src/backbone/backbone.ts";
import { keyToken } from "../../cluster/names.ts";
import { MAX_QUEUES } from "../../cluster/nats_queues.ts";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { JsPublisher } from "../../cluster/js_publisher.ts";
import { Bucket } from "../../cluster/bucket.ts";
import type { Message } from "../../src/mod.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { type NatsServer, startNatsCluster, startNatsServer } from "../helpers/nats.ts";
import { runBackboneSuite } from "../backbone/backbone_suite.ts";

let server: Promise<NatsServer> | undefined;
let next = 0;

runBackboneSuite("nats", async (clock) => {
  server ??= startNatsServer();
  const { url } = await server;
  return new NatsBackbone({
    servers: [url],
    prefix: `suite${++next}`,
    clock,
    storage: "memory",
    timeoutMs: 10_000,
  });
}, {
  advance: async (clock, ms) => {
    clock.advance(ms);
    await new Promise((resolve) => setTimeout(resolve, ms));
  },
});

Deno.test("nats: an outbox outlives the process that appended: another backbone on the prefix reads what was not removed", async () => {
  server ??= startNatsServer();
  const { url } = await server;
  const prefix = `outbox${++next}`;
  const make = () =>
    new NatsBackbone({
      servers: [url],
      prefix,
      clock: new ManualClock(0),
      storage: "file",
      timeoutMs: 10_000,
    });
  const first = make();
  const second = make();
  const encoder = new TextEncoder();
  await first.start({ id: "a", version: "test", startedAt: 0 });
  try {
    const outbox = await first.outbox.open("kafka.a", { maxMessages: 10, maxBytes: 10_000 });
    assert.equal(outbox.durable, true);
    for (const text of ["1", "2", "3"]) await outbox.append(encoder.encode(text));
    const [delivered] = await outbox.read(3);
    await outbox.remove(delivered.seq);
  } finally {
    await first.close();
  }
  await second.start({ id: "b", version: "test", startedAt: 0 });
  try {
    const outbox = await second.outbox.open("kafka.a", { maxMessages: 10, maxBytes: 10_000 });
    const entries = await outbox.read(10);
    assert.deepEqual(entries.map((e) => new TextDecoder().decode(e.payload)), ["2", "3"]);
  } finally {
    await second.close();
  }
});

/** A QoS 1 message. */
function qos1(topic: string, payload: string): Message {
  return {
    topic,
    payload: new TextEncoder().encode(payload),
    qos: 1,
    retain: false,
    properties: undefined,
    expiresAt: 0,
    origin: "",
  };
}

/** A backbone on the suite's server under `prefix`, started as node `id`. */
async function startNode(id: string, prefix: string, ackWaitMs?: number): Promise<NatsBackbone> {
  server ??= startNatsServer();
  const backbone = new NatsBackbone({
    servers: [(await server).url],
    prefix,
    clock: new ManualClock(0),
    storage: "memory",
    timeoutMs: 10_000,
    ackWaitMs,
  });
  await backbone.start({ id, version: "test", startedAt: 0 });
  return backbone;
}

/** Two started backbones on one fresh prefix. */
async function twoNodes(): Promise<{ a: NatsBackbone; b: NatsBackbone; prefix: string }> {
  const prefix = `nodes${++next}`;
  return { a: await startNode("a", prefix), b: await startNode("b", prefix), prefix };
}

Deno.test("nats: a QoS 1 message whose every queue is full is not stored, and still reaches live subscribers of other nodes", async () => {
  const { a, b, prefix } = await twoNodes();
  const nc = await connect({ servers: (await server!).url });
  try {
    await a.queues.setFilters("s1", ["t"], { maxMessages: 1, maxBytes: 1 << 20 });
    const live: string[] = [];
    b.messages.listen((message) => live.push(new TextDecoder().decode(message.payload)));
    await b.messages.addInterest("t");
    // Unstored messages go out only while another node is known.
    while ((await a.nodes.list()).length < 2) await new Promise((r) => setTimeout(r, 10));
    const first = await a.messages.publish(qos1("t", "1"));
    assert.deepEqual([first.queued, first.full], [1, 0]);
    const second = await a.messages.publish(qos1("t", "2"));
    assert.deepEqual([second.queued, second.full, second.fullQueues], [0, 1, ["s1"]]);
    const stream = await (await jetstreamManager(nc)).streams.info(`${prefix}-msgs`);
    assert.equal(stream.state.messages, 1, "the second message is not in the stream");
    const deadline = Date.now() + 5_000;
    while (live.length < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.deepEqual(live, ["1", "2"]);
  } finally {
    await nc.close();
    await a.close();
    await b.close();
  }
});

Deno.test("nats: interest taken without QoS 1/2 gets only QoS 0 live; with it, QoS 1/2 too, until the last such interest goes", async () => {
  const { a, b } = await twoNodes();
  try {
    const live: string[] = [];
    b.messages.listen((message) => live.push(new TextDecoder().decode(message.payload)));
    while ((await a.nodes.list()).length < 2) await new Promise((r) => setTimeout(r, 10));
    const settle = () => new Promise((resolve) => setTimeout(resolve, 200));
    const send = async (payload: string) => {
      a.messages.forward({ ...qos1("t", `${payload}0`), qos: 0 });
      await a.messages.publish(qos1("t", `${payload}1`));
      await settle();
    };
    await b.messages.addInterest("t", undefined, false);
    await send("a");
    assert.deepEqual(live.splice(0), ["a0"], "QoS 0 only");
    await b.messages.addInterest("t", undefined, true);
    await b.messages.addInterest("t", undefined, true);
    await send("b");
    assert.deepEqual(live.splice(0), ["b0", "b1"]);
    await b.messages.removeInterest("t", undefined, true);
    await send("c");
    assert.deepEqual(live.splice(0), ["c0", "c1"], "one interest with QoS 1/2 is left");
    await b.messages.removeInterest("t", undefined, true);
    await send("d");
    assert.deepEqual(live.splice(0), ["d0"]);
    await b.messages.removeInterest("t", undefined, false);
    await send("e");
    assert.deepEqual(live.splice(0), []);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("nats: a lone node sends QoS 0 and unstored QoS 1 messages nowhere, unless it has a share group", async () => {
  const prefix = `lone${++next}`;
  const alone = await startNode("a", prefix);
  const nc = await connect({ servers: (await server!).url });
  try {
    const seen: string[] = [];
    nc.subscribe(`${prefix}.msg.>`, {
      callback: (_e, msg) => {
        seen.push(msg.subject.split(".")[2]);
      },
    });
    await nc.flush();
    await alone.queues.setFilters("s1", ["t"], { maxMessages: 1, maxBytes: 1 << 20 });
    alone.messages.forward({ ...qos1("t", "0"), qos: 0 });
    await alone.messages.publish(qos1("t", "stored"));
    assert.equal((await alone.messages.publish(qos1("t", "unstored"))).full, 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(seen.splice(0), ["q"], "only the stored one");
    await alone.messages.addInterest("t", "g");
    alone.messages.forward({ ...qos1("t", "0"), qos: 0 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(seen.splice(0), ["l"], "for the share group");
  } finally {
    await nc.close();
    await alone.close();
  }
});

Deno.test("nats: room freed by another node's reader is seen by a publishing node well within a second", async () => {
  const { a, b } = await twoNodes();
  try {
    await b.queues.setFilters("s1", ["t"], { maxMessages: 2, maxBytes: 1 << 20 });
    // Node a learns of the queue through its registry watch.
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const payload of ["1", "2"]) {
      assert.equal((await a.messages.publish(qos1("t", payload))).queued, 1);
    }
    assert.equal((await a.messages.publish(qos1("t", "3"))).full, 1);
    const handed: number[] = [];
    const handle = await b.queues.open(
      { kind: "session", clientId: "s1" },
      (deliveries) => handed.push(...deliveries.map((delivery) => delivery.seq)),
    );
    handle.request(10);
    while (handed.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const seq of handed) await handle.ack(seq);
    const freedAt = Date.now();
    let outcome = await a.messages.publish(qos1("t", "4"));
    while (outcome.queued === 0 && Date.now() - freedAt < 2_000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      outcome = await a.messages.publish(qos1("t", "5"));
    }
    assert.equal(outcome.queued, 1);
    assert.ok(Date.now() - freedAt < 500, `seen after ${Date.now() - freedAt} ms`);
    await handle.close();
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("nats: a session resumed after its reader died gets that reader's QoS 2 deliveries first, with their packet ids, before any new message", async () => {
  const prefix = `resume${++next}`;
  const a = await startNode("a", prefix, 1_000);
  let b: NatsBackbone | undefined;
  try {
    const key = { kind: "session", clientId: "s1" } as const;
    await a.queues.setFilters("s1", ["t"], { maxMessages: 100, maxBytes: 1 << 20 });
    for (const payload of ["1", "2"]) await a.messages.publish({ ...qos1("t", payload), qos: 2 });
    const first: QueuedDelivery[] = [];
    const handle = await a.queues.open(key, (deliveries) => first.push(...deliveries));
    handle.request(2);
    while (first.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    await handle.recordPacketId(first[0].seq, 7);
    await handle.recordPacketId(first[1].seq, 8);
    await handle.release(first[0].seq);
    // The reader's node dies: its deliveries stay unacknowledged until the ack wait passes.
    await a.close();
    b = await startNode("b", prefix, 1_000);
    await b.messages.publish({ ...qos1("t", "3"), qos: 2 });
    const resumed: QueuedDelivery[] = [];
    const again = await b.queues.open(key, (deliveries) => resumed.push(...deliveries));
    again.request(10);
    const deadline = Date.now() + 10_000;
    while (resumed.length < 3 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const decoder = new TextDecoder();
    assert.deepEqual(
      resumed.map((d) => [decoder.decode(d.message.payload), d.packetId, d.released]),
      [["1", 7, true], ["2", 8, false], ["3", 0, false]],
      "the earlier reader's first, as they were; a new message could otherwise take their ids",
    );
    await again.close();
  } finally {
    await a.close();
    await b?.close();
  }
});

Deno.test("nats: JsPublisher resolves on the stream's ack, says duplicate for a repeated message id, and fails without a stream", async () => {
  server ??= startNatsServer();
  const nc = await connect({ servers: (await server).url });
  const publisher = new JsPublisher(nc, 2_000);
  try {
    const jsm = await jetstreamManager(nc);
    const name = `jspub${++next}`;
    await jsm.streams.add({ name, subjects: [`${name}.>`], storage: StorageType.Memory });
    const bytes = new TextEncoder().encode("x");
    const acks = await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) => publisher.publish(`${name}.a`, bytes, { msgID: `m${i}` }),
      ),
    );
    assert.deepEqual(acks.map((ack) => ack.seq), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal(acks.some((ack) => ack.duplicate), false);
    const again = await publisher.publish(`${name}.a`, bytes, { msgID: "m7" });
    assert.equal(again.duplicate, true);
    await assert.rejects(
      () => publisher.publish(`nostream${next}.a`, bytes),
      (error: Error) => error.name === "NoRespondersError",
    );
    assert.equal(publisher.inFlight, 0);
    await jsm.streams.delete(name);
  } finally {
    publisher.close();
    await nc.close();
  }
  await assert.rejects(() => publisher.publish("x", new Uint8Array(1)), /closed/);
});

Deno.test("nats: a queue drained on one node takes new messages published on another that counted it full", async () => {
  const { a: publisher, b: subscriber } = await twoNodes();
  try {
    // Registered by the publisher's node: its mirror knows the queue at once.
    await publisher.queues.setFilters("s1", ["t"], { maxMessages: 3, maxBytes: 1 << 20 });
    for (const payload of ["0", "1", "2"]) {
      assert.equal((await publisher.messages.publish(qos1("t", payload))).queued, 1);
    }
    assert.equal((await publisher.messages.publish(qos1("t", "x"))).full, 1, "3 queued: full");
    const got: QueuedDelivery[] = [];
    const arrived = Promise.withResolvers<void>();
    const handle = await subscriber.queues.open({ kind: "session", clientId: "s1" }, (batch) => {
      got.push(...batch);
      if (got.length >= 3) arrived.resolve();
    });
    handle.request(10);
    await arrived.promise;
    for (const delivery of got) await handle.ack(delivery.seq);
    const acked = Date.now() + 10_000;
    while ((await subscriber.queues.size({ kind: "session", clientId: "s1" })).messages > 0) {
      assert.ok(Date.now() < acked, "the acknowledgements never reached the server");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // The publisher's node still counts 3 (it saw none of the acks): it asks the server before
    // refusing, so the emptied queue takes the message.
    await new Promise((resolve) => setTimeout(resolve, 150)); // Older than the recheck age.
    const outcome = await publisher.messages.publish(qos1("t", "3"));
    assert.deepEqual([outcome.queued, outcome.full], [1, 0]);
    await handle.close();
  } finally {
    await publisher.close();
    await subscriber.close();
  }
});

Deno.test("nats: a message only full queues match is not stored: an absent session's consumer holds no more than its bound", async () => {
  const prefix = `fullonly${++next}`;
  const backbone = await startNode("a", prefix);
  const { monitorUrl } = await server!;
  try {
    await backbone.queues.setFilters("s1", ["t"], { maxMessages: 2, maxBytes: 1 << 20 });
    const outcomes = [];
    for (const payload of ["1", "2", "3", "4", "5"]) {
      outcomes.push(await backbone.messages.publish(qos1("t", payload)));
    }
    assert.deepEqual(outcomes.map((o) => [o.queued, o.full]), [[1, 0], [1, 0], [0, 1], [0, 1], [
      0,
      1,
    ]]);
    const jsz = await (await fetch(`${monitorUrl}/jsz?streams=true`)).json() as {
      account_details: { stream_detail?: { name: string; state: { messages: number } }[] }[];
    };
    const stream = jsz.account_details.flatMap((a) => a.stream_detail ?? [])
      .find((s) => s.name === `${prefix}-msgs`);
    assert.equal(stream?.state.messages, 2);
  } finally {
    await backbone.close();
  }
});

Deno.test("nats: a QoS 2 packet id opened by a node that died before storing its message is not open: the resent PUBLISH is stored", async () => {
  const prefix = `inbound${++next}`;
  const backbone = await startNode("b", prefix);
  const { url } = await server!;
  const nc = await connect({ servers: url });
  try {
    await backbone.queues.setFilters("sub", ["t"], { maxMessages: 10, maxBytes: 1 << 20 });
    // What the node that died left: the id opened ("storing"), the message never stored; and
    // another id whose message it stored (PUBREC sent, PUBREL not seen yet).
    const kv = await new Kvm(nc).open(`${prefix}-inbound`);
    await kv.put(`${keyToken("pub")}.7`, "storing");
    await kv.put(`${keyToken("pub")}.8`, "stored");
    assert.deepEqual(await backbone.messages.openInbound("pub"), [8]);
    const outcome = await backbone.messages.publish({
      topic: "t",
      payload: new TextEncoder().encode("resent"),
      qos: 2,
      retain: false,
      properties: undefined,
      expiresAt: 0,
      origin: "",
    }, { clientId: "pub", packetId: 7 });
    assert.deepEqual([outcome.queued, outcome.duplicate], [1, false]);
  } finally {
    await nc.close();
    await backbone.close();
  }
});

Deno.test("nats: the messages stream takes more consumers than nats-server's default limit, and listing open QoS 2 ids makes none", async () => {
  const prefix = `limits${++next}`;
  const backbone = await startNode("a", prefix);
  const { monitorUrl } = await server!;
  try {
    for (let i = 0; i < 20; i++) await backbone.messages.openInbound(`client${i}`);
    const jsz = await (await fetch(`${monitorUrl}/jsz?streams=true&config=true`)).json() as {
      account_details: {
        stream_detail?: {
          name: string;
          config: { max_consumers: number };
          state: { consumer_count: number };
        }[];
      }[];
    };
    const streams = jsz.account_details.flatMap((a) => a.stream_detail ?? []);
    const messages = streams.find((s) => s.name === `${prefix}-msgs`);
    assert.equal(messages?.config.max_consumers, MAX_QUEUES);
    assert.ok(MAX_QUEUES > 1000);
    const inbound = streams.find((s) => s.name === `KV_${prefix}-inbound`);
    assert.equal(inbound?.state.consumer_count, 0);
  } finally {
    await backbone.close();
  }
});

Deno.test("nats: a reader acknowledging one at a time within its window pulls in batches, not once per acknowledgement", async () => {
  const prefix = `pulls${++next}`;
  const node = await startNode("a", prefix);
  const nc = await connect({ servers: (await server!).url });
  try {
    let pulls = 0;
    nc.subscribe(`$JS.API.CONSUMER.MSG.NEXT.${prefix}-msgs.>`, {
      callback: () => {
        pulls++;
      },
    });
    await nc.flush();
    await node.queues.setFilters("reader", ["t"], { maxMessages: 100_000, maxBytes: 1 << 30 });
    const total = 2_000;
    await Promise.all(
      Array.from({ length: total }, (_, i) => node.messages.publish(qos1("t", String(i)))),
    );
    let delivered = 0;
    const done = Promise.withResolvers<void>();
    const handle = await node.queues.open({ kind: "session", clientId: "reader" }, (batch) => {
      for (const delivery of batch) {
        delivered++;
        // As the engine does: each acknowledgement, a turn later, gives one credit back.
        setTimeout(() => {
          handle.ack(delivery.seq);
          handle.request(1);
          if (delivered === total) done.resolve();
        }, 0);
      }
    });
    handle.request(32);
    await done.promise;
    await nc.flush();
    // Once per 32 freed places at best; it was once per 7 deliveries when a full lookahead
    // pulled whatever one acknowledgement freed.
    assert.ok(pulls <= total / 24, `${pulls} pulls for ${total} deliveries`);
    await handle.close();
  } finally {
    await nc.close();
    await node.close();
  }
});

Deno.test("nats: a bucket write that finds no stream (one being created) is sent again until it is stored", async () => {
  server ??= startNatsServer();
  const nc = await connect({ servers: (await server).url });
  try {
    const js = jetstream(nc);
    const settings = { replicas: 1, storage: "memory" as const, timeoutMs: 5_000 };
    const name = `recreated${++next}`;
    const bucket = await Bucket.open(js, name, settings);
    const jsm = await jetstreamManager(nc);
    const config = (await jsm.streams.info(`KV_${name}`)).config;
    await jsm.streams.delete(`KV_${name}`);
    // Both go over one connection, so the server takes the write first and nothing stores it (no
    // responders) every time; the stream is back for the write's next attempt.
    const written = bucket.write("key", new TextEncoder().encode("value"));
    await jsm.streams.add(config);
    assert.equal(await written, 1);
    assert.equal(new TextDecoder().decode((await bucket.kv.get("key"))?.value), "value");
  } finally {
    await nc.close();
  }
});

Deno.test("nats: the server of the suite stops", async () => {
  if (server) await (await server).close();
});

Deno.test("nats: start() names the servers when NATS cannot be reached", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const backbone = new NatsBackbone({
    servers: [`nats://127.0.0.1:${port}`],
    clock: new ManualClock(0),
    timeoutMs: 2_000,
  });
  await assert.rejects(
    backbone.start({ id: "n", version: "test", startedAt: 0 }),
    (error: unknown) => {
      assert.ok(error instanceof NatsStartError);
      assert.match(error.message, new RegExp(`cannot connect to NATS at nats://127.0.0.1:${port}`));
      return true;
    },
  );
});

Deno.test("nats: start() refuses a server without JetStream, saying how to turn it on", async () => {
  await using plain = await startNatsServer({ jetstream: false });
  const backbone = new NatsBackbone({
    servers: [plain.url],
    clock: new ManualClock(0),
    timeoutMs: 2_000,
  });
  await assert.rejects(
    backbone.start({ id: "n", version: "test", startedAt: 0 }),
    (error: unknown) => {
      assert.ok(error instanceof NatsStartError);
      assert.match(
        error.message,
        /JetStream is not enabled on the NATS server \(start nats-server with -js\)/,
      );
      return true;
    },
  );
});

Deno.test("nats: two front-ends starting at once on a fresh 3-node cluster (replicas 3) both start and see each other", async () => {
  // Both create the same streams and buckets at once; nats-server can leave one of two identical
  // creates unanswered, so the create is repeated, and it then finds what the other made.
  await using nats = await startNatsCluster(3);
  const make = () =>
    new NatsBackbone({
      servers: nats.urls,
      prefix: "together",
      clock: new ManualClock(0),
      replicas: 3,
      timeoutMs: 2_000,
    });
  const backbones = [make(), make()];
  const starts = await Promise.allSettled(
    backbones.map((backbone, i) => backbone.start({ id: `n${i}`, version: "test", startedAt: 0 })),
  );
  try {
    assert.deepEqual(starts.map((start) => start.status), ["fulfilled", "fulfilled"]);
    for (const backbone of backbones) {
      assert.deepEqual((await backbone.nodes.list()).map((node) => node.id).sort(), ["n0", "n1"]);
    }
  } finally {
    await Promise.all(backbones.map((backbone) => backbone.close()));
  }
});

Deno.test("nats: the server version check refuses servers older than 2.11", () => {
  assert.equal(MIN_SERVER_VERSION, "2.11.0");
  for (const old of ["2.10.29", "2.9.25", "1.4.1", "2.10", "0.0.0"]) {
    assert.throws(
      () => checkServerVersion(old),
      (error: unknown) => {
        assert.ok(error instanceof NatsStartError);
        assert.equal(
          error.message,
          `nats-server ${old} is too old: the NATS backbone needs 2.11.0 or newer (per-message TTL)`,
        );
        return true;
      },
    );
  }
  for (const usable of ["2.11.0", "2.11.0-RC.1", "2.11.4", "2.12.0", "2.15.1", "3.0.0", "2.11"]) {
    checkServerVersion(usable);
  }
});
