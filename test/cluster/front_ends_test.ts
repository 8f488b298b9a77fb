/**
 * Three broker front-ends (separate `src/main.ts` processes with the `nats` backbone, the second on
 * Bun, the others on Deno) on one real nats-server, with haproxy in front: clients on different
 * front-ends, and runtimes, see one broker.
 * mqtt.js (MQTT 5 and 3.1.1) and Mosquitto's clients; every wait is for a message, a CONNACK or
 * a close.
 *
 * @module
 */

import assert from "node:assert/strict";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { type FrontEnd, type LocalCluster, startLocalCluster } from "../../scripts/cluster.ts";
import { collect, connackOf, endAll, WAIT_MS } from "../helpers/mqttjs.ts";
import { TestClient, text } from "../helpers/test_client.ts";
import { encodePacket, PacketType, type PublishPacket } from "../../src/codec/mod.ts";

let started: Promise<LocalCluster> | undefined;
const cluster = () =>
  started ??= startLocalCluster({ nodes: 3, runtimes: ["deno", "bun", "deno"] });

async function client(
  port: number,
  options: IClientOptions = {},
): Promise<{ client: MqttClient; sessionPresent: boolean }> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    protocolVersion: 5,
    ...options,
  });
  const connack = await connackOf(c);
  return { client: c, sessionPresent: connack.sessionPresent };
}

async function run(command: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(`${command} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return text;
}

for (const protocolVersion of [5, 4] as const) {
  Deno.test(`cluster: QoS 0, 1 and 2 published on one front-end reach a subscriber on another (MQTT ${protocolVersion === 5 ? "5" : "3.1.1"})`, async () => {
    const { frontEnds: [a, b] } = await cluster();
    const { client: subscriber } = await client(b.port, { protocolVersion });
    const { client: publisher } = await client(a.port, { protocolVersion });
    try {
      const topic = `qos/${protocolVersion}`;
      await subscriber.subscribeAsync(`${topic}/#`, { qos: 2 });
      const arriving = collect(subscriber, 3);
      for (const qos of [0, 1, 2] as const) {
        await publisher.publishAsync(`${topic}/${qos}`, `m${qos}`, {
          qos,
          ...(protocolVersion === 5 ? { properties: { userProperties: { k: `v${qos}` } } } : {}),
        });
      }
      const got = await arriving;
      assert.deepEqual(
        got.map((m) => [m.topic, m.payload.toString(), m.packet.qos]).sort(),
        [[`${topic}/0`, "m0", 0], [`${topic}/1`, "m1", 1], [`${topic}/2`, "m2", 2]],
      );
      if (protocolVersion === 5) {
        for (const m of got) {
          assert.deepEqual({ ...m.packet.properties?.userProperties }, { k: `v${m.packet.qos}` });
        }
      }
    } finally {
      await endAll([subscriber, publisher]);
    }
  });
}

Deno.test("cluster: a subscription changed between QoS 1 and QoS 0 takes QoS 1 messages from another front-end at its current QoS", async () => {
  const { frontEnds: [a, b] } = await cluster();
  const { client: subscriber } = await client(b.port);
  const { client: publisher } = await client(a.port);
  try {
    const received: [string, number][] = [];
    subscriber.on("message", (_topic, payload, packet) => {
      received.push([payload.toString(), packet.qos]);
    });
    const expect = async (payload: string, qos: number) => {
      await publisher.publishAsync("flip/t", payload, { qos: 1 });
      const deadline = Date.now() + WAIT_MS;
      while (!received.some(([p]) => p === payload) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.deepEqual(received.filter(([p]) => p === payload), [[payload, qos]]);
    };
    // Granted QoS 1, it comes from the queue; granted QoS 0, live: the node's interest follows.
    await subscriber.subscribeAsync("flip/#", { qos: 1 });
    await expect("first", 1);
    await subscriber.subscribeAsync("flip/#", { qos: 0 });
    await expect("second", 0);
    await subscriber.subscribeAsync("flip/#", { qos: 1 });
    await expect("third", 1);
    // Nothing came twice (a live copy besides the queued one).
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(received.length, 3, JSON.stringify(received));
  } finally {
    await endAll([subscriber, publisher]);
  }
});

Deno.test("cluster: a burst of QoS 0 messages crosses to another front-end complete, in order and in fewer NATS messages; a QoS 1 publish among them is no duplicate", async () => {
  const { nats, frontEnds: [a, b] } = await cluster();
  const { client: subscriber } = await client(b.port);
  const { client: publisher } = await TestClient.connect(a.port);
  const inMessages = async () =>
    ((await (await fetch(`${nats.monitorUrl}/varz`)).json()) as { in_msgs: number }).in_msgs;
  try {
    // Granted QoS 0, the subscriber's node takes QoS 1 publishes live too, stamped by the same
    // sender as the QoS 0 runs: a run sent after them would look like a duplicate there.
    await subscriber.subscribeAsync("burst/#", { qos: 0 });
    // In one write, so one turn of the front-end's event loop: 300 to one topic (more than a
    // run holds), then topics changing every few messages, a QoS 1 publish in the middle.
    const topics = Array.from({ length: 600 }, (_, i) => i < 300 || i % 7 ? "burst/t" : "burst/u");
    const packets = topics.map((topic, i) =>
      encodePacket({
        type: PacketType.PUBLISH,
        dup: false,
        qos: 0,
        retain: false,
        topic,
        packetId: 0,
        properties: undefined,
        payload: new TextEncoder().encode(`m${i}`),
      }, 4)
    );
    packets.splice(
      450,
      0,
      encodePacket({
        type: PacketType.PUBLISH,
        dup: false,
        qos: 1,
        retain: false,
        topic: "burst/one",
        packetId: 1,
        properties: undefined,
        payload: new TextEncoder().encode("stored"),
      }, 4),
    );
    const arriving = collect(subscriber, topics.length + 1);
    const before = await inMessages();
    await publisher.sendRaw(new Uint8Array(packets.flatMap((packet) => [...packet])));
    const got = await arriving;
    for (const topic of ["burst/t", "burst/u"]) {
      assert.deepEqual(
        got.filter((m) => m.topic === topic).map((m) => m.payload.toString()),
        topics.flatMap((t, i) => t === topic ? [`m${i}`] : []),
      );
    }
    assert.deepEqual(got.filter((m) => m.topic === "burst/one").map((m) => m.payload.toString()), [
      "stored",
    ]);
    // Besides the runs: the stored publish and the cluster's own traffic (leases, pulls).
    const sent = (await inMessages()) - before;
    assert.ok(sent < topics.length / 3, `${sent} NATS messages for ${topics.length} QoS 0 ones`);
  } finally {
    await endAll([subscriber]);
    await publisher.destroy();
  }
});

Deno.test("cluster: mosquitto_pub on one front-end, mosquitto_sub on another, QoS 1 and 2", async () => {
  const { frontEnds: [a, b, c] } = await cluster();
  const sub = (port: number, ...more: string[]) =>
    run("mosquitto_sub", [
      "-p",
      String(port),
      "-i",
      "mosq-sub",
      "-c",
      "-q",
      "2",
      "-t",
      "mosq/#",
      "-v",
      ...more,
    ]);
  // A persistent subscription, made on one front-end; the session waits offline.
  await sub(c.port, "-E");
  await run("mosquitto_pub", ["-p", String(a.port), "-t", "mosq/one", "-m", "1", "-q", "1"]);
  await run("mosquitto_pub", ["-p", String(a.port), "-t", "mosq/two", "-m", "2", "-q", "2"]);
  const out = await sub(b.port, "-C", "2");
  assert.deepEqual(out.trim().split("\n"), ["mosq/one 1", "mosq/two 2"]);
});

Deno.test("cluster: a shared subscription spread over three front-ends gets each message once", async () => {
  const { frontEnds } = await cluster();
  const members = await Promise.all(frontEnds.map((f) => client(f.port)));
  const { client: publisher } = await client(frontEnds[0].port);
  try {
    for (const { client: member } of members) {
      await member.subscribeAsync("$share/workers/jobs/#", { qos: 1 });
    }
    const seen: string[] = [];
    const all = Promise.withResolvers<void>();
    for (const { client: member } of members) {
      member.on("message", (_topic, payload) => {
        seen.push(payload.toString());
        if (seen.length === 30) all.resolve();
      });
    }
    for (let i = 0; i < 30; i++) {
      await publisher.publishAsync(`jobs/${i % 3}`, String(i), { qos: i % 2 === 0 ? 1 : 0 });
    }
    const timer = setTimeout(() => all.reject(new Error(`got ${seen.length} of 30`)), WAIT_MS);
    await all.promise.finally(() => clearTimeout(timer));
    assert.deepEqual(
      [...seen].sort((x, y) => Number(x) - Number(y)),
      Array.from({ length: 30 }, (_, i) => String(i)),
    );
  } finally {
    await endAll([...members.map((m) => m.client), publisher]);
  }
});

Deno.test("cluster: a retained message set on one front-end is sent by another", async () => {
  const { frontEnds: [a, b] } = await cluster();
  const { client: publisher } = await client(a.port);
  const { client: subscriber } = await client(b.port);
  try {
    await publisher.publishAsync("retained/a", "kept", { qos: 1, retain: true });
    const arriving = collect(subscriber, 1);
    await subscriber.subscribeAsync("retained/+", { qos: 1 });
    const [got] = await arriving;
    assert.deepEqual([got.topic, got.payload.toString(), got.packet.retain], [
      "retained/a",
      "kept",
      true,
    ]);
  } finally {
    await publisher.publishAsync("retained/a", "", { qos: 1, retain: true });
    await endAll([publisher, subscriber]);
  }
});

for (const protocolVersion of [5, 4] as const) {
  Deno.test(`cluster: a client connecting on another front-end takes its session over (MQTT ${protocolVersion === 5 ? "5" : "3.1.1"})`, async () => {
    const { frontEnds: [a, b] } = await cluster();
    const clientId = `takeover-${protocolVersion}`;
    const session = {
      protocolVersion,
      clientId,
      clean: false,
      ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}),
    };
    const { client: first } = await client(a.port, session);
    const closed = new Promise<number | undefined>((resolve) => {
      first.once("disconnect", (packet) => resolve(packet.reasonCode));
      first.once("close", () => resolve(undefined));
    });
    let second: MqttClient | undefined;
    try {
      await first.subscribeAsync("takeover/#", { qos: 1 });
      const taken = await client(b.port, session);
      second = taken.client;
      assert.equal(taken.sessionPresent, true, "the session moved with its subscription");
      const reason = await closed;
      if (protocolVersion === 5) assert.equal(reason, 0x8e, "DISCONNECT Session taken over");
      const arriving = collect(second, 1);
      const { client: publisher } = await client(a.port);
      await publisher.publishAsync("takeover/x", "after", { qos: 1 });
      await endAll([publisher]);
      assert.equal((await arriving)[0].payload.toString(), "after");
    } finally {
      await endAll([first, second]);
    }
  });
}

Deno.test("cluster: a persistent session queued on one front-end resumes on another with every QoS 1/2 message, in order, those sent and not acknowledged again with DUP", async () => {
  const { frontEnds: [a, b, c] } = await cluster();
  const clientId = "resume-elsewhere";
  const session = {
    clientId,
    version: 5 as const,
    cleanStart: false,
    properties: { sessionExpiryInterval: 300 },
  };
  const first = await TestClient.connect(a.port, session);
  assert.deepEqual((await first.client.subscribe("queued/#", 2)).reasonCodes, [2]);
  await first.client.disconnect();
  const { client: publisher } = await client(c.port);
  try {
    for (let i = 0; i < 10; i++) {
      await publisher.publishAsync(`queued/${i}`, String(i), { qos: i % 2 === 0 ? 1 : 2 });
    }
  } finally {
    await endAll([publisher]);
  }
  // The session resumes on c, which sends every message: none is acknowledged before the
  // connection drops.
  const second = await TestClient.connect(c.port, session);
  assert.equal(second.connack.sessionPresent, true);
  const sent = await second.client.publishes(10);
  assert.deepEqual(sent.map((p) => [text(p.payload), p.qos, p.dup]), expected(false));
  await second.client.destroy();
  await until(async () => !(await sessionOf(b, clientId)).connected, "c releases the session");
  // On b they come again, in order, with DUP [MQTT-3.3.1-1] and (QoS 2) the same packet ids.
  const third = await TestClient.connect(b.port, session);
  try {
    assert.equal(third.connack.sessionPresent, true);
    const resent = await third.client.publishes(10);
    assert.deepEqual(resent.map((p) => [text(p.payload), p.qos, p.dup]), expected(true));
    assert.deepEqual(
      resent.filter((p) => p.qos === 2).map((p) => p.packetId),
      sent.filter((p) => p.qos === 2).map((p) => p.packetId),
    );
    for (const publish of resent) await third.client.ack(publish);
    await third.client.expectNothingPending();
  } finally {
    await third.client.disconnect();
  }
});

Deno.test("cluster: a burst of QoS 1 messages is stored as a few stream messages, reaches a session on another front-end in order, and one dropped part way gets the rest again", async () => {
  const { nats, frontEnds: [a, b, c] } = await cluster();
  const inMessages = async () =>
    ((await (await fetch(`${nats.monitorUrl}/varz`)).json()) as { in_msgs: number }).in_msgs;
  const session = {
    clientId: "qos1-burst",
    version: 5 as const,
    cleanStart: false,
    properties: { sessionExpiryInterval: 300 },
  };
  const first = await TestClient.connect(b.port, session);
  assert.deepEqual((await first.client.subscribe("qburst/#", 1)).reasonCodes, [1]);
  const { client: publisher } = await TestClient.connect(a.port, { version: 5 });
  const count = 100;
  try {
    // In one write, so one turn of the publisher's front-end: runs of one topic (more than a run
    // holds), a topic change part way.
    const topicOf = (i: number) => i < 70 ? "qburst/t" : "qburst/u";
    const packets = Array.from({ length: count }, (_, i) =>
      encodePacket({
        type: PacketType.PUBLISH,
        dup: false,
        qos: 1,
        retain: false,
        topic: topicOf(i),
        packetId: i + 1,
        properties: {},
        payload: new TextEncoder().encode(String(i)),
      }, 5));
    const before = await inMessages();
    await publisher.sendRaw(new Uint8Array(packets.flatMap((packet) => [...packet])));
    const acks = await Promise.all(
      Array.from({ length: count }, () => publisher.expect(PacketType.PUBACK)),
    );
    assert.deepEqual(
      acks.map((ack) => [ack.packetId, ack.reasonCode]).sort((x, y) => x[0] - y[0]),
      Array.from({ length: count }, (_, i) => [i + 1, 0]),
    );
    // The client acknowledges the first 66 (into the second run: a run holds at most 64) as they
    // come, and drops.
    const acked = 66;
    const got: PublishPacket[] = [];
    while (got.length < acked) {
      const [publish] = await first.client.publishes(1);
      got.push(publish);
      await first.client.ack(publish);
    }
    assert.deepEqual(
      got.map((p) => [p.topic, text(p.payload), p.qos, p.dup]),
      Array.from({ length: acked }, (_, i) => [topicOf(i), String(i), 1, false]),
    );
    // Stored alone each would cost a stream publish, its acknowledgement, a delivery and an ack:
    // here a few per run, besides the cluster's own traffic (pulls, leases).
    const sent = (await inMessages()) - before;
    assert.ok(sent < count / 3, `${sent} NATS messages for ${count} QoS 1 ones`);
    await first.client.destroy();
    await until(async () => !(await sessionOf(b, session.clientId)).connected, "b releases it");
    // On c the rest comes again, in order, with DUP; of a run only part acknowledged, the
    // acknowledged part comes again too (QoS 1 allows a duplicate, never a loss).
    const second = await TestClient.connect(c.port, session);
    try {
      assert.equal(second.connack.sessionPresent, true);
      const resent: PublishPacket[] = [];
      while (resent.length === 0 || text(resent.at(-1)!.payload) !== String(count - 1)) {
        const [publish] = await second.client.publishes(1);
        resent.push(publish);
        await second.client.ack(publish);
      }
      const payloads = resent.map((p) => Number(text(p.payload)));
      const from = payloads[0];
      assert.ok(from <= acked && from > acked - 64, `resent from ${from}`);
      assert.deepEqual(payloads, Array.from({ length: count - from }, (_, i) => from + i));
      assert.ok(resent.every((p) => p.dup && p.qos === 1));
      await second.client.expectNothingPending();
    } finally {
      await second.client.disconnect();
    }
  } finally {
    await publisher.destroy();
  }
});

/** The ten queued messages as [payload, QoS, DUP]. */
function expected(dup: boolean): [string, number, boolean][] {
  return Array.from({ length: 10 }, (_, i) => [String(i), i % 2 === 0 ? 1 : 2, dup]);
}

/** A session as a front-end's admin API shows it. */
async function sessionOf(frontEnd: FrontEnd, clientId: string): Promise<{ connected: boolean }> {
  const response = await fetch(
    `http://127.0.0.1:${frontEnd.adminPort}/api/v1/sessions/${encodeURIComponent(clientId)}`,
  );
  return await response.json();
}

/** Resolves once `check` holds, asking again every few milliseconds (bounded by a guard). */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("cluster: clients through haproxy in front of three front-ends are one broker", async () => {
  const { balancer, frontEnds } = await cluster();
  const port = balancer!.port;
  // Round robin: consecutive connections land on different front-ends.
  const subscribers = await Promise.all(frontEnds.map(() => client(port)));
  try {
    for (const { client: s } of subscribers) await s.subscribeAsync("lb/#", { qos: 1 });
    const arriving = subscribers.map(({ client: s }) => collect(s, 1));
    await run("mosquitto_pub", ["-p", String(port), "-t", "lb/hello", "-m", "hi", "-q", "1"]);
    for (const received of await Promise.all(arriving)) {
      assert.equal(received[0].payload.toString(), "hi");
    }
  } finally {
    await endAll(subscribers.map((s) => s.client));
  }
});

Deno.test("cluster: the processes stop", async () => {
  if (started) await (await started).close();
});
