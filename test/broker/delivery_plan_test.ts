import assert from "node:assert/strict";
import type { QoS } from "../../src/codec/packets.ts";
import type { Message, SubscriptionRecord } from "../../src/domain/types.ts";
import {
  addToPlan,
  planLive,
  planRetained,
  planShared,
  QueuedPlanner,
} from "../../src/broker/delivery_plan.ts";

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

Deno.test("QueuedPlanner plans from the subscriptions that match now; undefined when none does", () => {
  const planner = new QueuedPlanner();
  const subs = [sub("a/+", 1, { subscriptionId: 4 }), sub("b", 2)];
  assert.deepEqual(planner.plan(message("a/x", 2), subs, "c"), {
    qos: 1,
    retain: false,
    subscriptionIds: [4],
  });
  assert.equal(planner.plan(message("c", 1), subs, "c"), undefined);
  assert.equal(planner.plan(message("b", 1), subs, "c")?.qos, 1);
});

Deno.test("QueuedPlanner matches again when the topic or the subscription list changes", () => {
  const planner = new QueuedPlanner();
  const before = [sub("a/+", 1)];
  assert.equal(planner.plan(message("a/x", 2), before, "c")?.qos, 1);
  assert.equal(planner.plan(message("a/y", 2), before, "c")?.qos, 1);
  // The session's new list after a SUBSCRIBE that replaced the filter's QoS.
  const after = [sub("a/+", 2)];
  assert.equal(planner.plan(message("a/y", 2), after, "c")?.qos, 2);
  // After an UNSUBSCRIBE: an empty list, nothing matches.
  assert.equal(planner.plan(message("a/y", 2), [], "c"), undefined);
  // The same topic from another publisher, No Local: the cached match still honours it.
  const noLocal = [sub("a/+", 1, { noLocal: true })];
  assert.equal(planner.plan(message("a/y", 1, false, "c"), noLocal, "c"), undefined);
  assert.equal(planner.plan(message("a/y", 1, false, "other"), noLocal, "c")?.qos, 1);
});

Deno.test("QueuedPlanner: one matching subscription's plans follow each message's QoS and RETAIN", () => {
  const planner = new QueuedPlanner();
  const subs = [sub("t", 1, { retainAsPublished: true, subscriptionId: 5 })];
  for (let round = 0; round < 2; round++) {
    for (const qos of [0, 1, 2] as QoS[]) {
      for (const retain of [false, true]) {
        assert.deepEqual(planner.plan(message("t", qos, retain), subs, "c"), {
          qos: Math.min(qos, 1),
          retain,
          subscriptionIds: [5],
        });
      }
    }
  }
  // A new subscription list (another QoS granted) is planned anew.
  assert.equal(planner.plan(message("t", 2), [sub("t", 2)], "c")?.qos, 2);
});

Deno.test("planLive() plans QoS 0 with RETAIN only as published, and carries a subscription identifier", () => {
  assert.deepEqual(planLive(message("t", 1, true), sub("t", 0), "c"), {
    qos: 0,
    retain: false,
    subscriptionIds: undefined,
  });
  assert.deepEqual(planLive(message("t", 0, true), sub("t", 2, { retainAsPublished: true }), "c"), {
    qos: 0,
    retain: true,
    subscriptionIds: undefined,
  });
  assert.deepEqual(planLive(message("t", 0), sub("t", 1, { subscriptionId: 7 }), "c"), {
    qos: 0,
    retain: false,
    subscriptionIds: [7],
  });
});

Deno.test("planShared() applies the member's QoS and ignores No Local; planRetained() sets RETAIN [MQTT-3.3.1-8]", () => {
  assert.equal(planShared(message("t", 2, false, "me"), sub("$share/g/t", 1)).qos, 1);
  const retained = planRetained(message("t", 1, true), sub("t", 2, { subscriptionId: 9 }));
  assert.deepEqual(retained, { qos: 1, retain: true, subscriptionIds: [9] });
});
