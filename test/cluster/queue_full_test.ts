/**
 * `mqtt.queueFullPolicy: wait` (the default) across front-ends: two `src/main.ts` processes on one
 * real nats-server, a publisher on one and a subscriber with a small queue on the other. A
 * subscriber slower than its publisher but acknowledging slows the publisher and loses nothing; one
 * that acknowledges nothing holds a publish for about a second, then its queue refuses.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { type LocalCluster, startLocalCluster } from "../../scripts/cluster.ts";
import { TestClient, text } from "../helpers/test_client.ts";

const MAX_QUEUED = 10;

let started: Promise<LocalCluster> | undefined;
const cluster = () =>
  started ??= startLocalCluster({
    nodes: 2,
    balancer: false,
    prefix: "full",
    // Shorter than the default, so that a publish starved of room fails within the test.
    backbone: { timeout: "2s" },
    extra: {
      mqtt: { maxInflight: 2, maxQueuedMessages: MAX_QUEUED, stuckSubscriberTimeout: "1s" },
    },
  });

/**
 * A subscriber that acknowledges each QoS 1 message `delayMs` after it arrived (never with
 * `delayMs` undefined), keeping the payloads.
 */
function subscriber(
  client: TestClient,
  delayMs: number | undefined,
): { received: string[]; until: (n: number) => Promise<void> } {
  const received: string[] = [];
  let notify = () => {};
  const loop = (async () => {
    const next = () => client.next(10_000).catch(() => undefined);
    for (let packet = await next(); packet; packet = await next()) {
      if (packet.type !== PacketType.PUBLISH) continue;
      received.push(text(packet.payload));
      notify();
      if (delayMs === undefined) continue;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      await client.send({
        type: PacketType.PUBACK,
        packetId: packet.packetId!,
        reasonCode: 0,
        properties: undefined,
      }).catch(() => {});
    }
  })();
  return {
    received,
    async until(n: number) {
      while (received.length < n) {
        const arrived = new Promise<boolean>((resolve) => notify = () => resolve(true));
        if (!(await Promise.race([arrived, loop.then(() => false)]))) {
          throw new Error(`only ${received.length} of ${n} messages arrived`);
        }
      }
    },
  };
}

/** `total` QoS 1 PUBLISH packets with ids 1.., payloads "0".., sent in one go. */
async function burst(client: TestClient, topic: string, total: number): Promise<void> {
  const tagged = topic.startsWith("shared/");
  for (let i = 0; i < total; i++) {
    await client.send({
      type: PacketType.PUBLISH,
      dup: false,
      qos: 1,
      retain: false,
      topic,
      packetId: 1 + i,
      properties: undefined,
      payload: new TextEncoder().encode(
        tagged ? `${topic.slice(topic.lastIndexOf("/") + 1)}:${i}` : String(i),
      ),
    });
  }
}

const numbers = (n: number) => Array.from({ length: n }, (_, i) => String(i));

Deno.test("cluster: a 3.1.1 publisher faster than an acknowledging subscriber on another front-end loses nothing: publishes wait for room, in order", async () => {
  const { frontEnds: [a, b] } = await cluster();
  const { client: sub } = await TestClient.connect(b.port, { clientId: "slow-sub" });
  await sub.subscribe("slow/t", 1);
  const slow = subscriber(sub, 2);
  const { client: pub } = await TestClient.connect(a.port, { clientId: "fast-pub" });
  try {
    const total = 200;
    await burst(pub, "slow/t", total);
    for (let i = 0; i < total; i++) await pub.expect(PacketType.PUBACK);
    // Every message the publisher was told is delivered arrives, once and in order.
    await slow.until(total);
    assert.deepEqual(slow.received, numbers(total));
  } finally {
    await Promise.all([sub.disconnect(), pub.disconnect()]);
  }
});

Deno.test("cluster: a subscriber that acknowledges nothing holds a publish about a second, then its queue refuses (0x97 for MQTT 5), and the next at once", async () => {
  const { frontEnds: [a, b] } = await cluster();
  const { client: sub } = await TestClient.connect(b.port, { clientId: "stuck-sub" });
  await sub.subscribe("stuck/t", 1);
  const stuck = subscriber(sub, undefined);
  const { client: pub } = await TestClient.connect(a.port, { clientId: "pub5", version: 5 });
  try {
    const total = MAX_QUEUED + 5;
    const started = Date.now();
    await burst(pub, "stuck/t", total);
    const codes: number[] = [];
    const times: number[] = [];
    for (let i = 0; i < total; i++) {
      codes.push((await pub.expect(PacketType.PUBACK)).reasonCode);
      times.push(Date.now() - started);
    }
    assert.deepEqual(
      codes,
      [
        ...new Array(MAX_QUEUED).fill(ReasonCode.Success),
        ...new Array(total - MAX_QUEUED).fill(ReasonCode.QuotaExceeded),
      ],
    );
    // The first refused waited for the subscriber (about a second), the others not again.
    const waited = times[MAX_QUEUED] - times[MAX_QUEUED - 1];
    assert.ok(waited >= 700 && waited < 4_000, `the first refusal came after ${waited} ms`);
    assert.ok(times[total - 1] - times[MAX_QUEUED] < 700, `then ${times.join(" ")}`);
    await stuck.until(2);
  } finally {
    await Promise.all([sub.disconnect(), pub.disconnect()]);
  }
});

Deno.test("cluster: publishers on the subscriber's front-end and on another share a full queue: neither starves, nothing is lost", async () => {
  const { frontEnds: [a, b] } = await cluster();
  const { client: sub } = await TestClient.connect(b.port, { clientId: "shared-sub" });
  await sub.subscribe("shared/+", 1);
  const slow = subscriber(sub, 1);
  // One publisher where the subscriber is (it sees room at each acknowledgement), one elsewhere
  // (it sees room only from the server).
  const { client: near } = await TestClient.connect(b.port, { clientId: "near-pub" });
  const { client: far } = await TestClient.connect(a.port, { clientId: "far-pub", version: 5 });
  try {
    const total = 1_000;
    const started = Date.now();
    const codes = async (pub: TestClient) => {
      const all: number[] = [];
      for (let i = 0; i < total; i++) all.push((await pub.expect(PacketType.PUBACK)).reasonCode);
      return all;
    };
    await Promise.all([burst(near, "shared/near", total), burst(far, "shared/far", total)]);
    const [, farCodes] = await Promise.all([codes(near), codes(far)]);
    assert.deepEqual(farCodes, new Array(total).fill(ReasonCode.Success));
    await slow.until(2 * total);
    const got = (from: string) =>
      slow.received.filter((p) => p.startsWith(`${from}:`)).map((p) => p.slice(from.length + 1));
    assert.deepEqual(got("near"), numbers(total));
    assert.deepEqual(got("far"), numbers(total));
    assert.ok(Date.now() - started < 30_000);
  } finally {
    await Promise.all([sub.disconnect(), near.disconnect(), far.disconnect()]);
  }
});

Deno.test("cluster: the processes stop", async () => {
  if (started) await (await started).close();
});
