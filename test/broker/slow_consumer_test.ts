/**
 * The slow-consumer policy over real sockets: a subscriber that stops reading must cost the broker
 * a bounded amount of memory, its dropped QoS 0 messages must be counted, and the other
 * subscribers of the same topic must not be slowed down by it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType } from "../../src/codec/mod.ts";
import { startBroker } from "../helpers/broker.ts";
import { targetTest } from "../helpers/targets.ts";
import { TestClient } from "../helpers/test_client.ts";
import { frame, str, u16 } from "../vectors/mod.ts";

const KIB = 1024;
const MIB = 1024 * KIB;
/** The per-connection write buffer limit the broker is configured with. */
const WRITE_BUFFER_LIMIT = 256 * KIB;
/** Messages sent between checks; the healthy subscriber must get each batch quickly. */
const BATCH = 256;
/** Upper bound on messages published before drops must have started (64 MiB of payload). */
const MAX_MESSAGES = 64 * KIB;
/** Messages published after the first drop until the heap has settled (GC noise, not growth). */
const WARM_UP = 16 * KIB;
/** Messages published (and dropped for the slow consumer) while memory is watched: 32 MiB. */
const MEASURED = 32 * KIB;
/**
 * How long a batch may take to reach a healthy subscriber before the test fails instead of hanging.
 * Generous on purpose: the assertion is that it arrives at all while the slow consumer is stuck
 * (publishers are never held back by a QoS 0 subscriber), not how fast.
 */
const RECEIVE_TIMEOUT_MS = 15_000;

/** Reads exactly `n` bytes from a raw connection. */
async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const read = await conn.read(out.subarray(got));
    if (read === null) throw new Error(`Connection closed after ${got} of ${n} bytes`);
    got += read;
  }
  return out;
}

/**
 * Memory of this test's isolate: its heap plus the external memory of its buffers, after a full
 * garbage collection when the runtime exposes one (`deno task test` passes `--expose-gc`), so that
 * garbage not yet collected does not count. Not RSS, which is the whole process's: `deno test
 * --parallel` runs other test modules in the same process, and their allocations made this test
 * fail at random.
 */
function isolateMemory(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const usage = Deno.memoryUsage();
  return usage.heapUsed + usage.external;
}

Deno.test("a subscriber that stops reading has its QoS 0 messages dropped and counted, memory stays bounded, and other subscribers keep up", async () => {
  const server = startBroker({ config: { mqtt: { writeBufferLimit: "256KiB" } } });
  let slow: Deno.Conn | undefined;
  let healthy: TestClient | undefined;
  let publisher: TestClient | undefined;
  try {
    // The slow consumer: a raw socket that connects, subscribes, reads the two answers, and then
    // never reads again.
    slow = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await slow.write(frame(
      0x10, // CONNECT
      str("MQTT"), // protocol name
      0x04, // protocol level 4 (3.1.1)
      0x02, // clean session
      u16(0), // keep alive off
      str("slow"), // client identifier
    ));
    assert.deepEqual([...await readExactly(slow, 4)], [0x20, 0x02, 0x00, 0x00]); // CONNACK
    await slow.write(frame(
      0x82, // SUBSCRIBE
      u16(1), // packet identifier
      str("feed"), // topic filter
      0x00, // options: QoS 0
    ));
    assert.deepEqual([...await readExactly(slow, 5)], [0x90, 0x03, 0x00, 0x01, 0x00]); // SUBACK

    ({ client: healthy } = await TestClient.connect(server.port, { clientId: "healthy" }));
    assert.deepEqual((await healthy.subscribe("feed", 0)).reasonCodes, [0]);
    ({ client: publisher } = await TestClient.connect(server.port, { clientId: "publisher" }));

    const slowClient = [...server.broker.connections].find((c) => c.info.clientId === "slow");
    assert.ok(slowClient, "the broker does not know the slow client");
    const stats = server.broker.stats;
    const payload = new Uint8Array(KIB).fill(0x61);
    const rssBefore = isolateMemory();
    let published = 0;
    let maxBuffered = 0;

    const sendBatch = async () => {
      for (let i = 0; i < BATCH; i++) await publisher!.publish("feed", payload);
      published += BATCH;
      // Every message of the batch reaches the healthy subscriber.
      const received = await healthy!.publishes(BATCH, RECEIVE_TIMEOUT_MS);
      assert.ok(
        received.every((m) => m.topic === "feed" && m.payload.length === KIB),
        "the healthy subscriber got a wrong message",
      );
      maxBuffered = Math.max(maxBuffered, slowClient.transport.bufferedBytes);
    };

    // Phase 1: publish until the slow consumer's buffer is full and drops begin. The socket
    // buffers of the kernel take a few MiB first, then the broker's queue fills to the limit.
    while (stats.droppedSlowConsumer === 0) {
      assert.ok(published < MAX_MESSAGES, `no drop after ${published} messages of 1 KiB`);
      await sendBatch();
    }
    // Phase 2: keep publishing; everything for the slow consumer is dropped and counted. After a
    // warm-up (the heap of this process grows to its steady state), 32 MiB more go through while
    // RSS is watched: a queue growing without bound would add them all.
    const droppedBefore = stats.droppedSlowConsumer;
    const warmUpEnd = published + WARM_UP;
    while (published < warmUpEnd) await sendBatch();
    const rssSteady = isolateMemory();
    const measuredEnd = published + MEASURED;
    while (published < measuredEnd) await sendBatch();
    const rssAfter = isolateMemory();
    const droppedLater = stats.droppedSlowConsumer - droppedBefore;
    // The slow consumer never reads, so every later message is dropped (a few may still fit in the
    // space a completed OS write freed).
    assert.ok(
      droppedLater >= (WARM_UP + MEASURED) * 0.95,
      `only ${droppedLater} of ${WARM_UP + MEASURED} later messages counted as dropped`,
    );

    // The broker holds at most the limit plus one packet for the slow consumer.
    const onePacket = 2 + 2 + "feed".length + KIB;
    assert.ok(
      maxBuffered <= WRITE_BUFFER_LIMIT + onePacket,
      `${maxBuffered} bytes buffered for the slow consumer; the limit is ${WRITE_BUFFER_LIMIT}`,
    );
    // Garbage not yet collected counts too; keeping the dropped messages would add all 32 MiB.
    const grown = rssAfter - rssSteady;
    assert.ok(
      grown < 16 * MIB,
      `memory grew by ${(grown / MIB).toFixed(1)} MiB while 32 MiB were dropped`,
    );
    assert.ok(
      rssAfter - rssBefore < 64 * MIB,
      `memory grew by ${((rssAfter - rssBefore) / MIB).toFixed(1)} MiB over the whole test`,
    );

    // The slow consumer is still connected (QoS 0 drops do not disconnect it), and the healthy
    // subscriber has nothing pending beyond what it received.
    assert.equal(slowClient.closed, false);
    await healthy.expectNothingPending();
    await publisher.disconnect();
    publisher = undefined;
    await healthy.disconnect();
    healthy = undefined;
  } finally {
    try {
      slow?.close();
    } catch {
      // Already closed.
    }
    await publisher?.destroy();
    await healthy?.destroy();
    await server.close();
  }
});

targetTest("a slow consumer's QoS 0 drops do not delay a QoS 1 subscriber on the same topic", {
  config: { mqtt: { writeBufferLimit: "256KiB" } },
}, async (server) => {
  let slow: Deno.Conn | undefined;
  let qos1: TestClient | undefined;
  let publisher: TestClient | undefined;
  try {
    slow = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await slow.write(frame(
      0x10, // CONNECT
      str("MQTT"), // protocol name
      0x04, // protocol level 4
      0x02, // clean session
      u16(0), // keep alive off
      str("slow"), // client identifier
    ));
    await readExactly(slow, 4); // CONNACK
    await slow.write(frame(
      0x82, // SUBSCRIBE
      u16(1), // packet identifier
      str("feed"), // topic filter
      0x00, // options: QoS 0 (the slow consumer takes QoS 0 copies)
    ));
    await readExactly(slow, 5); // SUBACK

    const acker = (await TestClient.connect(server.port, { clientId: "acker", version: 5 })).client;
    qos1 = acker;
    await acker.subscribe("feed", 1);
    const pub = (await TestClient.connect(server.port, { clientId: "pub", version: 5 })).client;
    publisher = pub;
    const payload = new Uint8Array(KIB).fill(0x62);

    // Fill the slow consumer with QoS 1 publishes (it receives them at QoS 0), acking each copy
    // the QoS 1 subscriber gets; every copy arrives and every publish is acknowledged.
    let sent = 0;
    while ((await server.counters()).droppedSlowConsumer < BATCH) {
      assert.ok(sent < MAX_MESSAGES, `no drops after ${sent} messages`);
      for (let i = 0; i < BATCH; i++) {
        await pub.send({
          type: PacketType.PUBLISH,
          dup: false,
          qos: 1,
          retain: false,
          topic: "feed",
          packetId: pub.allocatePacketId(),
          properties: undefined,
          payload,
        });
      }
      sent += BATCH;
      for (let i = 0; i < BATCH; i++) {
        const message = await acker.expect(PacketType.PUBLISH, RECEIVE_TIMEOUT_MS);
        assert.equal(message.qos, 1);
        await acker.ack(message);
      }
      for (let i = 0; i < BATCH; i++) await pub.expect(PacketType.PUBACK, RECEIVE_TIMEOUT_MS);
    }
    await acker.expectNothingPending();
    await pub.disconnect();
    publisher = undefined;
    await acker.disconnect();
    qos1 = undefined;
  } finally {
    try {
      slow?.close();
    } catch {
      // Already closed.
    }
    await publisher?.destroy();
    await qos1?.destroy();
  }
});

targetTest(
  "a client that sends without reading is read no further once its replies pass the write bound, and is served again once it reads",
  {
    config: { mqtt: { writeBufferLimit: "64KiB" } },
  },
  async (server) => {
    // The client subscribes to what it publishes and does not read: the copies fill the
    // kernel's buffers, then the broker's queue (QoS 0 copies beyond the bound are dropped), and
    // the PUBACKs, never dropped, pass the bound: the broker stops reading it.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    let writing: Promise<void> | undefined;
    try {
      await conn.write(frame(0x10, str("MQTT"), 0x04, 0x02, u16(0), str("deaf"))); // CONNECT
      assert.deepEqual([...await readExactly(conn, 4)], [0x20, 0x02, 0x00, 0x00]); // CONNACK
      await conn.write(frame(0x82, u16(1), str("echo"), 0x00)); // SUBSCRIBE echo, QoS 0
      assert.deepEqual([...await readExactly(conn, 5)], [0x90, 0x03, 0x00, 0x01, 0x00]); // SUBACK
      const payload = new Uint8Array(16 * KIB).fill(0x63);
      // Publishes written without reading until the broker holds more than its bound for the
      // client; the writes stall once the broker stops reading.
      let publishes = 0;
      let stop = false;
      writing = (async () => {
        while (!stop && publishes < 0xffff) {
          const bytes = frame(0x32, str("echo"), u16(++publishes), payload); // PUBLISH QoS 1
          for (let n = 0; n < bytes.length;) n += await conn.write(bytes.subarray(n));
        }
      })();
      // The broker stops reading once its replies pass the bound; as the operating system takes
      // more of them its count may fall below the bound again, but it reads only once all are sent.
      await until(async () => (await server.client("deaf"))?.readingPaused === true);
      const held = (await server.client("deaf"))!.bufferedBytes;
      // One packet past the bound at most: the broker stopped reading at once.
      assert.ok(held <= 64 * KIB + 16 * KIB + 64, `${held} bytes held for the client`);
      // No publish after the one being written. Reading again lets the broker write, then read
      // on: every publish is acknowledged, in order.
      stop = true;
      const client = TestClient.wrap(conn, 4);
      let acked = 0;
      while (acked < publishes) {
        const packet = await client.next(RECEIVE_TIMEOUT_MS);
        assert.ok(packet, `closed after ${acked} PUBACKs`);
        if (packet.type !== PacketType.PUBACK) continue;
        assert.equal(packet.packetId, acked + 1);
        acked++;
      }
      await writing;
      await client.disconnect();
    } finally {
      // Closed first: a write the broker is not reading would otherwise never end.
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      await writing?.catch(() => {});
    }
  },
);

/** Resolves once `condition` holds, asking again every few milliseconds (a guard, not a delay). */
async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + RECEIVE_TIMEOUT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${RECEIVE_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
