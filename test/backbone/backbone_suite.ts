/**
 * The conformance suite every {@linkcode Backbone} implementation runs (DESIGN section 4): the memory
 * backbone today, the NATS JetStream one later. It states what the broker core may rely on, so it
 * never assumes a method answers synchronously (every result is awaited), never relies on the
 * memory bus delivering messages nobody declared interest in, and compares records structurally
 * (an implementation that serializes may drop `undefined` fields or return fresh byte arrays).
 *
 * @module
 */

import assert from "node:assert/strict";
import type {
  Backbone,
  Message,
  QueueLimits,
  SessionRecord,
  SubscriptionRecord,
} from "../../src/backbone/backbone.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";

/** Creates a fresh, empty backbone driven by `clock` (for message expiry). */
export type MakeBackbone = (clock: ManualClock) => Backbone | Promise<Backbone>;

/** The time every suite clock starts at: a realistic epoch, so `expiresAt` values look real. */
const START = 1_700_000_000_000;

/** Longest wait for an asynchronous notification before the test fails instead of hanging. */
const NOTIFY_TIMEOUT_MS = 5_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A QoS 1 message with no properties, no expiry and no origin, unless overridden. */
function message(topic: string, payload = "x", overrides: Partial<Message> = {}): Message {
  return {
    topic,
    payload: encoder.encode(payload),
    qos: 1,
    retain: false,
    properties: undefined,
    expiresAt: 0,
    origin: "",
    ...overrides,
  };
}

function subscription(
  filter: string,
  overrides: Partial<SubscriptionRecord> = {},
): SubscriptionRecord {
  return {
    filter,
    qos: 1,
    noLocal: false,
    retainAsPublished: false,
    retainHandling: 0,
    subscriptionId: 0,
    ...overrides,
  };
}

/** A session record with one subscription and no will, unless overridden. */
function sessionRecord(clientId: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    clientId,
    protocolVersion: 5,
    expiryInterval: 3600,
    subscriptions: [subscription("a/+")],
    will: undefined,
    owner: "node-1",
    disconnectedAt: undefined,
    ...overrides,
  };
}

/** A record using every field, properties and bytes included, to check a full round trip. */
function fullSessionRecord(clientId: string): SessionRecord {
  return sessionRecord(clientId, {
    protocolVersion: 4,
    expiryInterval: 0xffffffff,
    subscriptions: [
      subscription("a/+", { qos: 0 }),
      subscription("$share/g/b/#", { qos: 2, subscriptionId: 7 }),
      subscription("c", { noLocal: true, retainAsPublished: true, retainHandling: 2 }),
    ],
    will: {
      message: message("wills/" + clientId, "gone", {
        qos: 2,
        retain: true,
        properties: {
          contentType: "text/plain",
          correlationData: new Uint8Array([0, 1, 255]),
          userProperties: [["k", "v"], ["k", "v2"]],
        },
        origin: clientId,
      }),
      delayInterval: 30,
      messageExpiryInterval: 60,
    },
    owner: undefined,
    disconnectedAt: START - 5_000,
  });
}

/**
 * A structural form for comparisons: byte arrays become plain arrays, `undefined` fields vanish
 * and keys are sorted, so a record that went through JSON or a byte codec compares equal.
 */
function canon(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (Array.isArray(value)) return value.map(canon);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const field = (value as Record<string, unknown>)[key];
      if (field !== undefined) out[key] = canon(field);
    }
    return out;
  }
  return value;
}

function assertSameRecord(actual: unknown, expected: unknown): void {
  assert.deepEqual(canon(actual), canon(expected));
}

function topics(messages: Message[]): string[] {
  return messages.map((m) => m.topic).sort();
}

function text(messages: Message[]): string[] {
  return messages.map((m) => decoder.decode(m.payload));
}

/** Resolves when `ready()` holds, re-checking each time `notify` is called; fails after a while. */
class Waiter {
  #wake: (() => void) | undefined;

  notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async until(ready: () => boolean, what: string): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Timed out waiting for ${what}`)),
        NOTIFY_TIMEOUT_MS,
      );
    });
    try {
      while (!ready()) {
        await Promise.race([new Promise<void>((resolve) => this.#wake = resolve), timeout]);
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Registers the conformance tests for one backbone implementation.
 *
 * @param name Implementation name, prefixed to every test name
 * @param makeBackbone Creates a fresh, empty backbone; the suite starts and closes it
 */
export function runBackboneSuite(name: string, makeBackbone: MakeBackbone): void {
  function test(
    title: string,
    fn: (backbone: Backbone, clock: ManualClock) => Promise<void>,
  ): void {
    Deno.test(`${name}: ${title}`, async () => {
      const clock = new ManualClock(START);
      const backbone = await makeBackbone(clock);
      await backbone.start();
      try {
        await fn(backbone, clock);
      } finally {
        await backbone.close();
      }
    });
  }

  // ---- sessions ------------------------------------------------------------------------------

  test("SessionStore.get() returns undefined for an unknown client id", async (b) => {
    assert.equal(await b.sessions.get("nobody"), undefined);
  });

  test("SessionStore.put() with revision 0 creates a record get() returns", async (b) => {
    const record = fullSessionRecord("c1");
    const revision = await b.sessions.put(record, 0);
    assert.equal(typeof revision, "number");
    assert.ok(revision! > 0, `expected a positive revision, got ${revision}`);
    const stored = await b.sessions.get("c1");
    assert.ok(stored);
    assert.equal(stored.revision, revision);
    assertSameRecord(stored.record, record);
  });

  test("SessionStore.put() with revision 0 returns undefined when the record exists", async (b) => {
    const first = sessionRecord("c1", { owner: "node-1" });
    const revision = await b.sessions.put(first, 0);
    assert.equal(await b.sessions.put(sessionRecord("c1", { owner: "node-2" }), 0), undefined);
    const stored = await b.sessions.get("c1");
    assert.equal(stored?.revision, revision);
    assertSameRecord(stored?.record, first);
  });

  test("SessionStore.put() returns undefined for a stale or unknown revision", async (b) => {
    const r1 = (await b.sessions.put(sessionRecord("c1", { owner: "node-1" }), 0))!;
    const r2 = (await b.sessions.put(sessionRecord("c1", { owner: "node-2" }), r1))!;
    assert.equal(await b.sessions.put(sessionRecord("c1", { owner: "node-3" }), r1), undefined);
    assert.equal(
      await b.sessions.put(sessionRecord("c1", { owner: "node-3" }), r2 + 1000),
      undefined,
    );
    // An absent record has no revision but 0.
    assert.equal(await b.sessions.put(sessionRecord("c2"), r2), undefined);
    assert.equal(await b.sessions.get("c2"), undefined);
    const stored = await b.sessions.get("c1");
    assert.equal(stored?.revision, r2);
    assert.equal(stored?.record.owner, "node-2");
  });

  test("SessionStore.put() with the current revision replaces the record and bumps it", async (b) => {
    const r1 = (await b.sessions.put(sessionRecord("c1"), 0))!;
    const replacement = sessionRecord("c1", {
      owner: undefined,
      disconnectedAt: START,
      subscriptions: [subscription("x/#", { qos: 2 })],
    });
    const r2 = await b.sessions.put(replacement, r1);
    assert.equal(typeof r2, "number");
    assert.ok(r2! > r1, `expected a revision above ${r1}, got ${r2}`);
    const stored = await b.sessions.get("c1");
    assert.equal(stored?.revision, r2);
    assertSameRecord(stored?.record, replacement);
  });

  test("SessionStore.delete() without a revision deletes any record", async (b) => {
    assert.equal(await b.sessions.delete("c1"), false);
    const r1 = (await b.sessions.put(sessionRecord("c1"), 0))!;
    await b.sessions.put(sessionRecord("c1", { owner: "node-2" }), r1);
    assert.equal(await b.sessions.delete("c1"), true);
    assert.equal(await b.sessions.get("c1"), undefined);
    assert.equal(await b.sessions.delete("c1"), false);
  });

  test("SessionStore.delete() with a revision deletes only a matching record", async (b) => {
    const r1 = (await b.sessions.put(sessionRecord("c1"), 0))!;
    const r2 = (await b.sessions.put(sessionRecord("c1", { owner: "node-2" }), r1))!;
    assert.equal(await b.sessions.delete("c1", r1), false);
    assert.equal((await b.sessions.get("c1"))?.revision, r2);
    assert.equal(await b.sessions.delete("c1", r2), true);
    assert.equal(await b.sessions.get("c1"), undefined);
    assert.equal(await b.sessions.delete("c1", r2), false);
    // A deleted record can be created again.
    const r3 = await b.sessions.put(sessionRecord("c1", { owner: "node-3" }), 0);
    assert.equal(typeof r3, "number");
    assert.equal((await b.sessions.get("c1"))?.record.owner, "node-3");
  });

  test("SessionStore.list() returns every record in client id order", async (b) => {
    assert.deepEqual(await b.sessions.list(), []);
    for (const id of ["delta", "alpha", "charlie", "bravo", "Zulu", "alpha-2"]) {
      await b.sessions.put(sessionRecord(id), 0);
    }
    await b.sessions.delete("charlie");
    const list = await b.sessions.list();
    assert.deepEqual(list.map((r) => r.clientId), ["Zulu", "alpha", "alpha-2", "bravo", "delta"]);
    assertSameRecord(list[1], sessionRecord("alpha"));
  });

  test("SessionStore keeps copies: mutating records given or returned leaves it unchanged", async (b) => {
    const original = sessionRecord("c1", {
      subscriptions: [subscription("a/+"), subscription("b", { qos: 2 })],
    });
    const expected = canon(original);
    const given = sessionRecord("c1", {
      subscriptions: [subscription("a/+"), subscription("b", { qos: 2 })],
    });
    const revision = (await b.sessions.put(given, 0))!;
    given.owner = "mutated";
    given.subscriptions[0].qos = 0;
    given.subscriptions.push(subscription("added"));

    const got = (await b.sessions.get("c1"))!;
    got.record.expiryInterval = 1;
    got.record.subscriptions[1].filter = "mutated";
    got.record.subscriptions.length = 0;
    got.revision = revision + 10;

    const listed = (await b.sessions.list())[0];
    listed.protocolVersion = 3;
    listed.subscriptions[0].noLocal = true;

    const again = await b.sessions.get("c1");
    assert.equal(again?.revision, revision);
    assert.deepEqual(canon(again?.record), expected);
  });

  test("SessionStore keeps copies of the will message too", async (b) => {
    const given = fullSessionRecord("c1");
    const expected = canon(fullSessionRecord("c1"));
    await b.sessions.put(given, 0);
    given.will!.message.topic = "given/mutated";
    given.will!.message.qos = 0;
    given.will!.delayInterval = 1;

    const got = (await b.sessions.get("c1"))!;
    got.record.will!.message.topic = "got/mutated";
    got.record.will!.message.properties = undefined;
    got.record.will!.messageExpiryInterval = 1;

    assert.deepEqual(canon((await b.sessions.get("c1"))?.record), expected);
  });

  // ---- retained ------------------------------------------------------------------------------

  test("RetainedStore.set() stores a message get() returns", async (b) => {
    assert.equal(await b.retained.get("a/b"), undefined);
    const stored = message("a/b", "hello", {
      qos: 2,
      retain: true,
      properties: {
        payloadFormatIndicator: 1,
        contentType: "text/plain",
        responseTopic: "reply/here",
        correlationData: new Uint8Array([9, 8, 7]),
        userProperties: [["a", "1"], ["a", "2"]],
      },
      expiresAt: START + 60_000,
      origin: "pub",
    });
    await b.retained.set(stored);
    assertSameRecord(await b.retained.get("a/b"), stored);
    assert.equal(await b.retained.get("a"), undefined);
    assert.equal(await b.retained.get("a/b/c"), undefined);
  });

  test("RetainedStore.set() replaces the message of the same topic", async (b) => {
    await b.retained.set(message("a/b", "one", { retain: true }));
    await b.retained.set(message("a/b", "two", { retain: true, qos: 0 }));
    const got = await b.retained.get("a/b");
    assert.equal(decoder.decode(got?.payload), "two");
    assert.equal(got?.qos, 0);
    assert.equal(await b.retained.count(), 1);
    assert.deepEqual(text(await b.retained.match("a/+")), ["two"]);
  });

  test("RetainedStore.delete() removes a topic's message and reports whether it existed", async (b) => {
    await b.retained.set(message("a/b", "one", { retain: true }));
    await b.retained.set(message("a/c", "two", { retain: true }));
    assert.equal(await b.retained.delete("a/b"), true);
    assert.equal(await b.retained.get("a/b"), undefined);
    assert.equal(await b.retained.delete("a/b"), false);
    assert.equal(await b.retained.delete("never"), false);
    assert.equal(await b.retained.count(), 1);
    assert.deepEqual(topics(await b.retained.match("#")), ["a/c"]);
  });

  test("RetainedStore.match() matches exact and '+' filters level by level [MQTT-4.7.1-2]", async (b) => {
    for (
      const t of ["sport/tennis/player1", "sport/tennis/player2", "sport/golf", "sport", "/sport"]
    ) {
      await b.retained.set(message(t, t, { retain: true }));
    }
    await b.retained.set(message("sport/tennis/player1/ranking", "r", { retain: true }));
    assert.deepEqual(topics(await b.retained.match("sport/golf")), ["sport/golf"]);
    assert.deepEqual(topics(await b.retained.match("sport/golf/")), []);
    assert.deepEqual(topics(await b.retained.match("sport/+/player1")), ["sport/tennis/player1"]);
    assert.deepEqual(topics(await b.retained.match("sport/tennis/+")), [
      "sport/tennis/player1",
      "sport/tennis/player2",
    ]);
    assert.deepEqual(topics(await b.retained.match("sport/+")), ["sport/golf"]);
    assert.deepEqual(topics(await b.retained.match("+")), ["sport"]);
    assert.deepEqual(topics(await b.retained.match("+/+")), ["/sport", "sport/golf"]);
    assert.deepEqual(topics(await b.retained.match("+/sport")), ["/sport"]);
    assert.deepEqual(topics(await b.retained.match("nothing/+")), []);
  });

  test("RetainedStore.match() matches '#' filters, the parent level included [MQTT-4.7.1-2]", async (b) => {
    for (const t of ["sport", "sport/tennis", "sport/tennis/player1", "sports", "/x"]) {
      await b.retained.set(message(t, t, { retain: true }));
    }
    assert.deepEqual(topics(await b.retained.match("sport/#")), [
      "sport",
      "sport/tennis",
      "sport/tennis/player1",
    ]);
    assert.deepEqual(topics(await b.retained.match("sport/tennis/#")), [
      "sport/tennis",
      "sport/tennis/player1",
    ]);
    assert.deepEqual(topics(await b.retained.match("#")), [
      "/x",
      "sport",
      "sport/tennis",
      "sport/tennis/player1",
      "sports",
    ]);
    assert.deepEqual(topics(await b.retained.match("+/tennis/#")), [
      "sport/tennis",
      "sport/tennis/player1",
    ]);
  });

  test("RetainedStore.match() skips '$' topics for filters starting with a wildcard [MQTT-4.7.2-1]", async (b) => {
    for (const t of ["$SYS/broker/uptime", "$SYS", "$other/x", "normal/x"]) {
      await b.retained.set(message(t, t, { retain: true }));
    }
    assert.deepEqual(topics(await b.retained.match("#")), ["normal/x"]);
    assert.deepEqual(topics(await b.retained.match("+")), []);
    assert.deepEqual(topics(await b.retained.match("+/x")), ["normal/x"]);
    assert.deepEqual(topics(await b.retained.match("+/broker/uptime")), []);
    assert.deepEqual(topics(await b.retained.match("$SYS/#")), ["$SYS", "$SYS/broker/uptime"]);
    assert.deepEqual(topics(await b.retained.match("$SYS/+/uptime")), ["$SYS/broker/uptime"]);
    assert.deepEqual(topics(await b.retained.match("$other/x")), ["$other/x"]);
  });

  test("RetainedStore.get() and match() skip expired messages [MQTT-3.3.2-5]", async (b, clock) => {
    await b.retained.set(message("t/forever", "f", { retain: true, expiresAt: 0 }));
    await b.retained.set(message("t/soon", "s", { retain: true, expiresAt: START + 1_000 }));
    await b.retained.set(message("t/later", "l", { retain: true, expiresAt: START + 5_000 }));
    await b.retained.set(message("t/past", "p", { retain: true, expiresAt: START - 1 }));
    assert.equal(await b.retained.get("t/past"), undefined);
    assert.deepEqual(topics(await b.retained.match("t/#")), ["t/forever", "t/later", "t/soon"]);
    clock.advance(999);
    assert.equal((await b.retained.get("t/soon"))?.topic, "t/soon");
    // expiresAt <= now is expired.
    clock.advance(1);
    assert.equal(await b.retained.get("t/soon"), undefined);
    assert.deepEqual(topics(await b.retained.match("t/+")), ["t/forever", "t/later"]);
    assert.deepEqual(topics(await b.retained.match("t/soon")), []);
    clock.advance(1_000_000);
    assert.deepEqual(topics(await b.retained.match("#")), ["t/forever"]);
    assert.equal((await b.retained.get("t/forever"))?.topic, "t/forever");
  });

  test("RetainedStore.count() counts retained topics", async (b) => {
    assert.equal(await b.retained.count(), 0);
    await b.retained.set(message("a", "1", { retain: true }));
    await b.retained.set(message("b", "2", { retain: true }));
    await b.retained.set(message("a", "3", { retain: true }));
    assert.equal(await b.retained.count(), 2);
    await b.retained.delete("a");
    assert.equal(await b.retained.count(), 1);
    await b.retained.delete("b");
    assert.equal(await b.retained.count(), 0);
  });

  // ---- queues --------------------------------------------------------------------------------

  const roomy: QueueLimits = { maxMessages: 1000, maxBytes: 1 << 20 };

  test("QueueStore.take() returns messages oldest first (FIFO)", async (b) => {
    for (let i = 0; i < 20; i++) {
      assert.equal(await b.queues.push("c1", message("q", `m${i}`), roomy), undefined);
    }
    assert.deepEqual(
      text(await b.queues.take("c1", 100)),
      Array.from({ length: 20 }, (_, i) => `m${i}`),
    );
    assert.deepEqual(await b.queues.take("c1", 100), []);
  });

  test("QueueStore.push() keeps every field of the message", async (b) => {
    const queued = message("q/x", "payload", {
      qos: 2,
      retain: true,
      properties: {
        contentType: "application/json",
        correlationData: new Uint8Array([1, 2]),
        userProperties: [["trace", "abc"]],
      },
      expiresAt: START + 10_000,
      origin: "publisher",
    });
    await b.queues.push("c1", queued, roomy);
    const [taken] = await b.queues.take("c1", 1);
    assertSameRecord(taken, queued);
  });

  test("QueueStore.push() returns 'full' at maxMessages and keeps the queue intact", async (b) => {
    const limits = { maxMessages: 3, maxBytes: 1 << 20 };
    for (const p of ["a", "b", "c"]) {
      assert.equal(await b.queues.push("c1", message("q", p), limits), undefined);
    }
    assert.equal(await b.queues.push("c1", message("q", "d"), limits), "full");
    assert.deepEqual(await b.queues.size("c1"), { messages: 3, bytes: 3 });
    assert.deepEqual(text(await b.queues.take("c1", 1)), ["a"]);
    assert.equal(await b.queues.push("c1", message("q", "e"), limits), undefined);
    assert.equal(await b.queues.push("c1", message("q", "f"), limits), "full");
    assert.deepEqual(text(await b.queues.take("c1", 10)), ["b", "c", "e"]);
  });

  test("QueueStore.push() returns 'full' past maxBytes of payload and keeps the queue intact", async (b) => {
    const limits = { maxMessages: 100, maxBytes: 10 };
    assert.equal(await b.queues.push("c1", message("q", "123456"), limits), undefined);
    assert.equal(await b.queues.push("c1", message("q", "1234567"), limits), "full");
    // Exactly maxBytes fits.
    assert.equal(await b.queues.push("c1", message("q", "abcd"), limits), undefined);
    assert.equal(await b.queues.push("c1", message("q", "x"), limits), "full");
    assert.deepEqual(await b.queues.size("c1"), { messages: 2, bytes: 10 });
    assert.deepEqual(text(await b.queues.take("c1", 10)), ["123456", "abcd"]);
    assert.equal(await b.queues.push("c1", message("q", "0123456789"), limits), undefined);
  });

  test("QueueStore.take() takes at most max messages from the head", async (b) => {
    for (const p of ["a", "b", "c", "d", "e"]) await b.queues.push("c1", message("q", p), roomy);
    assert.deepEqual(text(await b.queues.take("c1", 2)), ["a", "b"]);
    assert.deepEqual(await b.queues.size("c1"), { messages: 3, bytes: 3 });
    assert.deepEqual(await b.queues.take("c1", 0), []);
    assert.deepEqual(text(await b.queues.take("c1", 1)), ["c"]);
    await b.queues.push("c1", message("q", "f"), roomy);
    assert.deepEqual(text(await b.queues.take("c1", 10)), ["d", "e", "f"]);
    assert.deepEqual(await b.queues.take("unknown", 10), []);
  });

  test("QueueStore.size() counts queued messages and payload bytes", async (b) => {
    assert.deepEqual(await b.queues.size("c1"), { messages: 0, bytes: 0 });
    await b.queues.push("c1", message("q", "12345"), roomy);
    await b.queues.push("c1", message("q", ""), roomy);
    await b.queues.push("c1", message("q", "123"), roomy);
    assert.deepEqual(await b.queues.size("c1"), { messages: 3, bytes: 8 });
    await b.queues.take("c1", 1);
    assert.deepEqual(await b.queues.size("c1"), { messages: 2, bytes: 3 });
    await b.queues.take("c1", 2);
    assert.deepEqual(await b.queues.size("c1"), { messages: 0, bytes: 0 });
  });

  test("QueueStore.drop() empties a session's queue", async (b) => {
    await b.queues.push("c1", message("q", "a"), roomy);
    await b.queues.push("c1", message("q", "b"), roomy);
    await b.queues.drop("c1");
    assert.deepEqual(await b.queues.size("c1"), { messages: 0, bytes: 0 });
    assert.deepEqual(await b.queues.take("c1", 10), []);
    await b.queues.drop("c1");
    await b.queues.drop("never");
    // The limits start from zero again.
    const limits = { maxMessages: 1, maxBytes: 1 };
    assert.equal(await b.queues.push("c1", message("q", "c"), limits), undefined);
    assert.deepEqual(text(await b.queues.take("c1", 10)), ["c"]);
  });

  test("QueueStore keeps one independent queue per client id", async (b) => {
    const limits = { maxMessages: 2, maxBytes: 100 };
    await b.queues.push("c1", message("q", "1a"), limits);
    await b.queues.push("c2", message("q", "2a"), limits);
    await b.queues.push("c1", message("q", "1b"), limits);
    await b.queues.push("c2", message("q", "2b"), limits);
    assert.equal(await b.queues.push("c1", message("q", "1c"), limits), "full");
    assert.equal(await b.queues.push("c3", message("q", "3a"), limits), undefined);
    assert.deepEqual(text(await b.queues.take("c2", 1)), ["2a"]);
    await b.queues.drop("c3");
    assert.deepEqual(await b.queues.size("c1"), { messages: 2, bytes: 4 });
    assert.deepEqual(await b.queues.size("c2"), { messages: 1, bytes: 2 });
    assert.deepEqual(text(await b.queues.take("c1", 10)), ["1a", "1b"]);
    assert.deepEqual(text(await b.queues.take("c2", 10)), ["2b"]);
  });

  // ---- bus -----------------------------------------------------------------------------------

  test("MessageBus delivers a published message after addInterest() on a matching filter", async (b) => {
    const received: Message[] = [];
    const waiter = new Waiter();
    b.bus.listen((m) => {
      if (m.topic.startsWith("bus/")) {
        received.push(m);
        waiter.notify();
      }
    });
    await b.bus.addInterest("bus/+/temp");
    const published = message("bus/kitchen/temp", "21.5", {
      qos: 1,
      properties: { contentType: "text/plain", userProperties: [["unit", "C"]] },
      origin: "sensor-1",
    });
    await b.bus.publish(published);
    await waiter.until(() => received.length >= 1, "the published message");
    assert.equal(received.length, 1);
    assertSameRecord(received[0], published);
  });

  test("MessageBus interest is reference counted: one removeInterest() keeps delivery", async (b) => {
    const received: string[] = [];
    const waiter = new Waiter();
    b.bus.listen((m) => {
      if (m.topic.startsWith("refs/")) {
        received.push(decoder.decode(m.payload));
        waiter.notify();
      }
    });
    await b.bus.addInterest("refs/#");
    await b.bus.addInterest("refs/#");
    await b.bus.addInterest("refs/exact");
    await b.bus.removeInterest("refs/#");
    await b.bus.publish(message("refs/a/b", "one"));
    await waiter.until(() => received.length >= 1, "the first message");
    await b.bus.addInterest("refs/#");
    await b.bus.removeInterest("refs/#");
    await b.bus.publish(message("refs/a/c", "two"));
    await waiter.until(() => received.length >= 2, "the second message");
    assert.deepEqual(received, ["one", "two"]);
  });

  // ---- config --------------------------------------------------------------------------------

  test("ConfigStore.put(), get() and delete() keep one value per key", async (b) => {
    assert.equal(await b.config.get("users/alice"), undefined);
    await b.config.put("users/alice", encoder.encode("v1"));
    await b.config.put("users/bob", encoder.encode("b1"));
    assert.equal(decoder.decode(await b.config.get("users/alice")), "v1");
    await b.config.put("users/alice", encoder.encode("v2"));
    assert.equal(decoder.decode(await b.config.get("users/alice")), "v2");
    await b.config.delete("users/alice");
    assert.equal(await b.config.get("users/alice"), undefined);
    assert.equal(decoder.decode(await b.config.get("users/bob")), "b1");
    await b.config.delete("users/never");
  });

  test("ConfigStore.put() keeps a copy of the value", async (b) => {
    const value = encoder.encode("abc");
    await b.config.put("k", value);
    value[0] = 0x78;
    assert.equal(decoder.decode(await b.config.get("k")), "abc");
  });

  test("ConfigStore.get() returns a value the caller may change without changing the store", async (b) => {
    await b.config.put("k", encoder.encode("abc"));
    const got = (await b.config.get("k"))!;
    got[0] = 0x78;
    assert.equal(decoder.decode(await b.config.get("k")), "abc");
  });

  test("ConfigStore.watch() sees puts and deletes", async (b) => {
    const seen: [string, string | undefined][] = [];
    const waiter = new Waiter();
    const stop = b.config.watch((key, value) => {
      if (!key.startsWith("acl/")) return;
      seen.push([key, value === undefined ? undefined : decoder.decode(value)]);
      waiter.notify();
    });
    try {
      await b.config.put("acl/rule1", encoder.encode("allow"));
      await waiter.until(() => seen.length >= 1, "the put");
      await b.config.put("acl/rule1", encoder.encode("deny"));
      await waiter.until(() => seen.length >= 2, "the replacing put");
      await b.config.delete("acl/rule1");
      await waiter.until(() => seen.length >= 3, "the delete");
      assert.deepEqual(seen, [
        ["acl/rule1", "allow"],
        ["acl/rule1", "deny"],
        ["acl/rule1", undefined],
      ]);
    } finally {
      stop();
    }
  });

  test("ConfigStore.watch() returns an unsubscribe that stops notifications", async (b) => {
    const stopped: string[] = [];
    const live: string[] = [];
    const waiter = new Waiter();
    const stop = b.config.watch((key) => {
      if (key.startsWith("w/")) stopped.push(key);
    });
    const stopLive = b.config.watch((key) => {
      if (!key.startsWith("w/")) return;
      live.push(key);
      waiter.notify();
    });
    try {
      await b.config.put("w/1", encoder.encode("1"));
      await waiter.until(() => live.length >= 1 && stopped.length >= 1, "both watchers");
      stop();
      await b.config.put("w/2", encoder.encode("2"));
      await b.config.put("w/3", encoder.encode("3"));
      // The live watcher saw both changes, so the stopped one would have been called by now.
      await waiter.until(() => live.length >= 3, "the live watcher");
      assert.deepEqual(live, ["w/1", "w/2", "w/3"]);
      assert.deepEqual(stopped, ["w/1"]);
      stop();
    } finally {
      stopLive();
    }
  });
}
