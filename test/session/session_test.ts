import assert from "node:assert/strict";
import type { QoS } from "../../src/codec/packets.ts";
import type { SubscriptionRecord, WillRecord } from "../../src/domain/types.ts";
import { NEVER_EXPIRES, Session } from "../../src/session/session.ts";

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

const will: WillRecord = {
  message: {
    topic: "w",
    payload: new Uint8Array([1]),
    qos: 1,
    retain: false,
    properties: undefined,
    expiresAt: 0,
    origin: "c1",
  },
  delayInterval: 5,
  messageExpiryInterval: 0,
};

Deno.test("NEVER_EXPIRES is 0xFFFFFFFF [MQTT-3.1.2-23]", () => {
  assert.equal(NEVER_EXPIRES, 4294967295);
});

Deno.test("Session starts empty with the given identity", () => {
  const session = new Session("c1", 5, 60);
  assert.equal(session.clientId, "c1");
  assert.equal(session.protocolVersion, 5);
  assert.equal(session.expiryInterval, 60);
  assert.equal(session.subscriptionCount, 0);
  assert.equal(session.subscriptions.size, 0);
  assert.equal(session.inboundQos2.size, 0);
  assert.equal(session.will, undefined);
  assert.equal(session.revision, 0);
  assert.equal(session.connection, undefined);
});

Deno.test("Session.subscribe() returns true for a new filter, false when it replaces one [MQTT-3.8.4-3]", () => {
  const session = new Session("c1", 5, 0);
  assert.equal(session.subscribe(subscription("a/+", 0)), true);
  assert.equal(session.subscribe(subscription("a/+", 2)), false);
  assert.equal(session.subscriptions.get("a/+")?.qos, 2);
  assert.equal(session.subscriptionCount, 1);
});

Deno.test("Session.unsubscribe() removes a filter and returns its record", () => {
  const session = new Session("c1", 5, 0);
  session.subscribe(subscription("a", 1));
  assert.equal(session.unsubscribe("a")?.filter, "a");
  assert.equal(session.unsubscribe("a"), undefined);
  assert.equal(session.subscriptionCount, 0);
});

Deno.test("Session parses share prefixes once: shareOf, directSubscriptions and queueFilters", () => {
  const session = new Session("c1", 5, 0);
  session.subscribe(subscription("a/+", 1));
  session.subscribe(subscription("zero", 0));
  session.subscribe(subscription("$share/g/jobs/#", 1));
  session.subscribe(subscription("$queue/legacy", 2));
  assert.deepEqual(session.shareOf("$share/g/jobs/#"), { group: "g", filter: "jobs/#" });
  assert.equal(session.shareOf("$queue/legacy")?.filter, "legacy");
  assert.equal(session.shareOf("a/+"), undefined);
  assert.deepEqual(session.directSubscriptions.map((s) => s.filter), ["a/+", "zero"]);
  // Only non-shared QoS 1/2 subscriptions feed the session's own queue.
  assert.deepEqual(session.queueFilters(), ["a/+"]);
  session.unsubscribe("a/+");
  assert.deepEqual(session.directSubscriptions.map((s) => s.filter), ["zero"]);
  assert.deepEqual(session.queueFilters(), []);
});

Deno.test("Session.toRecord() captures the durable state; fromRecord() restores it", () => {
  const session = new Session("c1", 4, NEVER_EXPIRES);
  session.subscribe(subscription("a/+", 1, 3));
  session.subscribe(subscription("$share/g/b", 2));
  session.will = will;
  const record = session.toRecord("node-1", undefined);
  assert.deepEqual(record, {
    clientId: "c1",
    protocolVersion: 4,
    expiryInterval: NEVER_EXPIRES,
    subscriptions: [subscription("a/+", 1, 3), subscription("$share/g/b", 2)],
    will,
    owner: "node-1",
    disconnectedAt: undefined,
  });
  const offline = { ...record, owner: undefined, disconnectedAt: 1234 };
  const restored = Session.fromRecord(offline, 7);
  assert.equal(restored.revision, 7);
  assert.equal(restored.disconnectedAt, 1234);
  assert.deepEqual(restored.toRecord(undefined, 1234), offline);
  assert.deepEqual(restored.shareOf("$share/g/b"), { group: "g", filter: "b" });
});
