import assert from "node:assert/strict";
import type { Message, SubscriptionRecord, WillRecord } from "../../src/backbone/backbone.ts";
import type { QoS } from "../../src/codec/packets.ts";
import { deliveryQos, NEVER_EXPIRES, Session } from "../../src/session/session.ts";

function message(topic = "t"): Message {
  return {
    topic,
    payload: new Uint8Array([1]),
    qos: 1,
    retain: false,
    properties: undefined,
    expiresAt: 0,
    origin: "",
  };
}

function subscription(filter: string, qos: QoS = 1, subscriptionId = 0): SubscriptionRecord {
  return {
    filter,
    qos,
    noLocal: false,
    retainAsPublished: false,
    retainHandling: 0,
    subscriptionId,
  };
}

Deno.test("NEVER_EXPIRES is 0xFFFFFFFF [MQTT-3.1.2-23]", () => {
  assert.equal(NEVER_EXPIRES, 4294967295);
});

Deno.test("Session starts empty with the given identity", () => {
  const session = new Session("c1", 5, 60);
  assert.equal(session.clientId, "c1");
  assert.equal(session.protocolVersion, 5);
  assert.equal(session.expiryInterval, 60);
  assert.equal(session.subscriptions.size, 0);
  assert.equal(session.inflight.size, 0);
  assert.equal(session.inboundQos2.size, 0);
  assert.equal(session.will, undefined);
  assert.equal(session.queued, 0);
  assert.equal(session.revision, 0);
  assert.equal(session.client, undefined);
  assert.equal(session.disconnectedAt, undefined);
});

Deno.test("Session.allocatePacketId() hands out non-zero ids in sequence from 1 [MQTT-2.2.1-4]", () => {
  const session = new Session("c1", 5, 0);
  assert.deepEqual([1, 2, 3, 4].map(() => session.allocatePacketId()), [1, 2, 3, 4]);
});

Deno.test("Session.allocatePacketId() skips ids still in flight [MQTT-2.2.1-4]", () => {
  const session = new Session("c1", 5, 0);
  session.addInflight(1, message(), 1, false, undefined);
  session.addInflight(2, message(), 2, false, undefined);
  session.addInflight(4, message(), 1, false, undefined);
  assert.equal(session.allocatePacketId(), 3);
  assert.equal(session.allocatePacketId(), 5);
  // Once acknowledged, an id is free again, but allocation keeps moving forward.
  session.inflight.delete(1);
  assert.equal(session.allocatePacketId(), 6);
});

Deno.test("Session.allocatePacketId() wraps from 65535 to 1, never 0 [MQTT-2.2.1-4]", () => {
  const session = new Session("c1", 5, 0);
  for (let i = 1; i < 0xffff; i++) session.allocatePacketId();
  assert.equal(session.allocatePacketId(), 0xffff);
  assert.equal(session.allocatePacketId(), 1);
  assert.equal(session.allocatePacketId(), 2);
});

Deno.test("Session.allocatePacketId() wraps past in-flight ids at the top and bottom [MQTT-2.2.1-4]", () => {
  const session = new Session("c1", 5, 0);
  for (let i = 1; i < 0xfffe; i++) session.allocatePacketId();
  // Next would be 65534; 65534, 65535, 1 and 2 are in flight.
  for (const id of [0xfffe, 0xffff, 1, 2]) session.addInflight(id, message(), 1, false, undefined);
  const id = session.allocatePacketId();
  assert.equal(id, 3);
  assert.equal(session.allocatePacketId(), 4);
});

Deno.test("Session.allocatePacketId() never returns an id in flight, across many wraps [MQTT-2.2.1-4]", () => {
  const session = new Session("c1", 5, 0);
  // Keep a sliding window of 100 ids in flight, acknowledging the oldest each time.
  const window: number[] = [];
  for (let i = 0; i < 140_000; i++) {
    const id = session.allocatePacketId();
    assert.ok(id >= 1 && id <= 0xffff, `id ${id} out of range`);
    assert.equal(session.inflight.has(id), false, `id ${id} is in flight`);
    session.addInflight(id, message(), 1, false, undefined);
    window.push(id);
    if (window.length > 100) session.inflight.delete(window.shift()!);
  }
});

Deno.test("Session.addInflight() records the message as sent", () => {
  const session = new Session("c1", 5, 0);
  const m = message();
  const entry = session.addInflight(7, m, 2, true, [3, 4]);
  assert.deepEqual(entry, {
    packetId: 7,
    message: m,
    qos: 2,
    retain: true,
    subscriptionIds: [3, 4],
    released: false,
    group: undefined,
  });
  assert.equal(session.inflight.get(7), entry);
});

Deno.test("Session.subscribe() returns true for a new filter, false when it replaces one [MQTT-3.8.4-3]", () => {
  const session = new Session("c1", 5, 0);
  assert.equal(session.subscribe(subscription("a/+", 1)), true);
  assert.equal(session.subscribe(subscription("b", 0)), true);
  const replacement = subscription("a/+", 2, 9);
  assert.equal(session.subscribe(replacement), false);
  assert.equal(session.subscriptions.size, 2);
  assert.equal(session.subscriptions.get("a/+"), replacement);
  // A shared subscription is a different filter string.
  assert.equal(session.subscribe(subscription("$share/g/a/+", 1)), true);
  assert.equal(session.subscriptions.size, 3);
});

Deno.test("Session.unsubscribe() removes a filter and reports whether it existed", () => {
  const session = new Session("c1", 5, 0);
  session.subscribe(subscription("a"));
  assert.equal(session.unsubscribe("a"), true);
  assert.equal(session.unsubscribe("a"), false);
  assert.equal(session.subscriptions.size, 0);
});

Deno.test("Session.toRecord() captures the durable state", () => {
  const session = new Session("c1", 4, NEVER_EXPIRES);
  const s1 = subscription("a/#", 2, 5);
  const s2 = subscription("$share/g/b", 1);
  session.subscribe(s1);
  session.subscribe(s2);
  const will: WillRecord = { message: message("will"), delayInterval: 5, messageExpiryInterval: 0 };
  session.will = will;
  session.addInflight(1, message(), 1, false, undefined);
  session.inboundQos2.add(9);

  assert.deepEqual(session.toRecord("node-a"), {
    clientId: "c1",
    protocolVersion: 4,
    expiryInterval: NEVER_EXPIRES,
    subscriptions: [s1, s2],
    will,
    owner: "node-a",
    disconnectedAt: undefined,
  });

  session.disconnectedAt = 12_345;
  session.expiryInterval = 30;
  const offline = session.toRecord(undefined);
  assert.equal(offline.owner, undefined);
  assert.equal(offline.disconnectedAt, 12_345);
  assert.equal(offline.expiryInterval, 30);
  // The record's subscription list is a snapshot, not the live map.
  session.subscribe(subscription("later"));
  assert.equal(offline.subscriptions.length, 2);
});

Deno.test("Session.clearState() forgets subscriptions, inflight, inbound QoS 2 ids, queue count and will", () => {
  const session = new Session("c1", 5, 60);
  session.subscribe(subscription("a"));
  session.addInflight(session.allocatePacketId(), message(), 1, false, undefined);
  session.inboundQos2.add(3);
  session.queued = 4;
  session.will = { message: message("w"), delayInterval: 0, messageExpiryInterval: 0 };
  session.revision = 7;
  session.clearState();
  assert.equal(session.subscriptions.size, 0);
  assert.equal(session.inflight.size, 0);
  assert.equal(session.inboundQos2.size, 0);
  assert.equal(session.queued, 0);
  assert.equal(session.will, undefined);
  // Identity and the stored revision survive: the record is replaced, not recreated.
  assert.equal(session.clientId, "c1");
  assert.equal(session.expiryInterval, 60);
  assert.equal(session.revision, 7);
  const id = session.allocatePacketId();
  assert.ok(id >= 1 && id <= 0xffff);
});

Deno.test("deliveryQos() is the lower of the message QoS and the granted QoS [MQTT-3.8.4-8]", () => {
  const levels: QoS[] = [0, 1, 2];
  for (const messageQos of levels) {
    for (const granted of levels) {
      assert.equal(
        deliveryQos(messageQos, granted),
        Math.min(messageQos, granted),
        `message ${messageQos}, granted ${granted}`,
      );
    }
  }
});
