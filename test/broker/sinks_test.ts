/**
 * The publish pipeline's message sinks, over real sockets: a sink that takes copies, one that
 * takes messages over, and what the publisher hears when a sink has a message, is full or fails.
 * The sink here is a recorder whose outcomes the test settles; the Kafka bridge is the real one
 * (test/bridge/).
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import type { ProtocolVersion } from "../../src/codec/packets.ts";
import type { MessageSink, Publisher, SinkOutcome, SinkTake } from "../../src/domain/sink.ts";
import type { Message } from "../../src/domain/types.ts";
import { startBroker, type TestBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";

/** What the recorder does with a message: nothing, or take it (a copy or over) with an outcome. */
type Rule = { exclusive: boolean; outcome: () => Promise<SinkOutcome> } | undefined;

/** A sink that records what it was offered and answers by a rule per topic. */
class RecordingSink implements MessageSink {
  readonly offered: { message: Message; publisher: Publisher | undefined }[] = [];
  readonly rules = new Map<string, Rule>();
  #waiters = new Set<() => void>();

  offer(message: Message, publisher: Publisher | undefined): SinkTake | undefined {
    const rule = this.rules.get(message.topic);
    if (!rule) return undefined;
    this.offered.push({ message, publisher });
    for (const waiter of [...this.#waiters]) waiter();
    return { exclusive: rule.exclusive, outcome: message.qos > 0 ? rule.outcome() : undefined };
  }

  /** Resolves once `count` messages were taken. */
  taken(count: number): Promise<void> {
    if (this.offered.length >= count) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.offered.length < count) return;
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
  }
}

async function withSink(fn: (server: TestBroker, sink: RecordingSink) => Promise<void>) {
  const sink = new RecordingSink();
  const server = startBroker({ sinks: [sink] });
  try {
    await fn(server, sink);
  } finally {
    await server.close();
  }
}

const stored = () => Promise.resolve<SinkOutcome>("stored");

Deno.test("a sink taking copies gets every QoS with its publisher, and subscribers still get the message", async () => {
  await withSink(async (server, sink) => {
    sink.rules.set("copied", { exclusive: false, outcome: stored });
    const { client: sub } = await TestClient.connect(server.port, { clientId: "sub" });
    await sub.subscribe("copied", 1);
    const { client: pub } = await TestClient.connect(server.port, {
      clientId: "pub",
      username: "alice",
      version: 5,
    });
    for (const qos of [0, 1, 2] as const) {
      const ack = await pub.publish("copied", `m${qos}`, { qos });
      if (ack && "reasonCode" in ack) assert.equal(ack.reasonCode, ReasonCode.Success);
    }
    assert.deepEqual((await sub.publishes(3)).map((p) => text(p.payload)), ["m0", "m1", "m2"]);
    await sink.taken(3);
    assert.deepEqual(
      sink.offered.map(({ message, publisher }) => [
        text(message.payload),
        message.qos,
        publisher?.clientId,
        publisher?.username,
      ]),
      [["m0", 0, "pub", "alice"], ["m1", 1, "pub", "alice"], ["m2", 2, "pub", "alice"]],
    );
    await sub.disconnect();
    await pub.disconnect();
  });
});

Deno.test("a message a sink takes over reaches no subscriber and is not retained; the publisher gets a plain success", async () => {
  await withSink(async (server, sink) => {
    sink.rules.set("over", { exclusive: true, outcome: stored });
    const { client: sub } = await TestClient.connect(server.port, { clientId: "sub", version: 5 });
    await sub.subscribe("#", 2);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    await pub.publish("over", "q0", { qos: 0, retain: true });
    const puback = await pub.publish("over", "q1", { qos: 1, retain: true });
    assert.equal(puback?.type === PacketType.PUBACK && puback.reasonCode, ReasonCode.Success);
    const pubcomp = await pub.publish("over", "q2", { qos: 2 });
    assert.equal(pubcomp?.type, PacketType.PUBCOMP);
    await sink.taken(3);
    await sub.expectNothingPending();
    assert.equal(await server.backbone.retained.get("over"), undefined);
    // Without the sink's interest the same topic would have gone to the subscriber.
    sink.rules.delete("over");
    await pub.publish("over", "after", { qos: 1 });
    assert.equal(text((await sub.expect(PacketType.PUBLISH)).payload), "after");
    await sub.disconnect();
    await pub.disconnect();
  });
});

Deno.test("a QoS 1 publish is acknowledged only once the sink has the message", async () => {
  await withSink(async (server, sink) => {
    const held = Promise.withResolvers<SinkOutcome>();
    sink.rules.set("slow", { exclusive: true, outcome: () => held.promise });
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    await pub.send({
      type: PacketType.PUBLISH,
      dup: false,
      qos: 1,
      retain: false,
      topic: "slow",
      packetId: 7,
      properties: undefined,
      payload: new TextEncoder().encode("wait"),
    });
    await sink.taken(1);
    // The broker answers in order: a PUBACK sent already would come before the PINGRESP.
    await pub.expectNothingPending();
    held.resolve("stored");
    const puback = await pub.expect(PacketType.PUBACK);
    assert.deepEqual([puback.packetId, puback.reasonCode], [7, ReasonCode.Success]);
    await pub.disconnect();
  });
});

for (const version of [5, 4] as ProtocolVersion[]) {
  Deno.test(`a sink at its bound: ${version === 5 ? "PUBACK and PUBREC 0x97 with a reason" : "3.1.1 gets a plain PUBACK"}`, async () => {
    await withSink(async (server, sink) => {
      sink.rules.set("full", { exclusive: false, outcome: () => Promise.resolve("full") });
      const { client: sub } = await TestClient.connect(server.port, { clientId: "sub" });
      await sub.subscribe("full", 1);
      const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version });
      const puback = await pub.publish("full", "x", { qos: 1 });
      assert.equal(puback?.type, PacketType.PUBACK);
      if (puback?.type !== PacketType.PUBACK) return;
      if (version === 5) {
        assert.equal(puback.reasonCode, ReasonCode.QuotaExceeded);
        assert.equal(puback.properties?.reasonString, "A bridge's buffer is full");
        const pubrec = await pub.publish("full", "y", { qos: 2 });
        assert.equal(pubrec?.type === PacketType.PUBREC && pubrec.reasonCode, 0x97);
      } else {
        assert.equal(puback.reasonCode, ReasonCode.Success);
      }
      // A copy: the subscribers had the message anyway.
      assert.equal(text((await sub.expect(PacketType.PUBLISH)).payload), "x");
      await sub.disconnect();
      await pub.disconnect();
    });
  });
}

Deno.test("a sink that fails: MQTT 5 gets PUBACK 0x80 with a reason, 3.1.1 is disconnected, never a success", async () => {
  await withSink(async (server, sink) => {
    sink.rules.set("broken", {
      exclusive: true,
      outcome: () => Promise.reject(new Error("the buffer is gone")),
    });
    const { client: v5 } = await TestClient.connect(server.port, { clientId: "v5", version: 5 });
    const puback = await v5.publish("broken", "x", { qos: 1 });
    assert.equal(puback?.type === PacketType.PUBACK && puback.reasonCode, 0x80);
    assert.equal(
      puback?.type === PacketType.PUBACK && puback.properties?.reasonString,
      "A bridge could not keep the message; it was not stored",
    );
    const { client: v4 } = await TestClient.connect(server.port, { clientId: "v4", version: 4 });
    await v4.send({
      type: PacketType.PUBLISH,
      dup: false,
      qos: 1,
      retain: false,
      topic: "broken",
      packetId: 1,
      properties: undefined,
      payload: new TextEncoder().encode("x"),
    });
    assert.equal(await v4.next(), undefined, "closed without a PUBACK");
    assert.equal(server.broker.stats.publishNotStored, 2);
    await v5.disconnect();
  });
});

Deno.test("QoS 0 never waits for a sink: a taken-over QoS 0 message is dropped for MQTT at once", async () => {
  await withSink(async (server, sink) => {
    sink.rules.set("live", { exclusive: true, outcome: () => new Promise<SinkOutcome>(() => {}) });
    const { client: sub } = await TestClient.connect(server.port, { clientId: "sub" });
    await sub.subscribe("#", 0);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub" });
    await pub.publish("live", "q0");
    await pub.publish("elsewhere", "other");
    assert.equal(text((await sub.expect(PacketType.PUBLISH)).payload), "other");
    await sink.taken(1);
    await sub.disconnect();
    await pub.disconnect();
  });
});
