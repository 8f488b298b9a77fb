/**
 * A subscriber slower than its publishers: under `mqtt.queueFullPolicy: wait` its queue holds
 * them back by not reading them (TCP keeps their next messages in their sockets) once an eighth of
 * its bound waits beyond the subscriber's window, until it drained, and while a publish waits for
 * room, so few messages are alive in the broker. Nothing may be lost, and a client whose acknowledgements are what drains the queue
 * (one that subscribes to what it publishes) is never held. Checked by counts over real sockets.
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodePacket, PacketType } from "../../src/codec/mod.ts";
import type { PublishPacket } from "../../src/codec/packets.ts";
import { startBroker } from "../helpers/broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";

const encoder = new TextEncoder();

/** `count` QoS 1 PUBLISH packets to `topic` numbered from 0, as the bytes of one write. */
function publishes(client: TestClient, topic: string, count: number): Uint8Array {
  const frames = Array.from({ length: count }, (_, i) =>
    encodePacket({
      type: PacketType.PUBLISH,
      dup: false,
      qos: 1,
      retain: false,
      topic,
      packetId: i + 1,
      properties: undefined,
      payload: encoder.encode(String(i)),
    }, client.version));
  const bytes = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let offset = 0;
  for (const frame of frames) {
    bytes.set(frame, offset);
    offset += frame.length;
  }
  return bytes;
}

Deno.test("a publisher is not read while the queue it fills holds an eighth of its bound beyond the window, and is read again as it drains; nothing is lost", async () => {
  const server = startBroker({ config: { mqtt: { maxQueuedMessages: 20, maxInflight: 2 } } });
  try {
    const { client: sub } = await TestClient.connect(server.port, { clientId: "slow" });
    await sub.subscribe("w", 1);
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub" });
    const total = 60;
    // All 60 in one write: without the hold the broker would take them all in one turn.
    await pub.sendRaw(publishes(pub, "w", total));
    const acks: number[] = [];
    const acking = (async () => {
      while (acks.length < total) {
        const packet = await pub.next(10_000);
        if (packet === undefined) return;
        if (packet.type === PacketType.PUBACK) acks.push(packet.packetId);
      }
    })();
    // The subscriber acknowledges nothing yet: the queue holds its window (2) and an eighth of
    // its bound waiting beyond it (3 of 20), and the publisher is held; the other 55 are neither
    // stored nor answered.
    const heldAt = 2 + Math.ceil(20 / 8);
    await server.until(() => acks.length === heldAt);
    const stats = server.broker.stats;
    assert.equal(stats.publishersHeld, 1);
    assert.equal(stats.publishReceived, heldAt, "nothing more read from the publisher");
    assert.equal(
      (await server.backbone.queues.size({ kind: "session", clientId: "slow" })).messages,
      heldAt,
    );
    // Now the subscriber acknowledges everything: the publisher is read again each time the
    // queue drained, and every message arrives, once, in order.
    const received: string[] = [];
    while (received.length < total) {
      const packet = await sub.next(10_000);
      assert.ok(packet !== undefined, `only ${received.length} of ${total} arrived`);
      if (packet.type !== PacketType.PUBLISH) continue;
      received.push(text((packet as PublishPacket).payload));
      await sub.ack(packet as PublishPacket);
    }
    await acking;
    assert.deepEqual(received, Array.from({ length: total }, (_, i) => String(i)));
    assert.deepEqual(acks, Array.from({ length: total }, (_, i) => i + 1));
    assert.ok(stats.publishersHeld > 1, `held ${stats.publishersHeld} times`);
    assert.equal(stats.droppedQueueFull, 0);
    await pub.disconnect();
    await sub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a client that subscribes to what it publishes is never held: its acknowledgements drain the queue", async () => {
  const server = startBroker({ config: { mqtt: { maxQueuedMessages: 10, maxInflight: 4 } } });
  try {
    const { client } = await TestClient.connect(server.port, { clientId: "loop" });
    await client.subscribe("loop", 1);
    const total = 200;
    await client.sendRaw(publishes(client, "loop", total));
    // Its deliveries and the answers to its publishes come on one connection; it acknowledges
    // every delivery as it reads it. Held while its own deliveries await these acknowledgements,
    // it would wait a second, then have its messages refused for its own queue.
    const received: string[] = [];
    let acks = 0;
    while (received.length < total || acks < total) {
      const packet = await client.next(10_000);
      assert.ok(packet !== undefined, `${received.length} delivered, ${acks} answered`);
      if (packet.type === PacketType.PUBACK) acks++;
      else if (packet.type === PacketType.PUBLISH) {
        received.push(text((packet as PublishPacket).payload));
        await client.ack(packet as PublishPacket);
      }
    }
    assert.deepEqual(received, Array.from({ length: total }, (_, i) => String(i)));
    assert.equal(server.broker.stats.droppedQueueFull, 0);
    assert.equal(server.broker.stats.publishersHeld, 0);
    await client.disconnect();
  } finally {
    await server.close();
  }
});
