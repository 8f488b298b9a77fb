/**
 * `/api/v1/sessions`: list, get, delete, and subscriptions added or removed on a session's behalf,
 * seen by live MQTT clients.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { body, startAdmin } from "../helpers/admin.ts";
import { TestClient, text } from "../helpers/test_client.ts";

interface Page<T> {
  data: T[];
  meta: { count: number };
}

interface SessionReply {
  clientId: string;
  connected: boolean;
  expiryInterval: number;
  subscriptions: number;
  disconnectedAt: string | null;
}

type Issues = { issues: { field: string; message: string }[] };

/** Connects a persistent MQTT 5 session and leaves it offline. */
async function offlineSession(port: number, clientId: string): Promise<void> {
  const { client } = await TestClient.connect(port, {
    clientId,
    version: 5,
    cleanStart: true,
    properties: { sessionExpiryInterval: 3600 },
  });
  await client.subscribe("offline/#", 1);
  await client.disconnect();
}

Deno.test("GET /api/v1/sessions lists connected and offline sessions, filtered by state", async () => {
  const t = await startAdmin({ http: true });
  try {
    await offlineSession(t.server.port, "away");
    const { client } = await TestClient.connect(t.server.port, { clientId: "here", version: 5 });
    const all = await body<Page<SessionReply>>(await t.fetch("/api/v1/sessions"));
    assert.deepEqual(all.data.map((s) => [s.clientId, s.connected]), [["away", false], [
      "here",
      true,
    ]]);
    const away = all.data[0];
    assert.equal(away.expiryInterval, 3600);
    assert.equal(away.subscriptions, 1);
    assert.ok(away.disconnectedAt !== null && !Number.isNaN(Date.parse(away.disconnectedAt)));
    const offline = await body<Page<SessionReply>>(
      await t.request("/api/v1/sessions?connected=false"),
    );
    assert.deepEqual(offline.data.map((s) => s.clientId), ["away"]);
    const bad = await t.request("/api/v1/sessions?connected=maybe");
    assert.equal(bad.status, 400);
    assert.deepEqual((await body<Issues>(bad)).issues, [
      { field: "connected", message: 'expected "true" or "false"' },
    ]);
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("GET /api/v1/sessions/{clientId} returns the session's subscriptions", async () => {
  const t = await startAdmin();
  try {
    await offlineSession(t.server.port, "away");
    const reply = await body<{ subscriptionList: { filter: string; qos: number }[] }>(
      await t.request("/api/v1/sessions/away"),
    );
    assert.deepEqual(reply.subscriptionList.map((s) => [s.filter, s.qos]), [["offline/#", 1]]);
    assert.equal((await t.request("/api/v1/sessions/ghost")).status, 404);
  } finally {
    await t.close();
  }
});

Deno.test("DELETE /api/v1/sessions/{clientId} ends an offline session and its queue", async () => {
  const t = await startAdmin({ http: true });
  try {
    await offlineSession(t.server.port, "away");
    const response = await t.fetch("/api/v1/sessions/away", { method: "DELETE" });
    assert.equal(response.status, 204);
    assert.equal(await t.server.broker.getSession("away"), undefined);
    const { client, connack } = await TestClient.connect(t.server.port, {
      clientId: "away",
      version: 5,
      cleanStart: false,
    });
    assert.equal(connack.sessionPresent, false); // [MQTT-3.2.2-3]: nothing to resume
    await client.disconnect();
    assert.equal((await t.request("/api/v1/sessions/away", { method: "DELETE" })).status, 404);
  } finally {
    await t.close();
  }
});

Deno.test("DELETE /api/v1/sessions/{clientId} disconnects a connected client (0x98) and ends its session", async () => {
  const t = await startAdmin();
  try {
    const { client } = await TestClient.connect(t.server.port, {
      clientId: "live",
      version: 5,
      properties: { sessionExpiryInterval: 3600 },
    });
    assert.equal((await t.request("/api/v1/sessions/live", { method: "DELETE" })).status, 204);
    assert.equal(
      (await client.expect(PacketType.DISCONNECT)).reasonCode,
      ReasonCode.AdministrativeAction,
    );
    await client.closed;
    assert.equal(await t.server.broker.getSession("live"), undefined);
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/sessions/{clientId}/subscriptions subscribes a live client, which then receives", async () => {
  const t = await startAdmin({ http: true });
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "target", version: 5 });
    const response = await t.fetch("/api/v1/sessions/target/subscriptions", {
      method: "POST",
      body: JSON.stringify({ filter: "pushed/+", qos: 1, subscriptionId: 7 }),
    });
    assert.equal(response.status, 201);
    assert.deepEqual(await body(response), {
      clientId: "target",
      filter: "pushed/+",
      qos: 1,
      noLocal: false,
      retainAsPublished: false,
      retainHandling: 0,
      subscriptionId: 7,
    });
    const { client: publisher } = await TestClient.connect(t.server.port, { clientId: "pub" });
    await publisher.publish("pushed/a", "hello", { qos: 1 });
    const delivered = await client.expect(PacketType.PUBLISH);
    assert.equal(delivered.topic, "pushed/a");
    assert.equal(text(delivered.payload), "hello");
    assert.equal(delivered.qos, 1);
    assert.deepEqual(delivered.properties?.subscriptionIdentifiers, [7]);
    await client.ack(delivered);
    const again = await t.request("/api/v1/sessions/target/subscriptions", {
      method: "POST",
      body: JSON.stringify({ filter: "pushed/+", qos: 0 }),
    });
    assert.equal(again.status, 200); // replaced, not new
    await publisher.disconnect();
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/sessions/{clientId}/subscriptions sends the retained messages it matches [MQTT-3.3.1-9]", async () => {
  const t = await startAdmin();
  try {
    const { client: publisher } = await TestClient.connect(t.server.port, { clientId: "pub" });
    await publisher.publish("state/door", "open", { qos: 1, retain: true });
    const { client } = await TestClient.connect(t.server.port, { clientId: "late", version: 5 });
    const response = await t.request("/api/v1/sessions/late/subscriptions", {
      method: "POST",
      body: JSON.stringify({ filter: "state/#", qos: 1 }),
    });
    assert.equal(response.status, 201);
    const retained = await client.expect(PacketType.PUBLISH);
    assert.equal(retained.retain, true); // [MQTT-3.3.1-8]
    assert.equal(text(retained.payload), "open");
    await client.ack(retained);
    await publisher.disconnect();
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/sessions/{clientId}/subscriptions answers 400 naming the bad field", async () => {
  const t = await startAdmin();
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "s", version: 5 });
    const cases: [unknown, string, RegExp][] = [
      [{ filter: "a/#/b" }, "filter", /./],
      [{ filter: "a", qos: 3 }, "qos", /^expected 0, 1 or 2$/],
      [{ filter: "$share/g/a", noLocal: true }, "noLocal", /No Local/],
      [{ filter: "a", subscriptionId: 0 }, "subscriptionId", /^expected an integer/],
      [{ qos: 1 }, "filter", /^expected a topic filter$/],
    ];
    for (const [request, field, message] of cases) {
      const response = await t.request("/api/v1/sessions/s/subscriptions", {
        method: "POST",
        body: JSON.stringify(request),
      });
      assert.equal(response.status, 400, JSON.stringify(request));
      const { issues } = await body<Issues>(response);
      assert.equal(issues[0].field, field, JSON.stringify(request));
      assert.match(issues[0].message, message);
    }
    const missing = await t.request("/api/v1/sessions/nobody/subscriptions", {
      method: "POST",
      body: JSON.stringify({ filter: "a" }),
    });
    assert.equal(missing.status, 404);
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/sessions/{clientId}/subscriptions answers 409 past mqtt.maxSubscriptionsPerClient", async () => {
  const t = await startAdmin({ config: { mqtt: { maxSubscriptionsPerClient: 1 } } });
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "full", version: 5 });
    await client.subscribe("first", 0);
    const response = await t.request("/api/v1/sessions/full/subscriptions", {
      method: "POST",
      body: JSON.stringify({ filter: "second" }),
    });
    assert.equal(response.status, 409);
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("DELETE /api/v1/sessions/{clientId}/subscriptions/{filter} stops deliveries", async () => {
  const t = await startAdmin({ http: true });
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "unsub", version: 5 });
    await client.subscribe([{ filter: "keep/#" }, { filter: "drop/#" }]);
    const response = await t.fetch(
      `/api/v1/sessions/unsub/subscriptions/${encodeURIComponent("drop/#")}`,
      {
        method: "DELETE",
      },
    );
    assert.equal(response.status, 204);
    const { client: publisher } = await TestClient.connect(t.server.port, { clientId: "pub" });
    await publisher.publish("drop/x", "gone");
    await publisher.publish("keep/x", "kept");
    const delivered = await client.expect(PacketType.PUBLISH);
    assert.equal(delivered.topic, "keep/x"); // drop/x was not delivered before it
    const again = await t.request(
      `/api/v1/sessions/unsub/subscriptions/${encodeURIComponent("drop/#")}`,
      {
        method: "DELETE",
      },
    );
    assert.equal(again.status, 404);
    assert.match((await body(again)).message as string, /has no subscription "drop\/#"/);
    await publisher.disconnect();
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/sessions/{clientId}/subscriptions answers 403 naming the filter when the ACL denies it", async () => {
  const t = await startAdmin({
    config: {
      acl: {
        rules: [
          { permission: "deny", action: "subscribe", topic: "secret/#", clients: ["s", "away"] },
          { permission: "allow", action: "subscribe", topic: "own/%c/#" },
          { permission: "deny", action: "subscribe", topic: "own/#" },
        ],
      },
    },
  });
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "s", version: 5 });
    await offlineSession(t.server.port, "away");
    const cases: [string, string, number][] = [
      ["s", "secret/plans", 403],
      ["s", "$share/g/secret/plans", 403], // the ACL sees the filter without the share prefix
      ["s", "own/other/x", 403],
      ["away", "secret/#", 403], // an offline session is checked by its client id
      ["s", "own/s/x", 201],
      ["s", "public/x", 201],
    ];
    for (const [clientId, filter, status] of cases) {
      const response = await t.request(`/api/v1/sessions/${clientId}/subscriptions`, {
        method: "POST",
        body: JSON.stringify({ filter }),
      });
      assert.equal(response.status, status, `${clientId} ${filter}`);
      if (status === 403) {
        const reply = await body<Issues & { message: string }>(response);
        assert.equal(reply.issues[0].field, "filter");
        assert.match(reply.message, /^filter: the ACL does not let client ".+" subscribe to/);
      } else await response.body?.cancel();
    }
    assert.deepEqual(
      (await t.server.broker.getSession("s"))!.subscriptions.map((s) => s.filter).sort(),
      ["own/s/x", "public/x"],
    );
    await client.disconnect();
  } finally {
    await t.close();
  }
});
