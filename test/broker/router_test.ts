import assert from "node:assert/strict";
import type { QoS } from "../../src/codec/packets.ts";
import type { Message, SubscriptionRecord } from "../../src/domain/types.ts";
import type { BrokerSession, SessionConnection } from "../../src/broker/context.ts";
import type { DeliveryPlan } from "../../src/broker/delivery_plan.ts";
import { Router } from "../../src/broker/router.ts";
import { Session } from "../../src/session/session.ts";
import { parseSharedFilter, type SharedFilter } from "../../src/topic/mod.ts";

/** One live delivery, flattened for comparisons. */
interface Live {
  client: string;
  topic: string;
  qos: QoS;
  retain: boolean;
  ids: number[] | undefined;
}

/** Sessions whose connections record what the router sends them live. */
class Fixture {
  readonly router = new Router();
  readonly sent: Live[] = [];
  onLive: ((live: Live) => void) | undefined;

  session(clientId: string): BrokerSession {
    const session = new Session<SessionConnection>(clientId, 5, 0);
    const outbound = {
      live: (message: Message, plan: DeliveryPlan) => {
        const live = {
          client: clientId,
          topic: message.topic,
          qos: plan.qos,
          retain: plan.retain,
          ids: plan.subscriptionIds && [...plan.subscriptionIds],
        };
        this.sent.push(live);
        this.onLive?.(live);
      },
    };
    session.connection = { outbound } as unknown as SessionConnection;
    return session;
  }

  add(session: BrokerSession, filter: string, qos: QoS, extra: Partial<SubscriptionRecord> = {}) {
    const record = { ...sub(filter, qos), ...extra };
    session.subscribe(record);
    return this.router.add(session, record, share(filter));
  }

  take(): Live[] {
    return this.sent.splice(0);
  }
}

function share(filter: string): SharedFilter | undefined {
  const parsed = parseSharedFilter(filter);
  return parsed instanceof Error ? undefined : parsed;
}

function sub(filter: string, qos: QoS): SubscriptionRecord {
  return {
    filter,
    qos,
    noLocal: false,
    retainAsPublished: false,
    retainHandling: 0,
    subscriptionId: 0,
  };
}

function message(topic: string, qos: QoS = 0, origin = "pub", retain = false): Message {
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

Deno.test("Router.route() sends live to exact and wildcard subscriptions [MQTT-4.7.1-2]", () => {
  const f = new Fixture();
  f.add(f.session("exact"), "a/b", 0);
  f.add(f.session("plus"), "a/+", 0);
  f.add(f.session("hash"), "#", 0);
  f.add(f.session("other"), "x", 0);
  assert.equal(f.router.route(message("a/b")), 3);
  assert.deepEqual(f.take().map((l) => l.client).sort(), ["exact", "hash", "plus"]);
  assert.equal(f.router.size, 4);
});

Deno.test("Router.route() does not match '$' topics with leading wildcards [MQTT-4.7.2-1]", () => {
  const f = new Fixture();
  f.add(f.session("hash"), "#", 0);
  f.add(f.session("sys"), "$SYS/#", 0);
  f.router.route(message("$SYS/x"));
  assert.deepEqual(f.take().map((l) => l.client), ["sys"]);
});

Deno.test("Router.route() leaves QoS 1/2 deliveries to the session's queue and counts them as matched", () => {
  const f = new Fixture();
  f.add(f.session("q0"), "t", 0);
  f.add(f.session("q1"), "t", 1);
  assert.equal(f.router.route(message("t", 1)), 2);
  // Only the QoS 0 subscription is sent live; the QoS 1 one receives it from its queue.
  assert.deepEqual(f.take(), [{ client: "q0", topic: "t", qos: 0, retain: false, ids: undefined }]);
});

Deno.test("Router.route() merges overlapping subscriptions: live only when the merged QoS is 0 [MQTT-3.3.4-2]", () => {
  const f = new Fixture();
  const both = f.session("both");
  f.add(both, "a/+", 0, { subscriptionId: 1 });
  f.add(both, "a/#", 0, { subscriptionId: 2 });
  const mixed = f.session("mixed");
  f.add(mixed, "a/+", 0);
  f.add(mixed, "a/b", 1);
  assert.equal(f.router.route(message("a/b", 1)), 2);
  const sent = f.take();
  sent[0].ids?.sort();
  assert.deepEqual(sent, [{ client: "both", topic: "a/b", qos: 0, retain: false, ids: [1, 2] }]);
});

Deno.test("Router.route() skips the publisher's No Local subscription [MQTT-3.8.3-3]", () => {
  const f = new Fixture();
  f.add(f.session("me"), "t", 0, { noLocal: true });
  f.add(f.session("you"), "t", 0, { noLocal: true });
  assert.equal(f.router.route(message("t", 0, "me")), 1);
  assert.deepEqual(f.take().map((l) => l.client), ["you"]);
});

Deno.test("Router.route() clears RETAIN unless Retain As Published [MQTT-3.3.1-12] [MQTT-3.3.1-13]", () => {
  const f = new Fixture();
  f.add(f.session("plain"), "t", 0);
  f.add(f.session("rap"), "t", 0, { retainAsPublished: true });
  f.router.route(message("t", 0, "pub", true));
  assert.deepEqual(
    f.take().map((l) => [l.client, l.retain]).sort(),
    [["plain", false], ["rap", true]],
  );
});

Deno.test("Router.add() replaces a session's subscription; remove() takes it out", () => {
  const f = new Fixture();
  const s = f.session("s");
  assert.equal(f.add(s, "t", 1), true);
  assert.equal(f.add(s, "t", 0), false);
  f.router.route(message("t", 1));
  assert.equal(f.take().length, 1, "the replacing QoS 0 grant is live");
  assert.equal(f.router.remove(s, "t", undefined), true);
  assert.equal(f.router.remove(s, "t", undefined), false);
  assert.equal(f.router.route(message("t")), 0);
  assert.equal(f.router.size, 0);
});

Deno.test("Router.route() ignores share groups; routeToGroup() picks one member, round robin", () => {
  const f = new Fixture();
  const one = f.session("one");
  const two = f.session("two");
  f.add(one, "$share/g/jobs/+", 0);
  f.add(two, "$share/g/jobs/+", 1);
  assert.equal(f.router.route(message("jobs/1")), 0);
  assert.deepEqual(f.take(), []);
  for (let i = 0; i < 4; i++) {
    assert.equal(f.router.routeToGroup(message("jobs/1"), "g", "jobs/+"), true);
  }
  assert.deepEqual(f.take().map((l) => l.client), ["one", "two", "one", "two"]);
  assert.equal(f.router.routeToGroup(message("jobs/1"), "other", "jobs/+"), false);
  f.router.remove(one, "$share/g/jobs/+", share("$share/g/jobs/+"));
  f.router.remove(two, "$share/g/jobs/+", share("$share/g/jobs/+"));
  assert.equal(f.router.routeToGroup(message("jobs/1"), "g", "jobs/+"), false);
  assert.equal(f.router.size, 0);
});

Deno.test("Router.route() survives a nested route from inside a delivery", () => {
  const f = new Fixture();
  f.add(f.session("a"), "t/#", 0);
  f.add(f.session("b"), "t/#", 0);
  let nested = false;
  f.onLive = (live) => {
    if (nested || live.topic !== "t/outer") return;
    nested = true;
    f.router.route(message("t/inner"));
  };
  f.router.route(message("t/outer"));
  const topics = f.take().map((l) => `${l.client}:${l.topic}`).sort();
  assert.deepEqual(topics, ["a:t/inner", "a:t/outer", "b:t/inner", "b:t/outer"]);
});
