import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import type {
  Backbone,
  Message,
  QueuedDelivery,
  QueueKey,
  SessionRecord,
} from "../../src/backbone/backbone.ts";
import { openNodeSqlite } from "../../src/backbone/node_sqlite.ts";
import { SqliteBackbone, SqliteOpenError, type SqliteSync } from "../../src/backbone/sqlite.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { runBackboneSuite } from "./backbone_suite.ts";

runBackboneSuite("sqlite", async (clock) => {
  const dir = await Deno.makeTempDir({ prefix: "perch-sqlite-suite-" });
  const backbone = await SqliteBackbone.open({
    path: `${dir}/perch.db`,
    open: openNodeSqlite,
    clock,
  });
  // The suite closes the backbone; the file goes with it.
  return Object.assign(backbone, {
    close: async () => {
      await SqliteBackbone.prototype.close.call(backbone);
      await Deno.remove(dir, { recursive: true });
    },
  });
});

const START = 1_700_000_000_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const limits = { maxMessages: 100, maxBytes: 1 << 20 };
const sessionQueue = (clientId: string): QueueKey => ({ kind: "session", clientId });

function message(topic: string, payload: string, overrides: Partial<Message> = {}): Message {
  return {
    topic,
    payload: encoder.encode(payload),
    qos: 1,
    retain: false,
    properties: undefined,
    expiresAt: 0,
    origin: "pub",
    ...overrides,
  };
}

function record(clientId: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    clientId,
    protocolVersion: 5,
    expiryInterval: 3600,
    subscriptions: [{
      filter: "t/#",
      qos: 2,
      noLocal: false,
      retainAsPublished: true,
      retainHandling: 1,
      subscriptionId: 3,
    }],
    will: undefined,
    owner: undefined,
    disconnectedAt: START - 1_000,
    ...overrides,
  };
}

/** A folder with a database path in it, removed when disposed. */
async function tempDatabase(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "perch-sqlite-test-" });
  return {
    path: join(dir, "perch.db"),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

function open(path: string, sync?: SqliteSync, clock = new ManualClock(START)) {
  return SqliteBackbone.open({ path, open: openNodeSqlite, clock, sync });
}

/**
 * What a crash would leave on disk now: a copy of the database and its write-ahead log, taken
 * while the backbone still has them open (it never wrote its clean-close mark).
 */
async function crashImage(path: string): Promise<string> {
  const copy = join(await Deno.makeTempDir({ dir: dirname(path) }), "crashed.db");
  await Deno.copyFile(path, copy);
  await Deno.copyFile(`${path}-wal`, `${copy}-wal`).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  return copy;
}

/** Opens a queue, grants `credit` and waits for that many deliveries. */
async function take(
  backbone: Backbone,
  key: QueueKey,
  credit: number,
): Promise<
  { deliveries: QueuedDelivery[]; handle: Awaited<ReturnType<Backbone["queues"]["open"]>> }
> {
  const deliveries: QueuedDelivery[] = [];
  const { promise, resolve } = Promise.withResolvers<void>();
  const handle = await backbone.queues.open(key, (batch) => {
    deliveries.push(...batch);
    if (deliveries.length >= credit) resolve();
  });
  handle.request(credit);
  await promise;
  return { deliveries, handle };
}

function payloads(deliveries: QueuedDelivery[]): string[] {
  return deliveries.map((d) => decoder.decode(d.message.payload));
}

Deno.test("SqliteBackbone is durable, and says so", async () => {
  await using db = await tempDatabase();
  const backbone = await open(db.path);
  assert.equal(backbone.kind, "sqlite");
  assert.equal(backbone.durable, true);
  assert.deepEqual(backbone.loaded, { sessions: 0, retained: 0, queued: 0, cleanShutdown: true });
  await backbone.close();
});

Deno.test("SqliteBackbone reads sessions back with their revisions; compare-and-set goes on from them", async () => {
  await using db = await tempDatabase();
  const first = await open(db.path);
  const r1 = (await first.sessions.put(record("kept"), 0))!;
  const withWill = record("kept", {
    will: {
      message: message("wills/kept", "bye", {
        qos: 2,
        retain: true,
        properties: { correlationData: new Uint8Array([0, 255]), userProperties: [["k", "v"]] },
      }),
      delayInterval: 10,
      messageExpiryInterval: 60,
    },
  });
  const r2 = (await first.sessions.put(withWill, r1))!;
  await first.sessions.put(record("gone"), 0);
  await first.sessions.delete("gone");
  await first.close();

  const second = await open(db.path);
  assert.equal(second.loaded.sessions, 1);
  const stored = await second.sessions.get("kept");
  assert.equal(stored?.revision, r2);
  assert.deepEqual(stored?.record, { ...withWill, owner: undefined });
  assert.equal(await second.sessions.get("gone"), undefined);
  assert.equal(await second.sessions.put(record("kept"), r1), undefined, "a stale revision loses");
  const r3 = await second.sessions.put(record("kept"), r2);
  assert.ok(r3 !== undefined && r3 > r2);
  const fresh = await second.sessions.put(record("new"), 0);
  assert.ok(fresh !== undefined && fresh > r3, "revisions never go back after a restart");
  await second.close();
});

Deno.test("SqliteBackbone reads retained messages back; one that expired leaves the file when read", async () => {
  await using db = await tempDatabase();
  const clock = new ManualClock(START);
  const first = await open(db.path, undefined, clock);
  const kept = message("r/kept", "value", {
    qos: 2,
    retain: true,
    properties: { contentType: "text/plain", correlationData: new Uint8Array([1, 2]) },
    expiresAt: START + 60_000,
  });
  await first.retained.set(kept);
  await first.retained.set(message("r/soon", "x", { retain: true, expiresAt: START + 1_000 }));
  await first.retained.set(message("r/deleted", "x", { retain: true }));
  await first.retained.delete("r/deleted");
  await first.close();

  clock.advance(2_000);
  const second = await open(db.path, undefined, clock);
  assert.equal(second.loaded.retained, 2);
  assert.deepEqual(await second.retained.get("r/kept"), kept);
  assert.deepEqual((await second.retained.match("r/#")).map((m) => m.topic), ["r/kept"]);
  await second.close();
  const third = await open(db.path, undefined, clock);
  assert.equal(third.loaded.retained, 1, "the expired message was removed from the file");
  await third.close();
});

Deno.test("SqliteBackbone reads queues back in order; after a clean close only handed-out messages are redelivered [MQTT-4.4.0-1]", async () => {
  await using db = await tempDatabase();
  const first = await open(db.path);
  await first.queues.setFilters("sub", ["t/#"], limits);
  await first.messages.publish(message("t/1", "one", { qos: 2 }));
  await first.messages.publish(message("t/2", "two", { qos: 2 }));
  await first.messages.publish(message("t/3", "three"));
  await first.messages.publish(
    message("t/4", "", { properties: { userProperties: [["a", "b"]] } }),
  );
  const { deliveries, handle } = await take(first, sessionQueue("sub"), 3);
  await handle.recordPacketId(deliveries[0].seq, 7);
  await handle.release(deliveries[0].seq);
  await handle.recordPacketId(deliveries[1].seq, 8);
  await handle.ack(deliveries[2].seq);
  await handle.close();
  await first.close();

  const second = await open(db.path);
  assert.deepEqual(second.loaded, { sessions: 0, retained: 0, queued: 3, cleanShutdown: true });
  const again = await take(second, sessionQueue("sub"), 3);
  assert.deepEqual(payloads(again.deliveries), ["one", "two", ""]);
  assert.deepEqual(
    again.deliveries.map((d) => [d.packetId, d.released, d.redelivered]),
    [[7, true, true], [8, false, true], [0, false, false]],
  );
  assert.deepEqual(again.deliveries[2].message.properties, { userProperties: [["a", "b"]] });
  // New messages go behind the ones read back: the queue still captures.
  await again.handle.ack(again.deliveries[0].seq);
  await again.handle.close();
  await second.messages.publish(message("t/5", "five"));
  const rest = await take(second, sessionQueue("sub"), 3);
  assert.deepEqual(payloads(rest.deliveries), ["two", "", "five"]);
  await rest.handle.close();
  await second.close();
});

Deno.test("SqliteBackbone closed while a queue is still open: what it handed out comes back redelivered [MQTT-3.3.1-1]", async () => {
  await using db = await tempDatabase();
  const first = await open(db.path);
  await first.queues.setFilters("sub", ["t/#"], limits);
  await first.messages.publish(message("t/1", "one"));
  await first.messages.publish(message("t/2", "two"));
  await take(first, sessionQueue("sub"), 1);
  await first.close();

  const second = await open(db.path);
  assert.equal(second.loaded.cleanShutdown, true);
  const again = await take(second, sessionQueue("sub"), 2);
  assert.deepEqual(
    again.deliveries.map((d) => [new TextDecoder().decode(d.message.payload), d.redelivered]),
    [["one", true], ["two", false]],
  );
  await again.handle.close();
  await second.close();
});

Deno.test("SqliteBackbone after a crash: what full sync acknowledged is there, and every queued message comes back redelivered", async () => {
  await using db = await tempDatabase();
  const running = await open(db.path);
  await running.queues.setFilters("sub", ["t"], limits);
  await running.queues.joinGroup("g", "jobs/#", "m1", limits);
  await running.queues.joinGroup("g", "jobs/#", "m2", limits);
  await running.messages.publish(message("t", "sent"));
  await running.messages.publish(message("t", "never sent"));
  await running.messages.publish(message("jobs/1", "job", { qos: 2 }), {
    clientId: "pub",
    packetId: 10,
  });
  await running.config.put("users/alice", encoder.encode("v1"));
  const { handle } = await take(running, sessionQueue("sub"), 1);
  const image = await crashImage(db.path);
  await handle.close();
  await running.close();

  const restarted = await open(image);
  assert.deepEqual(restarted.loaded, { sessions: 0, retained: 0, queued: 3, cleanShutdown: false });
  const { deliveries, handle: again } = await take(restarted, sessionQueue("sub"), 2);
  assert.deepEqual(payloads(deliveries), ["sent", "never sent"]);
  assert.deepEqual(deliveries.map((d) => d.redelivered), [true, true]);
  await again.close();
  assert.deepEqual(await restarted.messages.openInbound("pub"), [10]);
  const duplicate = await restarted.messages.publish(message("jobs/1", "job", { qos: 2 }), {
    clientId: "pub",
    packetId: 10,
  });
  assert.equal(duplicate.duplicate, true);
  const group: QueueKey = { kind: "group", group: "g", filter: "jobs/#" };
  assert.equal((await restarted.queues.size(group)).messages, 1);
  await restarted.queues.leaveGroup("g", "jobs/#", "m1");
  assert.equal((await restarted.queues.size(group)).messages, 1, "m2 is still a member");
  await restarted.queues.leaveGroup("g", "jobs/#", "m2");
  assert.equal((await restarted.queues.size(group)).messages, 0);
  assert.equal(decoder.decode(await restarted.config.get("users/alice")), "v1");
  await restarted.close();
});

Deno.test("SqliteBackbone batched sync: operations resolve before their commit; a clean close writes everything", async () => {
  await using db = await tempDatabase();
  const running = await open(db.path, { policy: "batched", windowMs: 60_000 });
  await running.queues.setFilters("sub", ["t"], limits);
  await running.messages.publish(message("t", "in the window"));
  await running.retained.set(message("r", "retained", { retain: true }));
  const image = await crashImage(db.path);
  await running.close();

  const crashed = await open(image);
  assert.deepEqual(crashed.loaded, { sessions: 0, retained: 0, queued: 0, cleanShutdown: false });
  await crashed.close();
  const closed = await open(db.path);
  assert.deepEqual(closed.loaded, { sessions: 0, retained: 1, queued: 1, cleanShutdown: true });
  await closed.close();
});

Deno.test("SqliteBackbone outboxes are durable: what full sync appended survives a crash, in order, and seqs go on", async () => {
  await using db = await tempDatabase();
  const limits = { maxMessages: 10, maxBytes: 1000 };
  const running = await open(db.path);
  const outbox = await running.outbox.open("kafka", limits);
  assert.equal(outbox.durable, true);
  const seqs: number[] = [];
  for (const text of ["1", "2", "3", "4"]) {
    const appended = await outbox.append(encoder.encode(text));
    assert.equal(appended.status, "stored");
    if (appended.status === "stored") seqs.push(appended.seq);
  }
  await outbox.read(2);
  await outbox.remove(seqs[1]);
  const image = await crashImage(db.path);
  await outbox.remove(seqs[3]);
  await running.close();

  const crashed = await open(image);
  const kept = await crashed.outbox.open("kafka", limits);
  const entries = await kept.read(10);
  assert.deepEqual(entries.map((e) => decoder.decode(e.payload)), ["3", "4"]);
  assert.deepEqual(entries.map((e) => e.seq), seqs.slice(2));
  assert.deepEqual(await kept.size(), { messages: 2, bytes: 2 });
  await crashed.close();

  const closed = await open(db.path);
  const emptied = await closed.outbox.open("kafka", limits);
  assert.deepEqual(await emptied.read(10), []);
  const next = await emptied.append(encoder.encode("5"));
  assert.deepEqual(next, { status: "stored", seq: seqs[3] + 1 }, "a seq is never given twice");
  await closed.close();
});

Deno.test("SqliteBackbone drops a session's queue and open QoS 2 ids from the file", async () => {
  await using db = await tempDatabase();
  const first = await open(db.path);
  await first.queues.setFilters("s1", ["t"], limits);
  await first.messages.publish(message("t", "x"), { clientId: "s1", packetId: 5 });
  await first.queues.drop("s1");
  // Re-created under the same name in the same commit: only the new state is kept.
  await first.queues.setFilters("s1", ["u"], limits);
  await first.messages.publish(message("u", "y"));
  await first.close();
  const second = await open(db.path);
  assert.deepEqual(await second.messages.openInbound("s1"), []);
  const { deliveries, handle } = await take(second, sessionQueue("s1"), 1);
  assert.deepEqual(payloads(deliveries), ["y"]);
  assert.equal((await second.messages.publish(message("t", "z"))).queued, 0);
  await handle.close();
  await second.close();
});

Deno.test("SqliteBackbone.open() creates the file's folder", async () => {
  await using db = await tempDatabase();
  const nested = join(dirname(db.path), "a", "b", "perch.db");
  const backbone = await open(nested);
  await backbone.close();
  assert.ok((await Deno.stat(nested)).isFile);
});

Deno.test("SqliteBackbone.open() fails naming the file when another backbone has it open", async () => {
  await using db = await tempDatabase();
  const first = await open(db.path);
  await assert.rejects(open(db.path), (error: unknown) => {
    assert.ok(error instanceof SqliteOpenError);
    assert.equal(error.path, db.path);
    assert.equal(
      error.message,
      `${db.path}: the file is in use by another process (another broker on the same backbone.path?)`,
    );
    return true;
  });
  await first.close();
  const again = await open(db.path);
  await again.close();
});

Deno.test("SqliteBackbone.open() fails naming the file when it is not a database or another schema", async () => {
  await using db = await tempDatabase();
  await Deno.writeTextFile(db.path, "not a database ".repeat(100));
  await assert.rejects(
    open(db.path),
    new RegExp(`^SqliteOpenError: ${db.path}: file is not a database`),
  );
  await Deno.remove(db.path);
  const backbone = await open(db.path);
  await backbone.close();
  const { DatabaseSync } = await import("node:sqlite");
  const raw = new DatabaseSync(db.path);
  raw.exec("UPDATE meta SET value = 99 WHERE key = 'schema'");
  raw.close();
  await assert.rejects(
    open(db.path),
    new RegExp(`: the file has schema version 99, this version of Perch reads 1$`),
  );
});

Deno.test("SqliteBackbone keeps configuration documents with their revisions: compare-and-set goes on after a restart", async () => {
  await using db = await tempDatabase();
  const first = await open(db.path);
  const r1 = (await first.config.compareAndSet("acl/rules", encoder.encode("v1"), 0))!;
  const r2 = (await first.config.compareAndSet("acl/rules", encoder.encode("v2"), r1))!;
  await first.config.put("users/alice", encoder.encode("a"));
  await first.config.delete("users/alice");
  await first.close();

  const second = await open(db.path);
  const entry = await second.config.entry("acl/rules");
  assert.equal(entry?.revision, r2);
  assert.equal(decoder.decode(entry?.value), "v2");
  assert.equal(await second.config.get("users/alice"), undefined);
  assert.equal(await second.config.compareAndSet("acl/rules", encoder.encode("x"), r1), undefined);
  const r3 = await second.config.compareAndSet("acl/rules", encoder.encode("v3"), r2);
  assert.ok(r3 !== undefined && r3 > r2);
  await second.close();
});
