/**
 * QoS 2 on the memory backbone, whose steps (recording a packet id, a release, closing an inbound
 * id) complete at once: each packet of the flow is answered within the read that brought it in,
 * not in promise reactions after it. Answered a reaction later, every QoS 2 delivery of a busy
 * subscriber became a socket write of its own (issue 19: fan-in QoS 2 at a quarter of its
 * pre-seam rate).
 *
 * The broker's connections are wrapped to record, for each packet the broker writes, whether it
 * was written while the broker was still handling a chunk of input (and which one).
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodePacket, PacketType } from "../../src/codec/mod.ts";
import type { Packet } from "../../src/codec/packets.ts";
import { denoSockets } from "../../src/transport/deno_sockets.ts";
import type { Connection, ConnectionHandler } from "../../src/transport/transport.ts";
import { startBroker, type TestBroker } from "../helpers/broker.ts";
import { TestClient } from "../helpers/test_client.ts";

/** A packet the broker wrote: its type, and the input chunk being handled then (0: none). */
interface Written {
  type: number;
  chunk: number;
}

/** Listens next to the test broker, recording what the broker writes to each connection. */
function recordingListener(server: TestBroker) {
  const written: Written[][] = [];
  let chunks = 0;
  let handling = 0;
  const listener = denoSockets.listenTcp(
    { hostname: "127.0.0.1", port: 0 },
    (connection: Connection): ConnectionHandler => {
      const log: Written[] = [];
      written.push(log);
      const recorded: Connection = {
        kind: connection.kind,
        remoteAddress: connection.remoteAddress,
        remotePort: connection.remotePort,
        peerCertificate: connection.peerCertificate,
        get bufferedBytes() {
          return connection.bufferedBytes;
        },
        write(bytes) {
          log.push({ type: bytes[0] >> 4, chunk: handling });
          connection.write(bytes);
        },
        pause: () => connection.pause(),
        resume: () => connection.resume(),
        close: () => connection.close(),
        destroy: () => connection.destroy(),
      };
      const handler = server.broker.accept(recorded);
      return {
        onData(chunk) {
          handling = ++chunks;
          try {
            handler.onData(chunk);
          } finally {
            handling = 0;
          }
        },
        onClose: (error) => handler.onClose(error),
        onDrain: () => handler.onDrain?.(),
      };
    },
  );
  return { listener, written };
}

/** Several packets in one write, so the broker reads them as one chunk. */
function together(client: TestClient, packets: Packet[]): Promise<void> {
  const parts = packets.map((packet) => encodePacket(packet, client.version));
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return client.sendRaw(bytes);
}

/** The chunks during which the broker wrote the packets of `type`; 0 for written after one. */
function chunksOf(log: Written[], type: number): number[] {
  return log.filter((w) => w.type === type).map((w) => w.chunk);
}

const ack =
  (type: typeof PacketType.PUBREC | typeof PacketType.PUBREL | typeof PacketType.PUBCOMP) =>
  (packetId: number): Packet => ({ type, packetId, reasonCode: 0, properties: undefined });

Deno.test("QoS 2 on the memory backbone: deliveries, PUBREL and PUBCOMP go out while the broker handles the input that caused them", async () => {
  const server = startBroker();
  const { listener, written } = recordingListener(server);
  // Six packets of each kind: at most 48 bytes, read in one chunk.
  const count = 6;
  try {
    const { client: sub } = await TestClient.connect(listener.port, { clientId: "s" });
    await sub.subscribe("t", 2);
    const { client: pub } = await TestClient.connect(listener.port, { clientId: "p" });
    const [subLog, pubLog] = written;
    const ids = Array.from({ length: count }, (_, i) => i + 1);

    await together(
      pub,
      ids.map((packetId): Packet => ({
        type: PacketType.PUBLISH,
        dup: false,
        qos: 2,
        retain: false,
        topic: "t",
        packetId,
        properties: undefined,
        payload: new Uint8Array([packetId]),
      })),
    );
    const pubrecs = await Promise.all(ids.map(() => pub.expect(PacketType.PUBREC)));
    assert.deepEqual(pubrecs.map((p) => p.packetId), ids);
    const deliveries = await sub.publishes(count);
    assert.deepEqual(deliveries.map((p) => p.payload[0]), ids, "in order");
    const published = chunksOf(subLog, PacketType.PUBLISH);
    assert.equal(published.length, count);
    assert.notEqual(published[0], 0, "the first delivery went out while the PUBLISHes were read");
    assert.deepEqual(published, published.map(() => published[0]), "all in that same read");
    const answered = chunksOf(pubLog, PacketType.PUBREC);
    assert.deepEqual(answered, answered.map(() => published[0]), "PUBRECs in that read too");

    await together(sub, deliveries.map((p) => ack(PacketType.PUBREC)(p.packetId)));
    const pubrels = await Promise.all(ids.map(() => sub.expect(PacketType.PUBREL)));
    assert.deepEqual(pubrels.map((p) => p.packetId), deliveries.map((p) => p.packetId));
    const released = chunksOf(subLog, PacketType.PUBREL);
    assert.notEqual(released[0], 0, "PUBREL went out while the PUBRECs were read");
    assert.deepEqual(released, released.map(() => released[0]));

    await together(pub, ids.map(ack(PacketType.PUBREL)));
    const pubcomps = await Promise.all(ids.map(() => pub.expect(PacketType.PUBCOMP)));
    assert.deepEqual(pubcomps.map((p) => p.packetId), ids);
    const completed = chunksOf(pubLog, PacketType.PUBCOMP);
    assert.notEqual(completed[0], 0, "PUBCOMP went out while the PUBRELs were read");
    assert.deepEqual(completed, completed.map(() => completed[0]));

    // The flows are complete on both sides: nothing left to resend, ids free again.
    await together(sub, deliveries.map((p) => ack(PacketType.PUBCOMP)(p.packetId)));
    await sub.expectNothingPending();
    await pub.expectNothingPending();
    assert.equal(server.backbone.queues.inboundIds("p").length, 0);
    await pub.disconnect();
    await sub.disconnect();
  } finally {
    listener.close();
    await server.close();
  }
});
