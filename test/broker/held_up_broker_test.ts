/**
 * A broker process that does not run for more than a second (a busy machine, where other
 * processes take the CPU) must not wake up, find that its subscriber acknowledged nothing during
 * that second, and refuse the publishes waiting for room in its queue: the subscriber could not
 * have been heard while the broker was not running, and a 3.1.1 publisher has been told that a
 * refused message was delivered. Run on Deno and on Bun, with the process stopped (SIGSTOP) and
 * continued (SIGCONT). Checked by counts, never by timings.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType } from "../../src/codec/mod.ts";
import { runtimeTest, startBrokerProcess } from "../helpers/broker_process.ts";
import { TestClient, text } from "../helpers/test_client.ts";

/** How long the broker is stopped: more than the second of silence that refuses waiting publishes. */
const HELD_UP_MS = 1_500;

runtimeTest(
  "a broker process held up for more than a second refuses nothing for a subscriber that acknowledges",
  async (runtime) => {
    const broker = await startBrokerProcess(runtime, {
      env: { PERCH_MQTT__MAXINFLIGHT: "2", PERCH_MQTT__MAXQUEUEDMESSAGES: "10" },
    });
    const clients: TestClient[] = [];
    try {
      const { tcp: port } = await broker.started();
      const { client: sub } = await TestClient.connect(port!, { clientId: "slow" });
      clients.push(sub);
      await sub.subscribe("w", 1);
      // The subscriber reads on, but acknowledges only once the broker runs again.
      const release = Promise.withResolvers<void>();
      let acknowledging: Promise<unknown> = release.promise;
      const received: string[] = [];
      let arrived = Promise.withResolvers<void>();
      const reading = (async () => {
        for (let packet = await sub.next(10_000); packet; packet = await sub.next(10_000)) {
          if (packet.type !== PacketType.PUBLISH) continue;
          received.push(text(packet.payload));
          const ack = {
            type: PacketType.PUBACK,
            packetId: packet.packetId,
            reasonCode: 0,
            properties: undefined,
          } as const;
          acknowledging = acknowledging.then(() => sub.send(ack)).catch(() => {});
          arrived.resolve();
        }
      })().catch(() => {});
      /** Resolves once `n` messages arrived; fails once nothing came for 10 s. */
      const receivedAll = async (n: number) => {
        while (received.length < n) {
          arrived = Promise.withResolvers<void>();
          const more = await Promise.race([
            arrived.promise.then(() => true),
            reading.then(() => false),
          ]);
          if (!more) throw new Error(`only ${received.length} of ${n} messages arrived`);
        }
      };

      // A 3.1.1 publisher: a refused message is acknowledged all the same.
      const { client: pub } = await TestClient.connect(port!, { clientId: "fast" });
      clients.push(pub);
      const total = 50;
      for (let i = 0; i < total; i++) {
        await pub.send({
          type: PacketType.PUBLISH,
          dup: false,
          qos: 1,
          retain: false,
          topic: "w",
          packetId: i + 1,
          properties: undefined,
          payload: new TextEncoder().encode(String(i)),
        });
      }
      // The window is out; the queue fills up and the rest of the publishes wait for room.
      await receivedAll(2);
      broker.signal("SIGSTOP");
      // The fault itself, not a wait for anything: the broker does not run for this long.
      await new Promise((resolve) => setTimeout(resolve, HELD_UP_MS));
      broker.signal("SIGCONT");
      release.resolve();
      for (let i = 0; i < total; i++) await pub.expect(PacketType.PUBACK);
      await receivedAll(total);
      assert.deepEqual(received, Array.from({ length: total }, (_, i) => String(i)));
    } finally {
      broker.signal("SIGCONT");
      for (const client of clients) await client.destroy().catch(() => {});
      await broker.stop();
    }
  },
);
