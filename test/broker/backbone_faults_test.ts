/**
 * What clients see when the backbone fails: the memory backbone wrapped in a fault injector that
 * makes chosen operations reject, hang past the engine's timeout, or answer late. Nothing that
 * could not be stored is acknowledged as a success, each failure is counted and logged once, no
 * rejection goes unhandled (the test runner would fail the test), and every other client keeps
 * being served.
 */

import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import type { ProtocolVersion } from "../../src/codec/packets.ts";
import { startBroker, type TestBroker } from "../helpers/broker.ts";
import { FaultyBackbone } from "../helpers/faulty_backbone.ts";
import { TestClient, text } from "../helpers/test_client.ts";

/** Runs `fn` against a broker on a fault-injecting backbone with a short operation timeout. */
async function withFaults(
  fn: (server: TestBroker, faults: FaultyBackbone) => Promise<void>,
): Promise<void> {
  let faults: FaultyBackbone | undefined;
  const server = startBroker({
    config: { backbone: { kind: "memory", timeout: "300ms" } },
    wrapBackbone: (memory) => {
      faults = new FaultyBackbone(memory);
      return faults.backbone;
    },
  });
  try {
    await fn(server, faults!);
  } finally {
    faults!.heal();
    faults!.releaseHung();
    await server.close();
  }
}

/** Two clients that keep talking through it all: a QoS 0 message still goes from one to the other. */
async function bystandersStillServed(server: TestBroker): Promise<void> {
  const { client: listener } = await TestClient.connect(server.port, { clientId: "listener" });
  await listener.subscribe("chat", 0);
  const { client: talker } = await TestClient.connect(server.port, { clientId: "talker" });
  await talker.publish("chat", "still here");
  assert.equal(text((await listener.expect(PacketType.PUBLISH)).payload), "still here");
  await talker.disconnect();
  await listener.disconnect();
}

function failureLogs(server: TestBroker, operation: string): number {
  return server.logs.filter((l) =>
    l.line.includes("backbone operation failed") && l.line.includes(operation)
  ).length;
}

Deno.test("a QoS 1 PUBLISH the store refuses gets PUBACK 0x80 with a reason (MQTT 5), never a success", async () => {
  await withFaults(async (server, faults) => {
    const { client: sub } = await TestClient.connect(server.port, {
      clientId: "sub",
      version: 5,
    });
    await sub.subscribe("q", 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    faults.fail("messages.publish");
    const first = await pub.publish("q", "lost?", { qos: 1 });
    assert.equal(first?.type, PacketType.PUBACK);
    assert.equal((first as { reasonCode: number }).reasonCode, ReasonCode.UnspecifiedError);
    assert.match(
      String((first as { properties?: { reasonString?: string } }).properties?.reasonString),
      /not stored/,
    );
    const second = await pub.publish("q", "lost too", { qos: 1 });
    assert.equal((second as { reasonCode: number }).reasonCode, ReasonCode.UnspecifiedError);
    assert.equal(server.broker.stats.publishNotStored, 2);
    assert.equal(server.broker.stats.backboneFailures.get("messages.publish"), 2);
    assert.equal(failureLogs(server, "messages.publish"), 1, "logged once, counted twice");
    await sub.expectNothingPending();
    faults.heal();
    const ok = await pub.publish("q", "stored", { qos: 1 });
    assert.equal((ok as { reasonCode: number }).reasonCode, ReasonCode.Success);
    const delivered = await sub.expect(PacketType.PUBLISH);
    assert.equal(text(delivered.payload), "stored");
    await sub.ack(delivered);
    await bystandersStillServed(server);
    await pub.disconnect();
    await sub.disconnect();
  });
});

Deno.test("a QoS 2 PUBLISH the store refuses gets PUBREC 0x80 and the flow ends (MQTT 5)", async () => {
  await withFaults(async (server, faults) => {
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    faults.fail("messages.publish");
    const pubrec = await pub.publish("q2", "x", { qos: 2 });
    assert.equal(pubrec?.type, PacketType.PUBREC);
    assert.equal((pubrec as { reasonCode: number }).reasonCode, ReasonCode.UnspecifiedError);
    faults.heal();
    // The packet id was not kept open: the same id carries a new message at once.
    const done = await pub.publish("q2", "y", { qos: 2, packetId: pubrec!.packetId });
    assert.equal(done?.type, PacketType.PUBCOMP);
    await pub.disconnect();
  });
});

Deno.test("QoS 2 deliveries whose packet id cannot be recorded are retried once the store is back, for more messages than the window", async () => {
  await withFaults(async (server, faults) => {
    const { client: sub } = await TestClient.connect(server.port, {
      clientId: "sub",
      version: 5,
      properties: { receiveMaximum: 2 },
    });
    await sub.subscribe("w/#", 2);
    faults.fail("queues.recordPacketId");
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    const count = 6;
    for (let i = 0; i < count; i++) await pub.publish("w/t", `m${i}`, { qos: 2 });
    // Every first send failed while the store was down: each used a place of the window of 2.
    const recorded = () => faults.calls.get("queues.recordPacketId") ?? 0;
    const deadline = Date.now() + 5_000;
    while (recorded() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(recorded(), 2, "both places of the window tried a first send");
    faults.heal();
    const got: string[] = [];
    let completed = 0;
    while (completed < count) {
      const packet = await sub.next();
      assert.ok(packet, `${got.length} of ${count} messages came`);
      if (packet.type === PacketType.PUBLISH) {
        if (!got.includes(text(packet.payload))) got.push(text(packet.payload));
        await sub.send({
          type: PacketType.PUBREC,
          packetId: packet.packetId,
          reasonCode: 0,
          properties: undefined,
        });
      } else if (packet.type === PacketType.PUBREL) {
        completed++;
        await sub.send({
          type: PacketType.PUBCOMP,
          packetId: packet.packetId,
          reasonCode: 0,
          properties: undefined,
        });
      }
    }
    assert.deepEqual(got, Array.from({ length: count }, (_, i) => `m${i}`));
    await pub.disconnect();
    await sub.disconnect();
  });
});

Deno.test("QoS 2 deliveries whose packet ids the store records late are recorded side by side and sent in order", async () => {
  await withFaults(async (server, faults) => {
    const session = { clientId: "sub", version: 5 as const, cleanStart: false };
    const expiry = { sessionExpiryInterval: 60 };
    const { client: first } = await TestClient.connect(server.port, {
      ...session,
      properties: expiry,
    });
    await first.subscribe("w/#", 2);
    await first.disconnect();
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    const count = 6;
    for (let i = 0; i < count; i++) await pub.publish("w/t", `m${i}`, { qos: 2 });
    // Each record answers 100 ms late (the backbone's timeout here is 300 ms). One at a time,
    // as before, the six took 600 ms and the pump stood still meanwhile.
    faults.fail("queues.recordPacketId", { kind: "delay", ms: 100 });
    const { client: sub } = await TestClient.connect(server.port, {
      ...session,
      properties: expiry,
    });
    const deliveries = [await sub.expect(PacketType.PUBLISH)];
    assert.equal(
      faults.calls.get("queues.recordPacketId"),
      count,
      "every packet id of the window was being recorded before the first delivery went out",
    );
    deliveries.push(...await sub.publishes(count - 1));
    assert.deepEqual(
      deliveries.map((p) => text(p.payload)),
      Array.from({ length: count }, (_, i) => `m${i}`),
      "in order",
    );
    for (const delivery of deliveries) await sub.ack(delivery);
    await sub.expectNothingPending();
    await pub.disconnect();
    await sub.disconnect();
  });
});

Deno.test("a 3.1.1 client whose QoS 1 PUBLISH could not be stored is disconnected, not acknowledged", async () => {
  await withFaults(async (server, faults) => {
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub311" });
    faults.fail("messages.publish");
    await pub.send({
      type: PacketType.PUBLISH,
      dup: false,
      qos: 1,
      retain: false,
      topic: "q",
      packetId: 1,
      properties: undefined,
      payload: new TextEncoder().encode("x"),
    });
    assert.equal(await pub.next(), undefined, "closed without a PUBACK");
    await pub.closed;
    faults.heal();
    await bystandersStillServed(server);
  });
});

Deno.test("a store that does not answer in time fails the PUBLISH after backbone.timeout, with a reason", async () => {
  await withFaults(async (server, faults) => {
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    faults.fail("messages.publish", { kind: "hang" });
    const ack = await pub.publish("q", "x", { qos: 1 });
    assert.equal((ack as { reasonCode: number }).reasonCode, ReasonCode.UnspecifiedError);
    assert.match(
      String((ack as { properties?: { reasonString?: string } }).properties?.reasonString),
      /did not answer in time/,
    );
    assert.ok(server.logs.some((l) => /did not answer within 300 ms/.test(l.line)));
    await bystandersStillServed(server);
    await pub.disconnect();
  });
});

for (const version of [4, 5] as ProtocolVersion[]) {
  Deno.test(`${version === 5 ? "v5" : "v3.1.1"}: a CONNECT whose session cannot be claimed gets CONNACK ${version === 5 ? "0x88" : "0x03"}`, async () => {
    await withFaults(async (server, faults) => {
      faults.fail("sessions.claim");
      const { client, connack } = await TestClient.connect(server.port, {
        clientId: "nowhere",
        version,
      });
      assert.equal(connack.reasonCode, version === 5 ? ReasonCode.ServerUnavailable : 0x03);
      await client.closed;
      faults.fail("sessions.claim", { kind: "hang" });
      const late = await TestClient.connect(server.port, { clientId: "late", version });
      assert.equal(late.connack.reasonCode, version === 5 ? ReasonCode.ServerUnavailable : 0x03);
      faults.heal();
      await bystandersStillServed(server);
    });
  });
}

Deno.test("a SUBSCRIBE whose change cannot be stored gets 0x80 for each filter and subscribes nothing", async () => {
  await withFaults(async (server, faults) => {
    const { client } = await TestClient.connect(server.port, { clientId: "sub", version: 5 });
    faults.fail("sessions.put");
    const suback = await client.subscribe([{ filter: "a", qos: 1 }, { filter: "b", qos: 0 }]);
    assert.deepEqual(suback.reasonCodes, [0x80, 0x80]);
    faults.heal();
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    const ack = await pub.publish("a", "nobody", { qos: 1 });
    assert.equal((ack as { reasonCode: number }).reasonCode, ReasonCode.NoMatchingSubscribers);
    await pub.publish("b", "nobody");
    await client.expectNothingPending();
    const again = await client.subscribe("a", 1);
    assert.deepEqual(again.reasonCodes, [1]);
    await pub.publish("a", "now", { qos: 1 });
    assert.equal(text((await client.expect(PacketType.PUBLISH)).payload), "now");
    await pub.disconnect();
    await client.disconnect();
  });
});

Deno.test("a slow store delays acknowledgements but keeps them in order", async () => {
  await withFaults(async (server, faults) => {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "sub", version: 5 });
    await sub.subscribe("slow", 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    faults.fail("messages.publish", { kind: "delay", ms: 20 });
    for (let id = 1; id <= 5; id++) {
      await pub.send({
        type: PacketType.PUBLISH,
        dup: false,
        qos: 1,
        retain: false,
        topic: "slow",
        packetId: id,
        properties: undefined,
        payload: new TextEncoder().encode(`${id}`),
      });
    }
    const acks: number[] = [];
    for (let i = 0; i < 5; i++) acks.push((await pub.expect(PacketType.PUBACK)).packetId);
    assert.deepEqual(acks, [1, 2, 3, 4, 5]);
    const received = await sub.publishes(5);
    assert.deepEqual(received.map((p) => text(p.payload)), ["1", "2", "3", "4", "5"]);
    await pub.disconnect();
    await sub.disconnect();
  });
});

Deno.test("a flood of PUBRELs behind a message still being stored is answered in order", async () => {
  await withFaults(async (server, faults) => {
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    faults.fail("messages.publish", { kind: "delay", ms: 100 });
    await pub.send({
      type: PacketType.PUBLISH,
      dup: false,
      qos: 1,
      retain: false,
      topic: "slow",
      packetId: 1,
      properties: undefined,
      payload: new TextEncoder().encode("x"),
    });
    // More PUBRELs (for ids never opened) than the broker lets wait: it holds the input instead.
    const flood = 5000;
    const pubrel = new Uint8Array([0x62, 0x02, 0x00, 0x00]);
    const bytes = new Uint8Array(pubrel.length * flood);
    for (let i = 0; i < flood; i++) {
      pubrel[3] = 2 + (i % 200);
      bytes.set(pubrel, i * pubrel.length);
    }
    await pub.sendRaw(bytes);
    assert.equal((await pub.expect(PacketType.PUBACK)).packetId, 1, "the PUBACK first");
    for (let i = 0; i < flood; i++) {
      const pubcomp = await pub.expect(PacketType.PUBCOMP);
      assert.equal(pubcomp.reasonCode, ReasonCode.PacketIdentifierNotFound);
      assert.equal(pubcomp.packetId, 2 + (i % 200));
    }
    faults.heal();
    await pub.disconnect();
  });
});
