import assert from "node:assert/strict";
import type { QoS } from "../../src/codec/packets.ts";
import type { Message, SubscriptionRecord } from "../../src/domain/types.ts";
import { addToPlan, planFor, planRetained, planShared } from "../../src/broker/delivery_plan.ts";

function message(topic: string, qos: QoS, retain = false, origin = "pub"): Message {
  return {
    topic,
    payload: new Uint8Array(),
    qos,
    retain,
    properties: undefined,
    expiresAt: 0,
    origin,
  };
}

function sub(
  filter: string,
  qos: QoS,
  extra: Partial<SubscriptionRecord> = {},
): SubscriptionRecord {
  return {
    filter,
    qos,
    noLocal: false,
    retainAsPublished: false,
    retainHandling: 0,
    subscriptionId: 0,
    ...extra,
  };
}

Deno.test("addToPlan() delivers at the lower of message and granted QoS [MQTT-3.8.4-8]", () => {
  assert.equal(addToPlan(undefined, message("t", 2), sub("t", 1), "c")?.qos, 1);
  assert.equal(addToPlan(undefined, message("t", 0), sub("t", 2), "c")?.qos, 0);
  assert.equal(addToPlan(undefined, message("t", 1), sub("t", 1), "c")?.qos, 1);
});

Deno.test("addToPlan() merges overlapping subscriptions: highest QoS, every identifier [MQTT-3.3.4-2] [MQTT-3.3.4-3]", () => {
  const m = message("a/b", 2);
  let plan = addToPlan(undefined, m, sub("a/+", 0, { subscriptionId: 1 }), "c");
  plan = addToPlan(plan, m, sub("a/#", 2), "c");
  plan = addToPlan(plan, m, sub("a/b", 1, { subscriptionId: 3 }), "c");
  assert.deepEqual(plan, { qos: 2, retain: false, subscriptionIds: [1, 3] });
});

Deno.test("addToPlan() skips the publisher's own No Local subscription [MQTT-3.8.3-3]", () => {
  const m = message("t", 1, false, "me");
  assert.equal(addToPlan(undefined, m, sub("t", 1, { noLocal: true }), "me"), undefined);
  assert.equal(addToPlan(undefined, m, sub("t", 1, { noLocal: true }), "other")?.qos, 1);
});

Deno.test("addToPlan() keeps RETAIN only with Retain As Published [MQTT-3.3.1-12] [MQTT-3.3.1-13]", () => {
  const m = message("t", 0, true);
  assert.equal(addToPlan(undefined, m, sub("t", 0), "c")?.retain, false);
  assert.equal(
    addToPlan(undefined, m, sub("t", 0, { retainAsPublished: true }), "c")?.retain,
    true,
  );
});

Deno.test("planFor() plans from the subscriptions that match now; undefined when none does", () => {
  const subs = [sub("a/+", 1, { subscriptionId: 4 }), sub("b", 2)];
  assert.deepEqual(planFor(message("a/x", 2), subs, "c"), {
    qos: 1,
    retain: false,
    subscriptionIds: [4],
  });
  assert.equal(planFor(message("c", 1), subs, "c"), undefined);
});

Deno.test("planShared() applies the member's QoS and ignores No Local; planRetained() sets RETAIN [MQTT-3.3.1-8]", () => {
  assert.equal(planShared(message("t", 2, false, "me"), sub("$share/g/t", 1)).qos, 1);
  const retained = planRetained(message("t", 1, true), sub("t", 2, { subscriptionId: 9 }));
  assert.deepEqual(retained, { qos: 1, retain: true, subscriptionIds: [9] });
});
