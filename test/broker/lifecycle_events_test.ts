/**
 * The lifecycle events the engine emits for notifiers: connect (with the CONNECT's details and
 * host facts, from user properties or smq's legacy trailer), subscribe, unsubscribe, the end of a
 * session's subscriptions, and disconnect; and the legacy trailer accepted only when configured.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { BrokerEvent } from "../../src/backbone/backbone.ts";
import { PacketType } from "../../src/codec/mod.ts";
import type { ConfigInput } from "../../src/config/mod.ts";
import { startBroker, type TestBroker } from "../helpers/broker.ts";
import { legacyConnect, trailerOf } from "../helpers/legacy_connect.ts";
import { TestClient } from "../helpers/test_client.ts";

const FACTS = { host_name: "web-1", os: "linux", arch: "amd64", agent_version: "1.0" };

/** A broker and every event it emits, with a wait for the events to reach a count. */
function withEvents(config: ConfigInput = {}) {
  const broker: TestBroker = startBroker({ config });
  const events: BrokerEvent[] = [];
  const waiters = new Set<() => void>();
  broker.broker.onEvent((event) => {
    events.push(event);
    for (const waiter of waiters) waiter();
  });
  const until = (predicate: (events: BrokerEvent[]) => boolean) =>
    new Promise<void>((resolve, reject) => {
      if (predicate(events)) return resolve();
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`events not seen: ${JSON.stringify(events)}`));
      }, 5000);
      const check = () => {
        if (!predicate(events)) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
    });
  const of = <T extends BrokerEvent["type"]>(type: T) =>
    events.filter((e): e is Extract<BrokerEvent, { type: T }> => e.type === type);
  return { broker, events, until, of };
}

Deno.test("events: connect, subscribe, unsubscribe and disconnect, with the CONNECT's details", async () => {
  const { broker, until, of } = withEvents();
  try {
    const { client } = await TestClient.connect(broker.port, {
      clientId: "ev1",
      version: 5,
      keepAlive: 30,
      username: "u1",
      properties: { userProperties: [["os", "linux"], ["team", "blue"]] },
    });
    await client.subscribe([{ filter: "a/#", qos: 1 }, { filter: "b", qos: 0 }]);
    await client.unsubscribe(["b", "never"]);
    await client.disconnect();
    // The session ends with the connection: its remaining subscription ends too.
    await until((e) => e.some((x) => x.type === "unsubscribed" && x.filter === "a/#"));
    const connected = of("connected")[0];
    assert.deepEqual(
      { ...connected, at: 0 },
      {
        type: "connected",
        node: broker.config.node.id,
        clientId: "ev1",
        username: "u1",
        remoteAddress: "127.0.0.1",
        listener: "tcp",
        protocolVersion: 5,
        keepAlive: 30,
        cleanStart: true,
        userProperties: [["os", "linux"], ["team", "blue"]],
        facts: { os: "linux" },
        at: 0,
      },
    );
    assert.deepEqual(of("subscribed").map((e) => [e.filter, e.qos]), [["a/#", 1], ["b", 0]]);
    assert.deepEqual(of("unsubscribed").map((e) => [e.filter, e.qos]), [["b", 0], ["a/#", 1]]);
    const disconnected = of("disconnected")[0];
    assert.equal(disconnected.reasonCode, 0);
    assert.equal(disconnected.byClient, true);
    assert.equal(disconnected.listener, "tcp");
    assert.deepEqual(disconnected.facts, { os: "linux" });
    assert.ok(disconnected.connectedAt! > 0);
  } finally {
    await broker.close();
  }
});

Deno.test("events: a persistent session's subscriptions stay past a disconnect", async () => {
  const { broker, until, of } = withEvents();
  try {
    const { client } = await TestClient.connect(broker.port, {
      clientId: "ev2",
      cleanStart: false,
    });
    await client.subscribe("keep/#", 1);
    await client.disconnect();
    await broker.offline("ev2");
    await until((e) => e.some((x) => x.type === "disconnected"));
    assert.equal(of("unsubscribed").length, 0);
    await broker.broker.deleteSession("ev2");
    await until((e) => e.some((x) => x.type === "unsubscribed"));
    assert.deepEqual(of("unsubscribed").map((e) => e.filter), ["keep/#"]);
  } finally {
    await broker.close();
  }
});

Deno.test("legacy trailer: off by default, a CONNECT with one is malformed and closed", async () => {
  const { broker, events } = withEvents();
  try {
    const client = await TestClient.open(broker.port);
    await client.sendRaw(legacyConnect("agent-0", trailerOf(JSON.stringify(FACTS))));
    await client.closed;
    assert.equal(events.length, 0);
  } finally {
    await broker.close();
  }
});

/** Connects with a raw legacy CONNECT and returns the connected event and the CONNACK code. */
async function legacyClient(
  broker: TestBroker,
  until: (p: (e: BrokerEvent[]) => boolean) => Promise<void>,
  clientId: string,
  trailer: Uint8Array,
  options: { username?: string; keepAlive?: number; level?: 3 | 4 } = {},
) {
  const client = await TestClient.open(broker.port, options.level ?? 4);
  await client.sendRaw(legacyConnect(clientId, trailer, options));
  const connack = await client.expect(PacketType.CONNACK);
  assert.equal(connack.reasonCode, 0);
  let found: Extract<BrokerEvent, { type: "connected" }> | undefined;
  await until((events) => {
    found = events.find((e): e is Extract<BrokerEvent, { type: "connected" }> =>
      e.type === "connected" && e.clientId === clientId
    );
    return found !== undefined;
  });
  return { client, event: found! };
}

Deno.test("legacy trailer: with agent.legacyConnectInfo, valid, empty, broken and hostile trailers all connect", async () => {
  const { broker, until } = withEvents({ agent: { legacyConnectInfo: true } });
  const clients: TestClient[] = [];
  try {
    const cases: [string, Uint8Array, Record<string, string> | undefined][] = [
      ["valid", trailerOf(JSON.stringify(FACTS)), FACTS],
      ["empty", new Uint8Array([0, 0]), undefined],
      ["none", new Uint8Array(), undefined],
      ["truncated", trailerOf(JSON.stringify(FACTS)).subarray(0, 10), undefined],
      ["not-json", trailerOf("{{{"), undefined],
      ["array", trailerOf("[]"), undefined],
      ["oversized", trailerOf(JSON.stringify({ os: "x".repeat(8000) })), undefined],
      ["long-value", trailerOf(JSON.stringify({ os: "x".repeat(300), arch: "arm" })), {
        arch: "arm",
      }],
      ["proto", trailerOf('{"__proto__":{"os":"x"},"constructor":1}'), undefined],
    ];
    for (const [clientId, trailer, facts] of cases) {
      const { client, event } = await legacyClient(broker, until, clientId, trailer);
      clients.push(client);
      assert.deepEqual(event.facts, facts, clientId);
      assert.equal(event.protocolVersion, 4);
    }
    const { client: v3, event: v3Event } = await legacyClient(
      broker,
      until,
      "v3",
      trailerOf(JSON.stringify({ os: "aix" })),
      { level: 3 },
    );
    clients.push(v3);
    assert.deepEqual(v3Event.facts, { os: "aix" });
    assert.equal(v3Event.protocolVersion, 3);
    // One warning for the first bad CONNECT; the rest are counted.
    const warnings = broker.logs.filter((l) => l.line.includes("host facts of a CONNECT ignored"));
    assert.equal(warnings.length, 1);
    assert.equal(broker.broker.stats.agentFactsIgnored, 6);
  } finally {
    for (const client of clients) await client.destroy();
    await broker.close();
  }
});

Deno.test("legacy trailer: JSON cannot change the client id, user name, node or keep alive", async () => {
  const { broker, until } = withEvents({ agent: { legacyConnectInfo: true } });
  try {
    const hostile = JSON.stringify({
      id: "victim",
      node_id: "elsewhere",
      user_name: "root",
      keep_alive: 0,
      proto_ver: 5,
      status: 1,
      host_name: "h",
    });
    const { client, event } = await legacyClient(broker, until, "intruder", trailerOf(hostile), {
      username: "guest",
      keepAlive: 45,
    });
    assert.equal(event.clientId, "intruder");
    assert.equal(event.username, "guest");
    assert.equal(event.node, broker.config.node.id);
    assert.equal(event.keepAlive, 45);
    assert.deepEqual(event.facts, { host_name: "h" });
    assert.deepEqual(broker.broker.getClient("intruder")?.keepAlive, 45);
    assert.equal(broker.broker.getClient("victim"), undefined);
    // The connection works as any other.
    await client.subscribe("t", 0);
    await client.destroy();
  } finally {
    await broker.close();
  }
});
