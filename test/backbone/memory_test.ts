import assert from "node:assert/strict";
import type { Message } from "../../src/backbone/backbone.ts";
import { MemoryBackbone, RetainedStoreFullError } from "../../src/backbone/memory.ts";
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

function limited(maxMessages: number, maxBytes: number): MemoryBackbone {
  return new MemoryBackbone({
    clock: new ManualClock(),
    retainedLimits: { maxMessages, maxBytes },
  });
}

Deno.test("MemoryBackbone is the local, unshared backbone", async () => {
  const backbone = new MemoryBackbone({ clock: new ManualClock() });
  await backbone.start();
  assert.equal(backbone.kind, "memory");
  assert.equal(backbone.shared, false);
  await backbone.close();
});

Deno.test("MemoryMessageBus.publish() calls the listener synchronously, with no interest needed", async () => {
  const backbone = new MemoryBackbone({ clock: new ManualClock() });
  const received: string[] = [];
  backbone.bus.listen((m) => received.push(m.topic));
  const result: unknown = backbone.bus.publish(retained("no/interest", 1));
  assert.equal(result instanceof Promise, false);
  assert.deepEqual(received, ["no/interest"]);
  await backbone.close();
});

Deno.test("MemoryRetainedStore.set() throws RetainedStoreFullError past maxMessages", async () => {
  const backbone = limited(2, Infinity);
  backbone.retained.set(retained("a", 1));
  backbone.retained.set(retained("b", 1));
  assert.throws(() => backbone.retained.set(retained("c", 1)), (error: unknown) => {
    assert.ok(error instanceof RetainedStoreFullError);
    assert.equal(error.name, "RetainedStoreFullError");
    assert.equal(error.message, 'Cannot retain message on "c": retained store is full');
    return true;
  });
  assert.equal(backbone.retained.get("c"), undefined);
  assert.equal(backbone.retained.count(), 2);
  // Replacing an existing topic does not add a message.
  backbone.retained.set(retained("a", 5));
  assert.equal(backbone.retained.get("a")?.payload.length, 5);
  backbone.retained.delete("b");
  backbone.retained.set(retained("c", 1));
  assert.equal(backbone.retained.count(), 2);
  await backbone.close();
});

Deno.test("MemoryRetainedStore.set() throws RetainedStoreFullError past maxBytes and keeps the old message", async () => {
  const backbone = limited(Infinity, 10);
  backbone.retained.set(retained("a", 4));
  backbone.retained.set(retained("b", 6));
  assert.throws(() => backbone.retained.set(retained("c", 1)), RetainedStoreFullError);
  assert.throws(() => backbone.retained.set(retained("a", 5)), RetainedStoreFullError);
  assert.equal(backbone.retained.get("a")?.payload.length, 4);
  assert.equal(backbone.retained.count(), 2);
  // An empty payload still fits.
  backbone.retained.set(retained("empty", 0));
  await backbone.close();
});

Deno.test("MemoryRetainedStore counts bytes across replace and delete", async () => {
  const backbone = limited(Infinity, 10);
  const store = backbone.retained;
  store.set(retained("a", 6));
  // Replacing counts the new size only: 8 in use, not 14.
  store.set(retained("a", 8));
  store.set(retained("b", 2));
  assert.throws(() => store.set(retained("c", 1)), RetainedStoreFullError);
  // Shrinking a message frees its bytes.
  store.set(retained("a", 3));
  store.set(retained("c", 5));
  assert.throws(() => store.set(retained("d", 1)), RetainedStoreFullError);
  // Deleting frees its bytes; deleting an absent topic frees nothing.
  assert.equal(store.delete("a"), true);
  assert.equal(store.delete("a"), false);
  store.set(retained("d", 3));
  assert.throws(() => store.set(retained("e", 1)), RetainedStoreFullError);
  await backbone.close();
});

Deno.test("MemoryRetainedStore frees an expired message's bytes and count when it is read", async () => {
  const clock = new ManualClock(1_000);
  const backbone = new MemoryBackbone({ clock, retainedLimits: { maxMessages: 2, maxBytes: 10 } });
  const store = backbone.retained;
  store.set(retained("soon", 8, 2_000));
  store.set(retained("later", 2, 3_000));
  clock.advance(1_000);
  assert.equal(store.get("soon"), undefined);
  assert.equal(store.count(), 1);
  store.set(retained("new", 8));
  clock.advance(1_000);
  assert.deepEqual(store.match("#").map((m) => m.topic), ["new"]);
  assert.equal(store.count(), 1);
  store.set(retained("more", 2));
  await backbone.close();
});
