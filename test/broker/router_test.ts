import assert from "node:assert/strict";
import type { Message, SubscriptionRecord } from "../../src/backbone/backbone.ts";
import { MqttError } from "../../src/codec/errors.ts";
import type { QoS } from "../../src/codec/packets.ts";
import { type DeliveryTarget, Router, type SharedSubscription } from "../../src/broker/router.ts";
import { Session } from "../../src/session/session.ts";

/** One `deliver()` call, flattened for comparisons. */
interface Delivery {
  client: string;
  topic: string;
  payload: string;
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[] | undefined;
  group: SharedSubscription | undefined;
}

/**
 * A delivery target that records every call. Sessions are offline until put in `online`; an online
 * session can send at once unless it is in `windowFull` (no QoS 1/2 right now) or `stalled`
 * (nothing right now, e.g. its write buffer is over the limit).
 */
class RecordingTarget implements DeliveryTarget {
  readonly deliveries: Delivery[] = [];
  readonly online: Set<Session> = new Set();
  readonly windowFull: Set<Session> = new Set();
  readonly stalled: Set<Session> = new Set();
  /** Congestion notices for shared groups, in order. */
  readonly congestion: ["congested" | "drained", SharedSubscription][] = [];
  /** Called after each delivery is recorded (to route or unsubscribe from inside a route). */
  onDeliver: ((delivery: Delivery) => void) | undefined = undefined;

  deliver(
    session: Session,
    message: Message,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    group: SharedSubscription | undefined,
  ): void {
    const delivery: Delivery = {
      client: session.clientId,
      topic: message.topic,
      payload: new TextDecoder().decode(message.payload),
      qos,
      retain,
      subscriptionIds: subscriptionIds && [...subscriptionIds],
      group,
    };
    this.deliveries.push(delivery);
    this.onDeliver?.(delivery);
  }

  canSendNow(session: Session, qos: QoS): boolean {
    if (!this.online.has(session) || this.stalled.has(session)) return false;
    return qos === 0 || !this.windowFull.has(session);
  }

  isOnline(session: Session): boolean {
    return this.online.has(session);
  }

  congested(group: SharedSubscription): void {
    this.congestion.push(["congested", group]);
  }

  drained(group: SharedSubscription): void {
    this.congestion.push(["drained", group]);
  }

  /** Deliveries since the last call, then forgets them. */
  take(): Delivery[] {
    return this.deliveries.splice(0);
  }

  /** Client ids of the deliveries since the last call. */
  takeClients(): string[] {
    return this.take().map((d) => d.client);
  }
}

function message(topic: string, overrides: Partial<Message> = {}): Message {
  return {
    topic,
    payload: new TextEncoder().encode(overrides.origin ?? topic),
    qos: 1,
    retain: false,
    properties: undefined,
    expiresAt: 0,
    origin: "publisher",
    ...overrides,
  };
}

function sub(filter: string, overrides: Partial<SubscriptionRecord> = {}): SubscriptionRecord {
  return {
    filter,
    qos: 2,
    noLocal: false,
    retainAsPublished: false,
    retainHandling: 0,
    subscriptionId: 0,
    ...overrides,
  };
}

function setup(maxSharedPending = 100): { target: RecordingTarget; router: Router } {
  const target = new RecordingTarget();
  return { target, router: new Router(target, { maxSharedPending }) };
}

/** A session, online unless told otherwise. */
function session(target: RecordingTarget, clientId: string, online = true): Session {
  const s = new Session(clientId, 5, 0);
  if (online) target.online.add(s);
  return s;
}

/** Subscribes the way the broker does: the session's own table and the router's. */
function subscribe(router: Router, s: Session, record: SubscriptionRecord): boolean {
  s.subscribe(record);
  return router.add(s, record);
}

function unsubscribe(router: Router, s: Session, filter: string): boolean {
  s.unsubscribe(filter);
  return router.remove(s, filter);
}

// ---- plain subscriptions ---------------------------------------------------------------------

Deno.test("Router.route() delivers to exact and wildcard subscriptions [MQTT-4.7.1-2]", () => {
  const { target, router } = setup();
  const filters = ["a/b", "a/+", "a/#", "#", "+/b", "+/+", "a/b/c", "a", "b/#", "+"];
  for (const filter of filters) subscribe(router, session(target, filter), sub(filter));
  assert.equal(router.route(message("a/b")), 6);
  assert.deepEqual(target.takeClients().sort(), ["#", "+/+", "+/b", "a/#", "a/+", "a/b"]);
  assert.equal(router.lastDeliveries, 6);
  assert.equal(router.route(message("a")), 4);
  assert.deepEqual(target.takeClients().sort(), ["#", "+", "a", "a/#"]);
  assert.equal(router.route(message("c/d/e")), 1);
  assert.deepEqual(target.takeClients(), ["#"]);
  assert.equal(router.route(message("b")), 3);
  assert.deepEqual(target.takeClients().sort(), ["#", "+", "b/#"]);
});

Deno.test("Router.route() returns 0 and delivers nothing when no subscription matches", () => {
  const { target, router } = setup();
  subscribe(router, session(target, "s"), sub("x/y"));
  router.route(message("x/y"));
  target.take();
  assert.equal(router.route(message("x/z")), 0);
  assert.equal(router.lastDeliveries, 0);
  assert.deepEqual(target.deliveries, []);
});

Deno.test("Router.route() does not match '$' topics with leading wildcards [MQTT-4.7.2-1]", () => {
  const { target, router } = setup();
  for (const filter of ["#", "+/monitor/Clients", "$SYS/#", "$SYS/monitor/+"]) {
    subscribe(router, session(target, filter), sub(filter));
  }
  assert.equal(router.route(message("$SYS/monitor/Clients")), 2);
  assert.deepEqual(target.takeClients().sort(), ["$SYS/#", "$SYS/monitor/+"]);
});

Deno.test("Router.route() delivers at the lower of message and granted QoS [MQTT-3.8.4-8]", () => {
  const { target, router } = setup();
  const levels: QoS[] = [0, 1, 2];
  for (const granted of levels) {
    subscribe(router, session(target, `g${granted}`), sub("t", { qos: granted }));
  }
  for (const published of levels) {
    router.route(message("t", { qos: published }));
    const got = target.take().map((d) => [d.client, d.qos]).sort();
    assert.deepEqual(got, levels.map((g) => [`g${g}`, Math.min(g, published)]));
  }
});

Deno.test("Router.route() passes the subscription identifier and no group", () => {
  const { target, router } = setup();
  subscribe(router, session(target, "with"), sub("t", { subscriptionId: 42 }));
  subscribe(router, session(target, "without"), sub("t"));
  router.route(message("t"));
  const byClient = Object.fromEntries(target.take().map((d) => [d.client, d]));
  assert.deepEqual(byClient.with.subscriptionIds, [42]);
  assert.equal(byClient.without.subscriptionIds, undefined);
  assert.equal(byClient.with.group, undefined);
});

Deno.test("Router.add() replaces a session's subscription to the same filter [MQTT-3.8.4-3]", () => {
  const { target, router } = setup();
  const s = session(target, "s");
  assert.equal(subscribe(router, s, sub("t", { qos: 0 })), true);
  assert.equal(subscribe(router, s, sub("t", { qos: 2, subscriptionId: 3 })), false);
  assert.equal(router.size, 1);
  assert.equal(router.route(message("t", { qos: 2 })), 1);
  const [d] = target.take();
  assert.equal(d.qos, 2);
  assert.deepEqual(d.subscriptionIds, [3]);
});

Deno.test("Router.route() sends one copy for overlapping subscriptions at the highest QoS [MQTT-3.3.4-2]", () => {
  const { target, router } = setup();
  const s = session(target, "s");
  const other = session(target, "other");
  subscribe(router, s, sub("a/+", { qos: 0 }));
  subscribe(router, s, sub("a/#", { qos: 2 }));
  subscribe(router, s, sub("a/b", { qos: 1 }));
  subscribe(router, other, sub("#", { qos: 1 }));
  assert.equal(router.route(message("a/b", { qos: 2 })), 2);
  const got = target.take().sort((x, y) => x.client.localeCompare(y.client));
  assert.deepEqual(got.map((d) => [d.client, d.qos]), [["other", 1], ["s", 2]]);
  assert.equal(router.route(message("a/b", { qos: 1 })), 2);
  assert.deepEqual(target.take().map((d) => d.qos), [1, 1]);
  // Only "a/+" and "a/#" match here: one copy at QoS 2.
  assert.equal(router.route(message("a/c", { qos: 2 })), 2);
  assert.deepEqual(target.take().filter((d) => d.client === "s").map((d) => d.qos), [2]);
});

Deno.test("Router.route() puts every matching subscription identifier on the one copy [MQTT-3.3.4-3] [MQTT-3.3.4-4]", () => {
  const { target, router } = setup();
  const s = session(target, "s");
  subscribe(router, s, sub("a/+", { qos: 0, subscriptionId: 1 }));
  subscribe(router, s, sub("a/#", { qos: 1, subscriptionId: 2 }));
  subscribe(router, s, sub("+/b", { qos: 1 }));
  subscribe(router, s, sub("#", { qos: 0, subscriptionId: 2 }));
  assert.equal(router.route(message("a/b")), 1);
  const [d] = target.take();
  assert.equal(d.qos, 1);
  // The order is not significant; a repeated identifier is repeated.
  assert.deepEqual(d.subscriptionIds?.sort(), [1, 2, 2]);
});

Deno.test("Router.route() gives overlapping subscriptions without identifiers none", () => {
  const { target, router } = setup();
  const s = session(target, "s");
  subscribe(router, s, sub("a/+"));
  subscribe(router, s, sub("a/#"));
  router.route(message("a/b"));
  assert.deepEqual(target.take().map((d) => d.subscriptionIds), [undefined]);
});

Deno.test("Router.route() does not send to the publisher on a No Local subscription [MQTT-3.8.3-3]", () => {
  const { target, router } = setup();
  const me = session(target, "me");
  const peer = session(target, "peer");
  subscribe(router, me, sub("chat", { noLocal: true }));
  subscribe(router, peer, sub("chat", { noLocal: true }));
  assert.equal(router.route(message("chat", { origin: "me" })), 1);
  assert.deepEqual(target.takeClients(), ["peer"]);
  assert.equal(router.route(message("chat", { origin: "peer" })), 1);
  assert.deepEqual(target.takeClients(), ["me"]);
  assert.equal(router.route(message("chat", { origin: "" })), 2);
});

Deno.test("Router.route() applies No Local per overlapping subscription [MQTT-3.8.3-3]", () => {
  const { target, router } = setup();
  const me = session(target, "me");
  subscribe(router, me, sub("a/+", { noLocal: true, qos: 2, subscriptionId: 1 }));
  subscribe(router, me, sub("a/#", { noLocal: false, qos: 1, subscriptionId: 2 }));
  assert.equal(router.route(message("a/b", { origin: "me", qos: 2 })), 1);
  const [d] = target.take();
  assert.equal(d.qos, 1);
  assert.deepEqual(d.subscriptionIds, [2]);

  const { target: t2, router: r2 } = setup();
  const only = session(t2, "me");
  subscribe(r2, only, sub("a/+", { noLocal: true }));
  subscribe(r2, only, sub("a/#", { noLocal: true }));
  assert.equal(r2.route(message("a/b", { origin: "me" })), 0);
  assert.equal(r2.lastDeliveries, 0);
  assert.deepEqual(t2.deliveries, []);
});

Deno.test("Router.route() clears RETAIN unless Retain As Published [MQTT-3.3.1-12] [MQTT-3.3.1-13]", () => {
  const { target, router } = setup();
  subscribe(router, session(target, "rap"), sub("t", { retainAsPublished: true }));
  subscribe(router, session(target, "plain"), sub("t", { retainAsPublished: false }));
  router.route(message("t", { retain: true }));
  assert.deepEqual(
    target.take().map((d) => [d.client, d.retain]).sort(),
    [["plain", false], ["rap", true]],
  );
  router.route(message("t", { retain: false }));
  assert.deepEqual(target.take().map((d) => d.retain), [false, false]);
});

Deno.test("Router.route() keeps RETAIN on an overlapping copy when one subscription is Retain As Published [MQTT-3.3.1-13]", () => {
  const { target, router } = setup();
  const s = session(target, "s");
  subscribe(router, s, sub("t/+", { retainAsPublished: false }));
  subscribe(router, s, sub("t/#", { retainAsPublished: true }));
  router.route(message("t/x", { retain: true }));
  assert.deepEqual(target.take().map((d) => d.retain), [true]);
});

// ---- removal and size ------------------------------------------------------------------------

Deno.test("Router.remove() removes subscriptions and size returns to 0", () => {
  const { target, router } = setup();
  const a = session(target, "a");
  const b = session(target, "b");
  assert.equal(router.size, 0);
  subscribe(router, a, sub("x/+"));
  subscribe(router, a, sub("x/#"));
  subscribe(router, b, sub("x/+"));
  subscribe(router, a, sub("$share/g/x/+"));
  subscribe(router, b, sub("$share/g/x/+"));
  subscribe(router, b, sub("$queue/x/y"));
  assert.equal(router.size, 6);
  // Re-subscribing does not count twice.
  subscribe(router, b, sub("$share/g/x/+", { qos: 1 }));
  subscribe(router, a, sub("x/+", { qos: 1 }));
  assert.equal(router.size, 6);

  assert.equal(unsubscribe(router, a, "x/+"), true);
  assert.equal(unsubscribe(router, a, "x/+"), false);
  assert.equal(unsubscribe(router, a, "never"), false);
  assert.equal(unsubscribe(router, a, "$share/other/x/+"), false);
  assert.equal(router.size, 5);
  for (const [s, filter] of [[a, "x/#"], [b, "x/+"], [a, "$share/g/x/+"]] as const) {
    assert.equal(unsubscribe(router, s, filter), true, filter);
  }
  assert.equal(unsubscribe(router, b, "$share/g/x/+"), true);
  assert.equal(unsubscribe(router, b, "$queue/x/y"), true);
  assert.equal(router.size, 0);
  assert.equal(router.sharedGroup("$share/g/x/+"), undefined);
  assert.equal(router.route(message("x/y")), 0);
  assert.deepEqual(target.deliveries, []);
});

Deno.test("Router.add() rejects a malformed shared filter with 0x8F [MQTT-4.8.2-2]", () => {
  const { target, router } = setup();
  const s = session(target, "s");
  assert.throws(() => router.add(s, sub("$share/g")), (error: unknown) => {
    assert.ok(error instanceof MqttError);
    assert.equal(error.reasonCode, 0x8f);
    return true;
  });
  assert.equal(router.size, 0);
  assert.equal(router.remove(s, "$share/g"), false);
});

// ---- shared subscriptions --------------------------------------------------------------------

Deno.test("Router.route() sends each message to one member of a shared group, round robin", () => {
  const { target, router } = setup();
  const members = ["a", "b", "c"].map((id) => session(target, id));
  for (const m of members) subscribe(router, m, sub("$share/g/jobs/+"));
  const plain = session(target, "plain");
  subscribe(router, plain, sub("jobs/#"));
  for (let i = 0; i < 6; i++) {
    assert.equal(router.route(message(`jobs/${i}`, { qos: i % 2 as QoS })), 2);
  }
  const got = target.take();
  assert.deepEqual(got.filter((d) => d.client === "plain").length, 6);
  assert.deepEqual(
    got.filter((d) => d.client !== "plain").map((d) => d.client),
    ["a", "b", "c", "a", "b", "c"],
  );
});

Deno.test("Router.route() gives each shared group its own copy", () => {
  const { target, router } = setup();
  subscribe(router, session(target, "g1a"), sub("$share/g1/t"));
  subscribe(router, session(target, "g1b"), sub("$share/g1/t"));
  subscribe(router, session(target, "g2a"), sub("$share/g2/t"));
  assert.equal(router.route(message("t")), 2);
  assert.deepEqual(target.takeClients().sort(), ["g1a", "g2a"]);
  assert.equal(router.route(message("t")), 2);
  assert.deepEqual(target.takeClients().sort(), ["g1b", "g2a"]);
});

Deno.test("Router.route() passes the shared group with QoS 1/2 deliveries only", () => {
  const { target, router } = setup();
  const a = session(target, "a");
  subscribe(router, a, sub("$share/g/t", { subscriptionId: 5 }));
  const group = router.sharedGroup("$share/g/t");
  assert.ok(group);
  assert.equal(group.name, "g");
  assert.equal(group.filter, "t");
  router.route(message("t", { qos: 1 }));
  router.route(message("t", { qos: 0 }));
  const [q1, q0] = target.take();
  assert.equal(q1.group, group);
  assert.deepEqual(q1.subscriptionIds, [5]);
  assert.equal(q0.group, undefined);
});

Deno.test("Router.route() respects each shared member's granted QoS [MQTT-4.8.2-3]", () => {
  const { target, router } = setup();
  subscribe(router, session(target, "q0"), sub("$share/g/t", { qos: 0 }));
  subscribe(router, session(target, "q2"), sub("$share/g/t", { qos: 2 }));
  router.route(message("t", { qos: 2 }));
  router.route(message("t", { qos: 2 }));
  assert.deepEqual(target.take().map((d) => [d.client, d.qos]), [["q0", 0], ["q2", 2]]);
});

Deno.test("Router.route() clears RETAIN for shared members unless Retain As Published [MQTT-3.3.1-12]", () => {
  const { target, router } = setup();
  subscribe(router, session(target, "a"), sub("$share/g/t"));
  subscribe(router, session(target, "b"), sub("$share/g/t", { retainAsPublished: true }));
  router.route(message("t", { retain: true }));
  router.route(message("t", { retain: true }));
  assert.deepEqual(target.take().map((d) => [d.client, d.retain]), [["a", false], ["b", true]]);
});

Deno.test("Router.route() prefers shared members that can send now", () => {
  const { target, router } = setup();
  const [a, b, c] = ["a", "b", "c"].map((id) => session(target, id));
  for (const m of [a, b, c]) subscribe(router, m, sub("$share/g/t"));
  target.windowFull.add(b);
  for (let i = 0; i < 4; i++) router.route(message("t", { qos: 1 }));
  assert.deepEqual(target.takeClients(), ["a", "c", "a", "c"]);
  // An offline member is skipped too.
  target.online.delete(a);
  for (let i = 0; i < 2; i++) router.route(message("t", { qos: 2 }));
  assert.deepEqual(target.takeClients(), ["c", "c"]);
});

Deno.test("Router.route() drops a shared QoS 0 message when no member is online", () => {
  const { target, router } = setup();
  const a = session(target, "a", false);
  const b = session(target, "b", false);
  subscribe(router, a, sub("$share/g/t"));
  subscribe(router, b, sub("$share/g/t"));
  assert.equal(router.route(message("t", { qos: 0 })), 0);
  assert.equal(router.lastDeliveries, 0);
  assert.deepEqual(target.deliveries, []);
  assert.equal(router.sharedGroup("$share/g/t")?.pending.length, 0);
  // Coming online later does not bring it back.
  target.online.add(a);
  router.pumpSharedFor(a);
  assert.deepEqual(target.deliveries, []);
});

Deno.test("Router.route() sends a shared QoS 0 message to an online member that cannot send now", () => {
  const { target, router } = setup();
  const a = session(target, "a", false);
  const b = session(target, "b");
  subscribe(router, a, sub("$share/g/t"));
  subscribe(router, b, sub("$share/g/t"));
  target.stalled.add(b);
  assert.equal(router.route(message("t", { qos: 0 })), 1);
  assert.deepEqual(target.take().map((d) => [d.client, d.qos]), [["b", 0]]);
});

Deno.test("Router.route() holds shared QoS 1 messages until a member frees up (pumpSharedFor)", () => {
  const { target, router } = setup();
  const a = session(target, "a");
  const b = session(target, "b", false);
  subscribe(router, a, sub("$share/g/t"));
  subscribe(router, b, sub("$share/g/t"));
  target.windowFull.add(a);
  const group = router.sharedGroup("$share/g/t")!;
  for (const p of ["m1", "m2", "m3"]) {
    assert.equal(router.route(message("t", { qos: 1, origin: p })), 1);
  }
  assert.deepEqual(target.deliveries, []);
  assert.equal(group.pending.length, 3);
  // Still full: pumping delivers nothing.
  router.pumpSharedFor(a);
  assert.equal(group.pending.length, 3);
  // A QoS 0 message is not held behind them.
  router.route(message("t", { qos: 0, origin: "zero" }));
  assert.deepEqual(target.take().map((d) => d.payload), ["zero"]);

  target.windowFull.delete(a);
  router.pumpSharedFor(a);
  assert.equal(group.pending.length, 0);
  const got = target.take();
  assert.deepEqual(got.map((d) => [d.client, d.payload, d.qos]), [
    ["a", "m1", 1],
    ["a", "m2", 1],
    ["a", "m3", 1],
  ]);
  assert.ok(got.every((d) => d.group === group));
});

Deno.test("Router.route() keeps shared QoS 1 messages in order behind held ones", () => {
  const { target, router } = setup();
  const a = session(target, "a");
  subscribe(router, a, sub("$share/g/t"));
  target.windowFull.add(a);
  router.route(message("t", { origin: "m1" }));
  target.windowFull.delete(a);
  // m1 is still held (nobody pumped), so m2 must not overtake it.
  router.route(message("t", { origin: "m2" }));
  assert.deepEqual(target.take().map((d) => d.payload), ["m1", "m2"]);
});

Deno.test("Router.add() hands held shared messages to a new member", () => {
  const { target, router } = setup();
  const a = session(target, "a", false);
  subscribe(router, a, sub("$share/g/t"));
  router.route(message("t", { qos: 2, origin: "held" }));
  assert.deepEqual(target.deliveries, []);
  const b = session(target, "b");
  subscribe(router, b, sub("$share/g/t", { qos: 1 }));
  assert.deepEqual(target.take().map((d) => [d.client, d.payload, d.qos]), [["b", "held", 1]]);
});

Deno.test("Router.route() drops shared messages past maxSharedPending and counts them", () => {
  const { target, router } = setup(2);
  const a = session(target, "a", false);
  subscribe(router, a, sub("$share/g/t"));
  for (const p of ["m1", "m2", "m3", "m4"]) router.route(message("t", { origin: p }));
  assert.equal(router.sharedDropped, 2);
  target.online.add(a);
  router.pumpSharedFor(a);
  assert.deepEqual(target.take().map((d) => d.payload), ["m1", "m2"]);
});

Deno.test("Router.requeueShared() sends a message back out to another member", () => {
  const { target, router } = setup();
  const a = session(target, "a");
  const b = session(target, "b");
  subscribe(router, a, sub("$share/g/t"));
  subscribe(router, b, sub("$share/g/t"));
  router.route(message("t", { qos: 1, origin: "job" }));
  const [first] = target.take();
  assert.equal(first.client, "a");
  assert.ok(first.group);
  // "a" disconnects before acknowledging; the broker hands the message back.
  target.online.delete(a);
  router.requeueShared(first.group, message("t", { qos: 1, origin: "job" }));
  assert.deepEqual(target.take().map((d) => [d.client, d.payload]), [["b", "job"]]);
});

Deno.test("Router.requeueShared() holds the message while no member can take it", () => {
  const { target, router } = setup();
  const a = session(target, "a");
  subscribe(router, a, sub("$share/g/t"));
  router.route(message("t", { origin: "job" }));
  const [first] = target.take();
  target.online.delete(a);
  router.requeueShared(first.group!, message("t", { origin: "job" }));
  assert.deepEqual(target.deliveries, []);
  assert.equal(first.group!.pending.length, 1);
  target.online.add(a);
  router.pumpSharedFor(a);
  assert.deepEqual(target.take().map((d) => [d.client, d.payload]), [["a", "job"]]);
});

Deno.test("Router handles legacy '$queue/{filter}' as the '$queue' shared group", () => {
  const { target, router } = setup();
  const a = session(target, "a");
  const b = session(target, "b");
  subscribe(router, a, sub("$queue/jobs/#"));
  subscribe(router, b, sub("$share/$queue/jobs/#"));
  const group = router.sharedGroup("$queue/jobs/#");
  assert.ok(group);
  assert.equal(group, router.sharedGroup("$share/$queue/jobs/#"));
  assert.equal(group.name, "$queue");
  assert.equal(group.filter, "jobs/#");
  for (let i = 0; i < 4; i++) assert.equal(router.route(message("jobs/x")), 1);
  assert.deepEqual(target.takeClients(), ["a", "b", "a", "b"]);
  assert.equal(unsubscribe(router, a, "$queue/jobs/#"), true);
  router.route(message("jobs/y"));
  assert.deepEqual(target.takeClients(), ["b"]);
});

Deno.test("Router.remove() of the last shared member ends the group and its held messages", () => {
  // MQTT 5.0 section 4.8.2: a Shared Subscription ends, and its undelivered messages are
  // deleted, when no Session is subscribed to it any more.
  const { target, router } = setup();
  const a = session(target, "a", false);
  subscribe(router, a, sub("$share/g/t"));
  router.route(message("t", { qos: 1, origin: "held" }));
  assert.equal(unsubscribe(router, a, "$share/g/t"), true);
  assert.equal(router.size, 0);
  // Nobody subscribes to "t" any more: a QoS 1 message has no matching subscriber.
  assert.equal(router.route(message("t", { qos: 1, origin: "later" })), 0);
  assert.equal(router.lastDeliveries, 0);
  assert.equal(router.sharedGroup("$share/g/t"), undefined, "the group still exists");
  // A new group of the same name starts empty.
  const b = session(target, "b");
  subscribe(router, b, sub("$share/g/t"));
  assert.deepEqual(target.take().map((d) => d.payload), []);
});

// ---- re-entrancy -----------------------------------------------------------------------------

Deno.test("Router.route() survives a nested route from inside a delivery", () => {
  const { target, router } = setup();
  const subscribers = Array.from({ length: 6 }, (_, i) => session(target, `s${i}`));
  for (const s of subscribers) subscribe(router, s, sub("outer/#"));
  subscribe(router, session(target, "will-watcher-1"), sub("wills/+"));
  subscribe(router, session(target, "will-watcher-2"), sub("wills/#"));
  let nested = -1;
  target.onDeliver = (d) => {
    if (d.client === "s1" && d.topic === "outer/x") {
      // Delivering to s1 closes some connection whose will goes out at once.
      nested = router.route(message("wills/s9", { origin: "will" }));
      assert.equal(router.lastDeliveries, 2);
    }
  };
  assert.equal(router.route(message("outer/x")), 6);
  assert.equal(nested, 2);
  assert.equal(router.lastDeliveries, 6);
  const got = target.take();
  assert.deepEqual(
    got.filter((d) => d.topic === "outer/x").map((d) => d.client).sort(),
    ["s0", "s1", "s2", "s3", "s4", "s5"],
  );
  assert.deepEqual(
    got.filter((d) => d.topic === "wills/s9").map((d) => d.client).sort(),
    ["will-watcher-1", "will-watcher-2"],
  );
  // The router still works afterwards.
  target.onDeliver = undefined;
  assert.equal(router.route(message("outer/y")), 6);
});

Deno.test("Router.route() survives a nested route during an overlapping delivery", () => {
  const { target, router } = setup();
  const a = session(target, "a");
  const b = session(target, "b");
  subscribe(router, a, sub("t/+", { qos: 0, subscriptionId: 1 }));
  subscribe(router, a, sub("t/#", { qos: 1, subscriptionId: 2 }));
  subscribe(router, b, sub("t/+", { qos: 2, subscriptionId: 3 }));
  subscribe(router, b, sub("#", { qos: 0, subscriptionId: 4 }));
  let fired = false;
  target.onDeliver = () => {
    if (fired) return;
    fired = true;
    // The nested message matches the same sessions, overlapping too.
    assert.equal(router.route(message("t/nested", { qos: 2 })), 2);
  };
  assert.equal(router.route(message("t/outer", { qos: 2 })), 2);
  const outer = target.deliveries.filter((d) => d.topic === "t/outer")
    .map((d) => [d.client, d.qos, d.subscriptionIds?.sort()]).sort();
  const nested = target.deliveries.filter((d) => d.topic === "t/nested")
    .map((d) => [d.client, d.qos, d.subscriptionIds?.sort()]).sort();
  const expected = [["a", 1, [1, 2]], ["b", 2, [3, 4]]];
  assert.deepEqual(outer, expected);
  assert.deepEqual(nested, expected);
});

Deno.test("Router.route() is not disturbed by a delivery that unsubscribes sessions", () => {
  const { target, router } = setup();
  const sessions = Array.from({ length: 5 }, (_, i) => session(target, `s${i}`));
  for (const s of sessions) subscribe(router, s, sub("t"));
  target.onDeliver = () => {
    for (const s of sessions) unsubscribe(router, s, "t");
  };
  assert.equal(router.route(message("t")), 5);
  assert.equal(target.take().length, 5);
  assert.equal(router.size, 0);
  assert.equal(router.route(message("t")), 0);
});
