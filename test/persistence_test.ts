/**
 * The SQLite backbone end to end: `src/main.ts` as a real process (with `deno task start`'s
 * permissions) on a temporary database, killed with SIGKILL and started again on the same file,
 * with clients over real sockets seeing what survived.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { PacketType } from "../src/codec/mod.ts";
import type { Packet, PublishPacket } from "../src/codec/packets.ts";
import {
  type BrokerProcess,
  portOf,
  startBrokerProcess,
  startTaskFlags,
} from "./helpers/broker_process.ts";
import { kcatConsume } from "./helpers/kafka/kcat.ts";
import { startKafkaTestServer } from "./helpers/kafka/mod.ts";
import { type ConnectOptions, TestClient, text } from "./helpers/test_client.ts";

/** Longest wait for a session to go offline (a guard, never a delay). */
const WAIT_MS = 10_000;

/** A temporary folder for the database, removed when disposed. */
async function tempFolder(): Promise<{ dir: string; db: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "perch-persistence-" });
  return {
    dir,
    db: join(dir, "data", "perch.db"),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** The settings of a broker on the SQLite file `db`, its admin API on loopback. */
function sqliteEnv(db: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PERCH_BACKBONE__KIND: "sqlite",
    PERCH_BACKBONE__PATH: db,
    PERCH_ADMIN__HOST: "127.0.0.1",
    ...extra,
  };
}

/** A started broker's MQTT port and admin API URL. */
async function addresses(broker: BrokerProcess): Promise<{ port: number; admin: string }> {
  const port = portOf(await broker.line("listener started"));
  const admin = `http://127.0.0.1:${portOf(await broker.line("admin API started"))}`;
  await broker.line("broker started");
  return { port, admin };
}

/** A v5 client whose session outlives its connection by `expiry` seconds. */
function persistent(clientId: string, expiry = 3600, cleanStart = true): ConnectOptions {
  return { clientId, version: 5, cleanStart, properties: { sessionExpiryInterval: expiry } };
}

/**
 * Resolves with the session's `disconnectedAt` once its record says it is offline (its
 * connection closed and released it), asking the admin API.
 */
async function offline(admin: string, clientId: string): Promise<number> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const response = await fetch(`${admin}/api/v1/sessions/${clientId}`);
    const session = await response.json();
    if (session.connected === false) return Date.parse(session.disconnectedAt);
    if (Date.now() > deadline) throw new Error(`${clientId} still connected: ${session}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function summary(publishes: PublishPacket[]): [string, string, number, boolean][] {
  return publishes.map((p) => [p.topic, text(p.payload), p.qos, p.dup]);
}

/** Asserts that a QoS 1/2 publish was acknowledged as a success (PUBACK, or PUBCOMP after PUBREC). */
function assertAcknowledged(ack: Packet | undefined): void {
  assert.ok(ack?.type === PacketType.PUBACK || ack?.type === PacketType.PUBCOMP, String(ack?.type));
  assert.equal(ack.reasonCode, 0);
}

/** Acknowledges QoS 1/2 deliveries already received, one flow after another. */
async function ackAll(client: TestClient, publishes: PublishPacket[]): Promise<void> {
  for (const publish of publishes) await client.ack(publish);
}

Deno.test("a SIGKILLed broker on sqlite comes back with its sessions, their acknowledged QoS 1/2 messages once each, and retained messages; an offline session that expired meanwhile is ended", async () => {
  await using folder = await tempFolder();
  const env = sqliteEnv(folder.db, { PERCH_LOG__LEVEL: "debug" });
  const flags = await startTaskFlags();
  const first = await startBrokerProcess("deno", { env, denoFlags: flags });
  let second: BrokerProcess | undefined;
  try {
    const { port, admin } = await addresses(first);
    const started = await first.line("broker started");
    assert.deepEqual([started.backbone, started.state], [
      "sqlite",
      "sessions and retained messages survive a restart",
    ]);
    for (const [clientId, expiry] of [["sub", 3600], ["short", 1]] as const) {
      const { client } = await TestClient.connect(port, persistent(clientId, expiry));
      await client.subscribe("t/#", 2);
      await client.disconnect();
    }
    await offline(admin, "sub");
    const shortGoneAt = await offline(admin, "short");

    const { client: publisher } = await TestClient.connect(port, { clientId: "pub", version: 5 });
    assertAcknowledged(await publisher.publish("t/q1", "one", { qos: 1 }));
    assertAcknowledged(await publisher.publish("t/q2", "two", { qos: 2 }));
    assertAcknowledged(await publisher.publish("t/retained", "kept", { qos: 1, retain: true }));
    assert.equal((await first.kill()).signal, "SIGKILL");
    await publisher.closed;

    // The short session's expiry passes while the broker is down.
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, shortGoneAt + 1000 - Date.now()))
    );
    second = await startBrokerProcess("deno", { env, denoFlags: flags });
    const again = await addresses(second);
    const opened = await second.line("backbone file opened");
    // sub and short offline, pub connected when killed; each queue of sub and short holds three.
    assert.deepEqual([opened.sessions, opened.retained, opened.queued], [3, 1, 6]);
    assert.equal(
      (await second.line(
        "the previous run did not close the backbone file (a crash or SIGKILL): every queued message is sent again with DUP set",
      )).level,
      "warn",
    );
    assert.equal((await second.line("session expired")).clientId, "short");

    const { client: sub, connack } = await TestClient.connect(
      again.port,
      persistent("sub", 3600, false),
    );
    assert.equal(connack.sessionPresent, true);
    const delivered = await sub.publishes(3);
    assert.deepEqual(summary(delivered), [
      ["t/q1", "one", 1, true],
      ["t/q2", "two", 2, true],
      ["t/retained", "kept", 1, true],
    ]);
    await ackAll(sub, delivered);
    // Queues deliver in order: a second copy of anything would come before this one.
    const { client: marker } = await TestClient.connect(again.port, { clientId: "marker" });
    await marker.publish("t/marker", "last", { qos: 1 });
    const [last] = await sub.publishes(1);
    assert.deepEqual(summary([last]), [["t/marker", "last", 1, false]]);
    await sub.ack(last);
    await sub.expectNothingPending();

    const { client: fresh } = await TestClient.connect(again.port, { clientId: "fresh" });
    await fresh.subscribe("t/retained", 1);
    const [kept] = await fresh.publishes(1);
    assert.deepEqual([kept.topic, text(kept.payload), kept.retain], ["t/retained", "kept", true]);

    const { client: short, connack: shortConnack } = await TestClient.connect(
      again.port,
      persistent("short", 1, false),
    );
    assert.equal(shortConnack.sessionPresent, false);
    for (const client of [sub, marker, fresh, short]) await client.disconnect();
  } finally {
    await first.kill();
    if (second) assert.equal((await second.stop()).code, 0);
  }
});

Deno.test("in-flight QoS 1/2 state survives SIGKILL: a delivered unacknowledged message comes back with DUP, a released one as PUBREL only, and a publisher's open QoS 2 packet id stays open [MQTT-4.3.3-9] [MQTT-4.4.0-1]", async () => {
  await using folder = await tempFolder();
  const env = sqliteEnv(folder.db);
  const flags = await startTaskFlags();
  const first = await startBrokerProcess("deno", { env, denoFlags: flags });
  let second: BrokerProcess | undefined;
  try {
    const { port } = await addresses(first);
    const { client: receiver } = await TestClient.connect(port, persistent("receiver"));
    await receiver.subscribe("u/#", 2);
    const { client: publisher } = await TestClient.connect(port, persistent("publisher"));

    assertAcknowledged(await publisher.publish("u/1", "unacknowledged", { qos: 1 }));
    assert.equal(
      (await publisher.publish("u/2", "released", { qos: 2 }))?.type,
      PacketType.PUBCOMP,
    );
    const [unacknowledged, released] = await receiver.publishes(2);
    assert.deepEqual(summary([unacknowledged, released]), [
      ["u/1", "unacknowledged", 1, false],
      ["u/2", "released", 2, false],
    ]);
    await receiver.send({
      type: PacketType.PUBREC,
      packetId: released.packetId,
      reasonCode: 0,
      properties: undefined,
    });
    // PUBREL is sent once the release is stored.
    assert.equal((await receiver.expect(PacketType.PUBREL)).packetId, released.packetId);
    // The publisher's QoS 2 flow stops after PUBREC: its packet id stays open.
    const open = {
      type: PacketType.PUBLISH,
      dup: false,
      qos: 2,
      retain: false,
      topic: "u/3",
      packetId: 77,
      properties: undefined,
      payload: new TextEncoder().encode("exactly once"),
    } as const;
    await publisher.send(open);
    assert.equal((await publisher.expect(PacketType.PUBREC)).packetId, 77);
    const [exactlyOnce] = await receiver.publishes(1);
    assert.equal((await first.kill()).signal, "SIGKILL");
    await Promise.all([receiver.closed, publisher.closed]);

    second = await startBrokerProcess("deno", { env, denoFlags: flags });
    const again = await addresses(second);
    const { client: receiver2, connack } = await TestClient.connect(
      again.port,
      persistent("receiver", 3600, false),
    );
    assert.equal(connack.sessionPresent, true);
    const resent = await receiver2.expect(PacketType.PUBLISH);
    assert.deepEqual(summary([resent]), [["u/1", "unacknowledged", 1, true]]);
    assert.equal((await receiver2.expect(PacketType.PUBREL)).packetId, released.packetId);
    const resentQos2 = await receiver2.expect(PacketType.PUBLISH);
    assert.deepEqual(summary([resentQos2]), [["u/3", "exactly once", 2, true]]);
    assert.equal(resentQos2.packetId, exactlyOnce.packetId, "the recorded packet id");
    await receiver2.ack(resent);
    await receiver2.send({
      type: PacketType.PUBCOMP,
      packetId: released.packetId,
      reasonCode: 0,
      properties: undefined,
    });
    await receiver2.ack(resentQos2);

    const { client: publisher2, connack: publisherConnack } = await TestClient.connect(
      again.port,
      persistent("publisher", 3600, false),
    );
    assert.equal(publisherConnack.sessionPresent, true);
    await publisher2.send({ ...open, dup: true });
    assert.equal((await publisher2.expect(PacketType.PUBREC)).packetId, 77);
    await publisher2.send({
      type: PacketType.PUBREL,
      packetId: 77,
      reasonCode: 0,
      properties: undefined,
    });
    assert.equal((await publisher2.expect(PacketType.PUBCOMP)).packetId, 77);
    // The resent PUBLISH stored nothing: the next delivery is a new message.
    await publisher2.publish("u/marker", "last", { qos: 1 });
    const [last] = await receiver2.publishes(1);
    assert.deepEqual(summary([last]), [["u/marker", "last", 1, false]]);
    await receiver2.ack(last);
    await receiver2.disconnect();
    await publisher2.disconnect();
  } finally {
    await first.kill();
    if (second) assert.equal((await second.stop()).code, 0);
  }
});

Deno.test("sync: batched is in force as configured, and a clean stop loses nothing it acknowledged", async () => {
  await using folder = await tempFolder();
  // A window longer than the test takes, as a rule: the clean stop writes what it holds.
  const env = sqliteEnv(folder.db, {
    PERCH_BACKBONE__SYNC: "batched",
    PERCH_BACKBONE__SYNC_WINDOW: "10s",
  });
  const first = await startBrokerProcess("deno", { env: env });
  let second: BrokerProcess | undefined;
  try {
    const { port, admin } = await addresses(first);
    const opened = await first.line("backbone file opened");
    assert.deepEqual([opened.sync, opened.syncWindow], ["batched", 10_000]);
    const { client: sub } = await TestClient.connect(port, persistent("sub"));
    await sub.subscribe("b/#", 1);
    await sub.disconnect();
    await offline(admin, "sub");
    const { client: publisher } = await TestClient.connect(port, { clientId: "pub" });
    await publisher.publish("b/queued", "queued", { qos: 1 });
    await publisher.publish("b/retained", "retained", { qos: 1, retain: true });
    await publisher.disconnect();
    assert.equal((await first.stop()).code, 0);

    second = await startBrokerProcess("deno", { env: env });
    const again = await addresses(second);
    const reopened = await second.line("backbone file opened");
    assert.deepEqual([reopened.sessions, reopened.retained, reopened.queued], [1, 1, 2]);
    assert.ok(
      !second.logs.some((line) => line.level === "warn" && /backbone file/.test(String(line.msg))),
    );
    const { client: sub2, connack } = await TestClient.connect(
      again.port,
      persistent("sub", 3600, false),
    );
    assert.equal(connack.sessionPresent, true);
    const delivered = await sub2.publishes(2);
    assert.deepEqual(summary(delivered), [
      ["b/queued", "queued", 1, false],
      ["b/retained", "retained", 1, false],
    ]);
    await ackAll(sub2, delivered);
    await sub2.disconnect();
  } finally {
    await first.kill();
    if (second) assert.equal((await second.stop()).code, 0);
  }
});

/** Resolves with the agent's record once the admin API shows it in `state` (a guard, not a delay). */
async function agentIn(admin: string, clientId: string, state: string): Promise<{ state: string }> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const { data } = await (await fetch(`${admin}/api/v1/agents`)).json();
    const agent = data.find((record: { clientId: string }) => record.clientId === clientId);
    if (agent?.state === state) return agent;
    if (Date.now() > deadline) throw new Error(`${clientId} not ${state}: ${JSON.stringify(data)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("agent records survive SIGKILL: an agent online at the crash is listed offline after the restart", async () => {
  await using folder = await tempFolder();
  const env = sqliteEnv(folder.db, { PERCH_AGENT__ENABLED: "true" });
  const first = await startBrokerProcess("deno", { env: env });
  let second: BrokerProcess | undefined;
  try {
    const { port, admin } = await addresses(first);
    const { client } = await TestClient.connect(port, persistent("agent-1"));
    await client.subscribe("agents/agent-1", 1);
    await agentIn(admin, "agent-1", "online");
    // Acknowledged (0x10: nobody subscribed) once everything changed before it is on disk, the
    // agent's record included.
    assert.equal(
      (await client.publish("status/agent-1", "up", { qos: 1 }))?.type,
      PacketType.PUBACK,
    );
    assert.equal((await first.kill()).signal, "SIGKILL");
    await client.closed;

    second = await startBrokerProcess("deno", { env: env });
    const again = await addresses(second);
    assert.equal((await agentIn(again.admin, "agent-1", "offline")).state, "offline");
  } finally {
    await first.kill();
    if (second) assert.equal((await second.stop()).code, 0);
  }
});

Deno.test("the Kafka bridge's outbox is in the sqlite file: a message acknowledged while Kafka is down survives SIGKILL and reaches Kafka after the restart", async () => {
  await using kafka = await startKafkaTestServer();
  await kafka.stop();
  await using folder = await tempFolder();
  const config = join(folder.dir, "perch.yaml");
  await Deno.writeTextFile(
    config,
    [
      "acl: { rules: [{ permission: allow, action: publish, topic: $queue/# }] }",
      "bridge:",
      "  kafka:",
      `    brokers: ["${kafka.bootstrap}"]`,
      "    retry: { initialDelay: 20ms, maxDelay: 200ms }",
      "    connectTimeout: 1s",
      "    mappings: [{ name: events, filter: event, kafkaTopic: event }]",
    ].join("\n"),
  );
  // The outbox is named by node.id, whose default changes with the process id.
  const env = sqliteEnv(folder.db, { PERCH_NODE__ID: "single" });
  const first = await startBrokerProcess("deno", { env, args: ["-c", config] });
  let second: BrokerProcess | undefined;
  try {
    const { port } = await addresses(first);
    const started = await first.line("kafka bridge started");
    assert.equal(started.buffer, "sqlite outbox");
    const { client } = await TestClient.connect(port, { clientId: "smq-client", version: 5 });
    assertAcknowledged(await client.publish("$queue/event", "clicked", { qos: 1 }));
    assert.equal((await first.kill()).signal, "SIGKILL");
    await client.closed;

    await kafka.start();
    second = await startBrokerProcess("deno", { env, args: ["-c", config] });
    await addresses(second);
    await kafka.waitForRecords("event", 1);
    assert.deepEqual(await kcatConsume(kafka, "event", 0, "%s\\n"), ["clicked"]);
  } finally {
    await first.kill();
    if (second) assert.equal((await second.stop()).code, 0);
  }
});

Deno.test("a broker whose backbone.path is in use by another broker, or cannot be written, does not start and names the key", async () => {
  await using folder = await tempFolder();
  const running = await startBrokerProcess("deno", { env: sqliteEnv(folder.db) });
  try {
    await running.line("broker started");
    const second = await startBrokerProcess("deno", { env: sqliteEnv(folder.db) });
    assert.equal((await second.exited()).code, 1);
    const inUse = second.logs.find((line) => String(line.msg).startsWith("cannot start:"))!;
    assert.equal(inUse.key, "backbone.path");
    assert.equal(
      inUse.msg,
      `cannot start: backbone.path: ${folder.db}: the file is in use by another process (another broker on the same backbone.path?)`,
    );
  } finally {
    assert.equal((await running.stop()).code, 0);
  }

  await Deno.writeTextFile(join(folder.dir, "file"), "");
  const underFile = await startBrokerProcess("deno", {
    env: sqliteEnv(join(folder.dir, "file", "perch.db")),
  });
  assert.equal((await underFile.exited()).code, 1);
  const notFolder = underFile.logs.find((line) => String(line.msg).startsWith("cannot start:"))!;
  assert.equal(notFolder.key, "backbone.path");
  assert.match(String(notFolder.msg), /^cannot start: backbone\.path: .*\/file\/perch\.db: /);

  const other = await Deno.makeTempDir();
  try {
    const flags = (await startTaskFlags()).map((flag) =>
      flag === "--allow-write" ? `--allow-write=${other}` : flag
    );
    const denied = await startBrokerProcess("deno", {
      env: sqliteEnv(folder.db),
      denoFlags: flags,
    });
    assert.equal((await denied.exited()).code, 1);
    const failed = denied.logs.find((line) => String(line.msg).startsWith("cannot start:"))!;
    assert.equal(failed.key, "backbone.path");
    assert.match(String(failed.msg), /^cannot start: backbone\.path: .*perch\.db: .*write access/);
  } finally {
    await Deno.remove(other);
  }
});
