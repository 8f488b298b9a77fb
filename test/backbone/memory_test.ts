import assert from "node:assert/strict";
import {
  DONE,
  type Message,
  type PublishOutcome,
  PublishWait,
  type QueuedDelivery,
} from "../../src/backbone/backbone.ts";
import { BackboneError } from "../../src/backbone/errors.ts";
import { MemoryBackbone } from "../../src/backbone/memory.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { runBackboneSuite } from "./backbone_suite.ts";

runBackboneSuite("memory", (clock) => new MemoryBackbone({ clock }));

function retained(topic: string, bytes: number, expiresAt = 0): Message {
  return {
    topic,
    payload: new Uint8Array(bytes),
    qos: 0,
    retain: true,
    properties: undefined,
    expiresAt,
    origin: "",
  };
}

function limited(maxMessages: number, maxBytes: number, clock = new ManualClock()) {
  return new MemoryBackbone({ clock, retainedLimits: { maxMessages, maxBytes } });
}

/** Asserts that a retained store write was refused as full. */
async function refusedFull(set: Promise<void>): Promise<void> {
  await assert.rejects(set, (error: unknown) => {
    assert.ok(error instanceof BackboneError);
    assert.equal(error.failure, "full");
    return true;
  });
}

Deno.test("MemoryBackbone is the embedded backbone: state is not durable", () => {
  const backbone = new MemoryBackbone({ clock: new ManualClock() });
  assert.equal(backbone.kind, "memory");
  assert.equal(backbone.durable, false);
});

Deno.test("MemoryRetainedStore.set() is refused as full past maxMessages", async () => {
  const { retained: store } = limited(2, Infinity);
  await store.set(retained("a", 1));
  await store.set(retained("b", 1));
  await assert.rejects(store.set(retained("c", 1)), (error: unknown) => {
    assert.ok(error instanceof BackboneError);
    assert.equal(error.message, 'Cannot retain message on "c": retained store is full');
    return true;
  });
  assert.equal(await store.get("c"), undefined);
  assert.equal(await store.count(), 2);
  // Replacing an existing topic does not add a message.
  await store.set(retained("a", 5));
  assert.equal((await store.get("a"))?.payload.length, 5);
  await store.delete("b");
  await store.set(retained("c", 1));
  assert.equal(await store.count(), 2);
});

Deno.test("MemoryRetainedStore.set() is refused past maxBytes and keeps the old message", async () => {
  const { retained: store } = limited(Infinity, 10);
  await store.set(retained("a", 4));
  await store.set(retained("b", 6));
  await refusedFull(store.set(retained("c", 1)));
  await refusedFull(store.set(retained("a", 5)));
  assert.equal((await store.get("a"))?.payload.length, 4);
  assert.equal(await store.count(), 2);
  // An empty payload still fits.
  await store.set(retained("empty", 0));
});

Deno.test("MemoryRetainedStore counts bytes across replace and delete", async () => {
  const { retained: store } = limited(Infinity, 10);
  await store.set(retained("a", 6));
  // Replacing counts the new size only: 8 in use, not 14.
  await store.set(retained("a", 8));
  await store.set(retained("b", 2));
  await refusedFull(store.set(retained("c", 1)));
  // Shrinking a message frees its bytes.
  await store.set(retained("a", 3));
  await store.set(retained("c", 5));
  await refusedFull(store.set(retained("d", 1)));
  // Deleting frees its bytes; deleting an absent topic frees nothing.
  assert.equal(await store.delete("a"), true);
  assert.equal(await store.delete("a"), false);
  await store.set(retained("d", 3));
  await refusedFull(store.set(retained("e", 1)));
});

Deno.test("MemoryRetainedStore frees an expired message's bytes and count when it is read", async () => {
  const clock = new ManualClock(1_000);
  const { retained: store } = limited(2, 10, clock);
  await store.set(retained("soon", 8, 2_000));
  await store.set(retained("later", 2, 3_000));
  clock.advance(1_000);
  assert.equal(await store.get("soon"), undefined);
  assert.equal(await store.count(), 1);
  await store.set(retained("new", 8));
  clock.advance(1_000);
  assert.deepEqual((await store.match("#")).map((m) => m.topic), ["new"]);
  assert.equal(await store.count(), 1);
  await store.set(retained("more", 2));
});

Deno.test("MemoryQueueStore hands a delivery to its consumer within the publish, before it resolves", async () => {
  const backbone = new MemoryBackbone({ clock: new ManualClock() });
  await backbone.queues.setFilters("s", ["t"], { maxMessages: 10, maxBytes: 1000 });
  const seen: string[] = [];
  const handle = await backbone.queues.open(
    { kind: "session", clientId: "s" },
    (deliveries) => seen.push(...deliveries.map((d) => d.message.topic)),
  );
  handle.request(1);
  const publishing = backbone.messages.publish({ ...retained("t", 1), qos: 1, retain: false });
  // Delivered in the same turn: the subscriber's PUBLISH goes out before the publisher's PUBACK.
  assert.deepEqual(seen, ["t"]);
  await publishing;
  await handle.close();
});

/** A QoS 1 message on `topic` whose payload is `n` as text. */
function numbered(topic: string, n: number): Message {
  return {
    topic,
    payload: new TextEncoder().encode(String(n)),
    qos: 1,
    retain: false,
    properties: undefined,
    expiresAt: 0,
    origin: "",
  };
}

/**
 * A waiting queue of `maxMessages` filled by as many publishes, handed out and unacknowledged,
 * then `waiting` more publishes parked in its line; and the means to acknowledge.
 */
async function fullWaitingQueue(maxMessages: number, waiting: number) {
  const backbone = new MemoryBackbone({ clock: new ManualClock() });
  await backbone.queues.setFilters("s", ["t"], {
    maxMessages,
    maxBytes: 1 << 20,
    whenFull: "wait",
  });
  const delivered: QueuedDelivery[] = [];
  const handle = await backbone.queues.open(
    { kind: "session", clientId: "s" },
    (deliveries) => delivered.push(...deliveries),
  );
  handle.request(maxMessages);
  for (let i = 0; i < maxMessages; i++) {
    const outcome = backbone.messages.publish(numbered("t", i));
    // Stored at once: the outcome itself, so the engine answers in the same turn.
    assert.ok(
      !(outcome instanceof Promise) && !(outcome instanceof PublishWait),
      `publish ${i} was answered at once`,
    );
    assert.equal(outcome.queued, 1);
  }
  const answers: PublishOutcome[] = [];
  const parked = Array.from({ length: waiting }, (_, i) => {
    const outcome = backbone.messages.publish(numbered("t", maxMessages + i));
    assert.ok(outcome instanceof PublishWait, "a publish into the full queue waits");
    return outcome.then((answer) => {
      answers.push(answer);
    });
  });
  let acked = 0;
  /** Acknowledges the next `count` deliveries; what waits is answered in the turns after. */
  const ack = async (count: number) => {
    for (let i = 0; i < count; i++) {
      assert.equal(handle.ack(delivered[acked++].seq), DONE, "an in-process ack is DONE");
      handle.request(1);
    }
    for (let i = 0; i < 4; i++) await Promise.resolve();
  };
  return { backbone, handle, delivered, answers, parked, ack, acked: () => acked };
}

Deno.test("MemoryQueueStore: a full queue takes in waiting publishes a sixteenth of its bound at a time, in order", async () => {
  const { handle, delivered, answers, parked, ack, acked } = await fullWaitingQueue(32, 10);
  await ack(1);
  assert.equal(answers.length, 0, "one free place of 32 takes in nothing");
  await ack(1);
  assert.equal(answers.length, 2, "two free places (32 / 16) take in two");
  await ack(1);
  assert.equal(answers.length, 2, "the queue is full again: nothing more until two are free");
  await ack(1);
  assert.equal(answers.length, 4);
  while (acked() < delivered.length) await ack(1);
  await Promise.all(parked);
  for (const answer of answers) assert.deepEqual([answer.queued, answer.full], [1, 0]);
  const payloads = delivered.map((d) => new TextDecoder().decode(d.message.payload));
  assert.deepEqual(
    payloads,
    Array.from({ length: 42 }, (_, i) => String(i)),
    "none lost, in order",
  );
  await handle.close();
});

Deno.test("MemoryQueueStore: a large full queue takes in waiting publishes 64 at a time", async () => {
  const { handle, answers, parked, ack } = await fullWaitingQueue(2000, 100);
  await ack(63);
  assert.equal(answers.length, 0, "63 free places of 2,000 take in nothing");
  await ack(1);
  assert.equal(answers.length, 64, "64 free places take in 64 at once");
  await ack(64);
  assert.equal(answers.length, 100);
  await Promise.all(parked);
  await handle.close();
});

Deno.test("MemoryMessageBus.completeInbound() answers itself, so PUBCOMP goes out in the same turn", () => {
  const backbone = new MemoryBackbone({ clock: new ManualClock() });
  const key = { clientId: "pub", packetId: 10 };
  const outcome = backbone.messages.publish({ ...numbered("t", 1), qos: 2 }, key);
  assert.ok(!(outcome instanceof Promise), "stored at once");
  assert.equal(backbone.messages.completeInbound(key), true);
  assert.equal(backbone.messages.completeInbound(key), false);
});
