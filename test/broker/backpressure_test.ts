import assert from "node:assert/strict";
import { encodePacket, PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { Backpressure, type Throttled } from "../../src/broker/backpressure.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";

class Publisher implements Throttled {
  held = false;
  holdForBackpressure() {
    this.held = true;
  }
  resumeForBackpressure() {
    this.held = false;
  }
}

Deno.test("Backpressure holds a publisher until every congested target drains", () => {
  const clock = new ManualClock();
  const stalled: object[] = [];
  const bp = new Backpressure(clock, 1000, (t) => stalled.push(t));
  const a = {}, b = {};
  const pub = new Publisher();
  bp.beginPublish();
  assert.equal(bp.holdIfCongested(pub), false);
  bp.beginPublish();
  bp.note(a);
  bp.note(b);
  assert.equal(bp.holdIfCongested(pub), true);
  assert.ok(pub.held);
  bp.release(a);
  assert.ok(pub.held);
  bp.release(b);
  assert.equal(pub.held, false);
  assert.equal(clock.pendingTimers, 0);
  assert.deepEqual(stalled, []);
});

Deno.test("Backpressure reports a target that stays congested and lets its publishers go", () => {
  const clock = new ManualClock();
  const stalled: object[] = [];
  const bp = new Backpressure(clock, 1000, (t) => stalled.push(t));
  const target = {};
  const pub = new Publisher();
  bp.beginPublish();
  bp.note(target);
  bp.holdIfCongested(pub);
  clock.advance(999);
  assert.ok(pub.held);
  clock.advance(1);
  assert.deepEqual(stalled, [target]);
  assert.equal(pub.held, false);
  assert.equal(bp.isWaitedOn(target), false);
});

Deno.test("Backpressure forgets a publisher that went away", () => {
  const clock = new ManualClock();
  const bp = new Backpressure(clock, 1000, () => {});
  const target = {};
  const pub = new Publisher();
  bp.beginPublish();
  bp.note(target);
  bp.holdIfCongested(pub);
  bp.forget(pub);
  assert.equal(bp.isWaitedOn(target), false);
  assert.equal(clock.pendingTimers, 0);
});

/** Encodes `count` QoS 1 PUBLISH packets back to back, as a fast publisher would send them. */
function burst(topic: string, count: number): Uint8Array {
  const packets = Array.from({ length: count }, (_, i) =>
    encodePacket({
      type: PacketType.PUBLISH,
      dup: false,
      qos: 1,
      retain: false,
      topic,
      packetId: i + 1,
      properties: undefined,
      payload: new TextEncoder().encode(String(i)),
    }, 4));
  const bytes = new Uint8Array(packets.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of packets) {
    bytes.set(p, offset);
    offset += p.length;
  }
  return bytes;
}

Deno.test("a connected subscriber slower than its publisher loses no acknowledged QoS 1 message", async () => {
  const server = startBroker({ config: { mqtt: { maxInflight: 2, maxQueuedMessages: 10 } } });
  try {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "slow" });
    await sub.subscribe("bp", 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "fast" });
    const total = 300;
    await pub.sendRaw(burst("bp", total));
    const received: string[] = [];
    while (received.length < total) {
      const msg = await sub.expect(PacketType.PUBLISH);
      received.push(text(msg.payload));
      await sub.ack(msg);
    }
    assert.deepEqual(received, Array.from({ length: total }, (_, i) => String(i)));
    for (let i = 0; i < total; i++) await pub.expect(PacketType.PUBACK);
    assert.equal(server.broker.stats.droppedQueueFull, 0);
    await Promise.all([sub.disconnect(), pub.disconnect()]);
  } finally {
    await server.close();
  }
});

Deno.test("a publisher let go when its subscriber's queue empties delivers behind the queued messages [MQTT-4.6.0-6]", async () => {
  // A window of 1 and a queue bound of 4: the publisher is released exactly when the queue empties.
  const server = startBroker({ config: { mqtt: { maxInflight: 1, maxQueuedMessages: 4 } } });
  try {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "slow" });
    await sub.subscribe("bp", 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "fast" });
    const total = 50;
    await pub.sendRaw(burst("bp", total));
    const received: string[] = [];
    while (received.length < total) {
      const msg = await sub.expect(PacketType.PUBLISH);
      received.push(text(msg.payload));
      await sub.ack(msg);
    }
    assert.deepEqual(received, Array.from({ length: total }, (_, i) => String(i)));
    await Promise.all([sub.disconnect(), pub.disconnect()]);
  } finally {
    await server.close();
  }
});

Deno.test("a subscriber that never acknowledges is disconnected (0x97) after slowConsumerTimeout", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({
    clock,
    config: { mqtt: { maxInflight: 1, maxQueuedMessages: 4, slowConsumerTimeout: "10s" } },
  });
  try {
    const { client: stuck } = await TestClient.connect(server.port, {
      clientId: "stuck",
      version: 5,
    });
    await stuck.subscribe("bp", 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "fast" });
    await pub.sendRaw(burst("bp", 20));
    // One message in flight, two queued (half the bound): the publisher is held after 3.
    for (let i = 0; i < 3; i++) await pub.expect(PacketType.PUBACK);
    await stuck.expect(PacketType.PUBLISH);
    assert.equal(server.broker.getSession("stuck")!.queued, 2);
    clock.advance(10_000);
    const disconnect = await stuck.expect(PacketType.DISCONNECT);
    assert.equal(disconnect.reasonCode, ReasonCode.QuotaExceeded);
    assert.equal(server.broker.stats.slowConsumerDisconnects, 1);
    // The publisher was released: the other 17 publishes get their PUBACK too.
    for (let i = 3; i < 20; i++) await pub.expect(PacketType.PUBACK);
    await pub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a publisher held back with half a packet buffered is not timed out for the incomplete packet", async () => {
  const clock = new ManualClock(Date.now());
  const server = startBroker({
    clock,
    config: {
      mqtt: {
        maxInflight: 1,
        maxQueuedMessages: 4,
        connectTimeout: "10s",
        slowConsumerTimeout: "60s",
      },
    },
  });
  try {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "slow" });
    await sub.subscribe("bp", 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "fast" });
    const whole = burst("bp", 10);
    const last = burst("bp", 11).subarray(whole.length);
    const split = 3;
    // Ten publishes and the start of an eleventh in one write: the broker holds the publisher
    // after three, with the partial packet in its decoder.
    const first = new Uint8Array(whole.length + split);
    first.set(whole);
    first.set(last.subarray(0, split), whole.length);
    await pub.sendRaw(first);
    for (let i = 0; i < 3; i++) await pub.expect(PacketType.PUBACK);
    // The broker, not the client, stopped the packet from completing: no timeout applies.
    clock.advance(11_000);
    const fast = [...server.broker.connections].find((c) => c.info.clientId === "fast");
    assert.ok(fast && !fast.closed, "the held publisher was disconnected");
    const received: string[] = [];
    while (received.length < 10) {
      const msg = await sub.expect(PacketType.PUBLISH);
      received.push(text(msg.payload));
      await sub.ack(msg);
    }
    await pub.sendRaw(last.subarray(split));
    for (let i = 3; i < 11; i++) await pub.expect(PacketType.PUBACK);
    const msg = await sub.expect(PacketType.PUBLISH);
    received.push(text(msg.payload));
    await sub.ack(msg);
    assert.deepEqual(received, Array.from({ length: 11 }, (_, i) => String(i)));
    await Promise.all([sub.disconnect(), pub.disconnect()]);
  } finally {
    await server.close();
  }
});

Deno.test("a congested shared group holds its publishers instead of dropping QoS 1 messages", async () => {
  const server = startBroker({ config: { mqtt: { maxInflight: 1, maxQueuedMessages: 8 } } });
  try {
    const members = await Promise.all(["m1", "m2"].map(async (id) => {
      const { client } = await TestClient.connect(server.port, { clientId: id });
      await client.subscribe("$share/g/bp", 1);
      return client;
    }));
    const { client: pub } = await TestClient.connect(server.port, { clientId: "fast" });
    const total = 200;
    await pub.sendRaw(burst("bp", total));
    const received: string[] = [];
    await Promise.all(members.map(async (member) => {
      while (received.length < total) {
        const msg = await member.next(2000).catch(() => undefined);
        if (msg?.type !== PacketType.PUBLISH) continue;
        received.push(text(msg.payload));
        await member.ack(msg);
      }
    }));
    assert.equal(new Set(received).size, total);
    assert.equal(server.broker.router.sharedDropped, 0);
    await Promise.all([...members, pub].map((c) => c.disconnect()));
  } finally {
    await server.close();
  }
});
