import assert from "node:assert/strict";
import { body, startAdmin, VIEWER_TOKEN } from "../helpers/admin.ts";
import { parseExposition } from "../helpers/prometheus.ts";
import { RawWebSocket } from "../helpers/raw_websocket.ts";
import { TestClient } from "../helpers/test_client.ts";

Deno.test("GET /metrics serves the Prometheus text format with every listed metric", async () => {
  const t = await startAdmin({ http: true });
  try {
    const response = await t.fetch("/metrics", { token: VIEWER_TOKEN });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const metrics = parseExposition(await response.text());
    const expected: [string, string][] = [
      ["perch_clients_connected", "gauge"],
      ["perch_clients_connected_total", "counter"],
      ["perch_connections_accepted_total", "counter"],
      ["perch_messages_received_total", "counter"],
      ["perch_messages_sent_total", "counter"],
      ["perch_payload_bytes_received_total", "counter"],
      ["perch_payload_bytes_sent_total", "counter"],
      ["perch_bytes_received_total", "counter"],
      ["perch_bytes_sent_total", "counter"],
      ["perch_messages_dropped_total", "counter"],
      ["perch_retained_messages", "gauge"],
      ["perch_subscriptions", "gauge"],
      ["perch_delivery_backlog", "gauge"],
      ["perch_auth_failures_total", "counter"],
      ["perch_event_loop_lag_seconds", "gauge"],
      ["process_resident_memory_bytes", "gauge"],
      ["process_heap_used_bytes", "gauge"],
    ];
    for (const [name, type] of expected) assert.equal(metrics.types.get(name), type, name);
    assert.ok(metrics.value("process_resident_memory_bytes") > 0);
  } finally {
    await t.close();
  }
});

Deno.test("GET /metrics values move after MQTT traffic", async () => {
  const t = await startAdmin({ http: true, config: { auth: { anonymous: "never" } } });
  try {
    const scrape = async () => parseExposition(await (await t.fetch("/metrics")).text());
    const before = await scrape();
    assert.equal(before.value("perch_clients_connected", { protocol_version: "5" }), 0);

    await t.request("/api/v1/users", {
      method: "POST",
      body: JSON.stringify({ username: "m", password: "pw" }),
    });
    const { client: sub } = await TestClient.connect(t.server.port, {
      clientId: "sub",
      version: 5,
      username: "m",
      password: "pw",
    });
    const { client: pub } = await TestClient.connect(t.server.port, {
      clientId: "pub",
      version: 4,
      username: "m",
      password: "pw",
    });
    const { connack } = await TestClient.connect(t.server.port, {
      clientId: "intruder",
      username: "m",
      password: "wrong",
    });
    assert.notEqual(connack.reasonCode, 0);
    await sub.subscribe("m/#", 2);
    await pub.publish("m/q1", "abcd", { qos: 1 });
    await pub.publish("m/q2", "efghij", { qos: 2 });
    await pub.publish("m/r", "kept", { qos: 1, retain: true });
    for (const publish of await sub.publishes(3)) await sub.ack(publish);

    const after = await scrape();
    assert.equal(after.value("perch_clients_connected", { protocol_version: "5" }), 1);
    assert.equal(after.value("perch_clients_connected", { protocol_version: "4" }), 1);
    assert.equal(after.value("perch_messages_received_total", { qos: "1" }), 2);
    assert.equal(after.value("perch_messages_received_total", { qos: "2" }), 1);
    assert.equal(after.value("perch_messages_sent_total", { qos: "2" }), 1);
    assert.equal(after.value("perch_payload_bytes_received_total", { qos: "2" }), 6);
    assert.equal(after.value("perch_retained_messages"), 1);
    assert.equal(after.value("perch_subscriptions"), 1);
    assert.equal(after.value("perch_auth_failures_total"), 1);
    assert.ok(
      after.value("perch_bytes_received_total") > before.value("perch_bytes_received_total"),
    );
    assert.ok(after.value("perch_bytes_sent_total") > before.value("perch_bytes_sent_total"));
    await pub.disconnect();
    await sub.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("GET /metrics reports the inflight backlog while a subscriber has not acknowledged", async () => {
  const t = await startAdmin();
  try {
    const { client: sub } = await TestClient.connect(t.server.port, {
      clientId: "slow",
      version: 5,
    });
    await sub.subscribe("b/#", 1);
    const { client: pub } = await TestClient.connect(t.server.port, { clientId: "pub" });
    await pub.publish("b/1", "x", { qos: 1 });
    const unacked = await sub.expect(3);
    const held = parseExposition(await (await t.request("/metrics")).text());
    assert.equal(held.value("perch_delivery_backlog", { state: "inflight" }), 1);
    await sub.ack(unacked);
    await sub.expectNothingPending();
    const acked = parseExposition(await (await t.request("/metrics")).text());
    assert.equal(acked.value("perch_delivery_backlog", { state: "inflight" }), 0);
    await pub.disconnect();
    await sub.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("GET /metrics needs a token unless admin.publicMetrics is set", async () => {
  const closed = await startAdmin();
  const open = await startAdmin({ publicMetrics: true });
  try {
    assert.equal((await closed.request("/metrics", { token: null })).status, 401);
    assert.equal((await open.request("/metrics", { token: null })).status, 200);
    assert.equal((await body(await open.request("/api/v1/stats", { token: null }))).status, 401);
  } finally {
    await closed.close();
    await open.close();
  }
});

Deno.test("GET /metrics counts clients by listener, disconnects by reason, refusals by cause, and retained messages without $SYS", async () => {
  const t = await startAdmin({ http: true, config: { limits: { maxConnections: 3 } } });
  try {
    const scrape = async () => parseExposition(await (await t.fetch("/metrics")).text());
    const { client: tcp } = await TestClient.connect(t.server.port, { clientId: "t", version: 5 });
    const { socket } = await RawWebSocket.connect(t.httpPort!, { protocols: ["mqtt"] });
    const ws = TestClient.wrap(socket!, 5);
    assert.equal((await ws.sendConnect({ clientId: "w" })).reasonCode, 0);
    for (const topic of ["m/r", "$SYS/test"]) {
      const published = await t.fetch("/api/v1/publish", {
        method: "POST",
        body: JSON.stringify({ topic, payload: "kept", retain: true }),
      });
      assert.equal(published.status, 200);
      await published.body?.cancel();
    }
    const during = await scrape();
    assert.equal(during.value("perch_listener_clients_connected", { listener: "tcp" }), 1);
    assert.equal(during.value("perch_listener_clients_connected", { listener: "ws" }), 1);
    assert.equal(during.value("perch_retained_messages"), 2);
    assert.equal(during.value("perch_retained_messages_without_sys"), 1);

    // Refusals: a wrong password (auth), a ban, and one connection over limits.maxConnections.
    await t.fetch("/api/v1/users", {
      method: "POST",
      body: JSON.stringify({ username: "m", password: "pw" }),
    }).then((r) => r.body?.cancel());
    const wrong = await TestClient.connect(t.server.port, {
      clientId: "x",
      username: "m",
      password: "no",
    });
    assert.equal(wrong.connack.reasonCode, 4);
    await t.fetch("/api/v1/bans", {
      method: "POST",
      body: JSON.stringify({ kind: "clientId", value: "banned" }),
    }).then((r) => r.body?.cancel());
    const banned = await TestClient.connect(t.server.port, { clientId: "banned", version: 5 });
    assert.equal(banned.connack.reasonCode, 0x8a);
    await Promise.all([wrong.client.closed, banned.client.closed]);
    const third = await TestClient.connect(t.server.port, { clientId: "third", version: 5 });
    const fourth = await TestClient.connect(t.server.port, { clientId: "fourth", version: 5 });
    assert.equal(fourth.connack.reasonCode, 0x89);
    await fourth.client.closed;

    // Disconnects: a clean one, a lost connection, a kick.
    await tcp.disconnect();
    await ws.destroy();
    const kick = await t.fetch("/api/v1/clients/third", { method: "DELETE" });
    assert.equal(kick.status, 204);
    await third.client.closed;
    await t.server.until(() => t.server.broker.listClients().length === 0);
    // A CONNECT that breaks the protocol: a client id with a control character (0x85).
    const bad = await TestClient.connect(t.server.port, { clientId: "bell\u0007", version: 5 });
    assert.equal(bad.connack.reasonCode, 0x85);
    await bad.client.closed;

    const after = await scrape();
    assert.equal(after.value("perch_listener_clients_connected", { listener: "tcp" }), 0);
    assert.equal(after.value("perch_listener_clients_connected", { listener: "ws" }), 0);
    assert.equal(after.value("perch_listener_connects_total", { listener: "tcp" }), 2);
    assert.equal(after.value("perch_listener_connects_total", { listener: "ws" }), 1);
    assert.equal(after.value("perch_client_disconnects_total", { reason: "client_disconnect" }), 1);
    assert.equal(after.value("perch_client_disconnects_total", { reason: "connection_lost" }), 1);
    assert.equal(
      after.value("perch_client_disconnects_total", { reason: "administrative_action" }),
      1,
    );
    assert.equal(after.value("perch_connections_refused_total", { cause: "auth" }), 1);
    assert.equal(after.value("perch_connections_refused_total", { cause: "banned" }), 1);
    assert.equal(after.value("perch_connections_refused_total", { cause: "limit" }), 1);
    assert.equal(after.value("perch_connections_refused_total", { cause: "protocol" }), 1);
  } finally {
    await t.close();
  }
});
