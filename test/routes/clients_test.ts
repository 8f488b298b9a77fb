/**
 * `/api/v1/clients`: listing with paging and filters, one client with its session, and kicking a
 * live client; the PROXY protocol addresses as the clients list reports them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { DenoListener } from "../../src/transport/deno_listener.ts";
import { body, startAdmin } from "../helpers/admin.ts";
import { v2Header } from "../helpers/proxy_header.ts";
import { TestClient } from "../helpers/test_client.ts";

interface Page<T> {
  data: T[];
  meta: { page: number; limit: number; count: number; hasNext: boolean };
}

interface ClientReply {
  clientId: string;
  username: string | null;
  remoteAddress: string;
  remotePort: number;
  protocolVersion: number;
  transport: string;
  subscriptions: number;
}

Deno.test("GET /api/v1/clients pages connected clients in client id order", async () => {
  const t = await startAdmin({ http: true });
  const clients: TestClient[] = [];
  try {
    for (const id of ["c-3", "c-1", "c-2"]) {
      clients.push((await TestClient.connect(t.server.port, { clientId: id, version: 5 })).client);
    }
    const first = await body<Page<ClientReply>>(await t.fetch("/api/v1/clients?limit=2"));
    assert.deepEqual(first.data.map((c) => c.clientId), ["c-1", "c-2"]);
    assert.deepEqual(first.meta, { page: 1, limit: 2, count: 3, hasNext: true });
    const second = await body<Page<ClientReply>>(await t.request("/api/v1/clients?limit=2&page=2"));
    assert.deepEqual(second.data.map((c) => c.clientId), ["c-3"]);
    assert.equal(second.meta.hasNext, false);
    const client = first.data[0];
    assert.equal(client.protocolVersion, 5);
    assert.equal(client.transport, "tcp");
    assert.equal(client.remoteAddress, "127.0.0.1");
  } finally {
    for (const client of clients) await client.disconnect();
    await t.close();
  }
});

Deno.test("GET /api/v1/clients filters by client id, part of it, user name and address", async () => {
  const t = await startAdmin();
  const clients: TestClient[] = [];
  try {
    await t.request("/api/v1/users", {
      method: "POST",
      body: JSON.stringify({ username: "alice", password: "pw-alice" }),
    });
    clients.push(
      (await TestClient.connect(t.server.port, {
        clientId: "sensor-1",
        username: "alice",
        password: "pw-alice",
      })).client,
    );
    clients.push((await TestClient.connect(t.server.port, { clientId: "pump-7" })).client);
    const ids = async (query: string) =>
      (await body<Page<ClientReply>>(await t.request(`/api/v1/clients?${query}`))).data
        .map((c) => c.clientId);
    assert.deepEqual(await ids("clientId=pump-7"), ["pump-7"]);
    assert.deepEqual(await ids("like=sens"), ["sensor-1"]);
    assert.deepEqual(await ids("username=alice"), ["sensor-1"]);
    assert.deepEqual(await ids("address=127.0.0.1"), ["pump-7", "sensor-1"]);
    assert.deepEqual(await ids("address=10.0.0.1"), []);
  } finally {
    for (const client of clients) await client.disconnect();
    await t.close();
  }
});

Deno.test("GET /api/v1/clients answers 400 naming a bad paging parameter", async () => {
  const t = await startAdmin();
  try {
    for (const query of ["limit=0", "limit=5000", "page=abc"]) {
      const response = await t.request(`/api/v1/clients?${query}`);
      assert.equal(response.status, 400, query);
      const reply = await body<{ issues: { field: string; message: string }[] }>(response);
      assert.equal(reply.issues[0].field, query.split("=")[0]);
      assert.match(reply.issues[0].message, /^expected an integer from 1 to/);
    }
  } finally {
    await t.close();
  }
});

Deno.test("GET /api/v1/clients/{clientId} returns the client with its session and subscriptions", async () => {
  const t = await startAdmin({ http: true });
  try {
    const { client } = await TestClient.connect(t.server.port, {
      clientId: "detail",
      version: 5,
      keepAlive: 30,
      properties: { sessionExpiryInterval: 600 },
    });
    await client.subscribe([{ filter: "a/+", qos: 1 }, { filter: "$share/g/b/#", qos: 0 }]);
    const reply = await body<
      ClientReply & {
        keepAlive: number;
        expiryInterval: number;
        session: { connected: boolean; subscriptionList: { filter: string; qos: number }[] };
      }
    >(await t.fetch("/api/v1/clients/detail"));
    assert.equal(reply.keepAlive, 30);
    assert.equal(reply.expiryInterval, 600);
    assert.equal(reply.subscriptions, 2);
    assert.equal(reply.session.connected, true);
    assert.deepEqual(
      reply.session.subscriptionList.map((s) => [s.filter, s.qos]),
      [["a/+", 1], ["$share/g/b/#", 0]],
    );
    const missing = await t.request("/api/v1/clients/nobody");
    assert.equal(missing.status, 404);
    assert.deepEqual(await body(missing), { status: 404, message: 'No connected client "nobody"' });
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("DELETE /api/v1/clients/{clientId} sends an MQTT 5 client DISCONNECT 0x98 [MQTT-3.14.2-1]", async () => {
  const t = await startAdmin({ http: true });
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "kicked", version: 5 });
    const response = await t.fetch("/api/v1/clients/kicked", { method: "DELETE" });
    assert.equal(response.status, 204);
    const disconnect = await client.expect(PacketType.DISCONNECT);
    assert.equal(disconnect.reasonCode, ReasonCode.AdministrativeAction);
    await client.closed;
    await t.server.until(() => t.server.broker.getClient("kicked") === undefined);
    const again = await t.request("/api/v1/clients/kicked", { method: "DELETE" });
    assert.equal(again.status, 404);
  } finally {
    await t.close();
  }
});

Deno.test("DELETE /api/v1/clients/{clientId} closes a 3.1.1 client's connection", async () => {
  const t = await startAdmin();
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "old", version: 4 });
    assert.equal((await t.request("/api/v1/clients/old", { method: "DELETE" })).status, 204);
    assert.equal(await client.next(), undefined); // closed without a DISCONNECT
  } finally {
    await t.close();
  }
});

Deno.test("GET /api/v1/clients reports the addresses PROXY v1 and v2 headers carry", async () => {
  // The proxied addresses are not loopback ones: anonymous clients must be allowed from anywhere.
  const t = await startAdmin({ http: true, config: { auth: { anonymous: "always" } } });
  const proxied = DenoListener.tcp(
    { hostname: "127.0.0.1", port: 0, proxyProtocol: { timeout: 5000 } },
    t.server.broker.accept,
  );
  const clients: TestClient[] = [];
  try {
    const v1 = await TestClient.open(proxied.port, 5);
    await v1.sendRaw(new TextEncoder().encode("PROXY TCP4 198.51.100.20 10.0.0.1 40001 1883\r\n"));
    assert.equal((await v1.sendConnect({ clientId: "via-v1", version: 5 })).reasonCode, 0);
    clients.push(v1);
    const v2 = await TestClient.open(proxied.port, 5);
    const source = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 0x42];
    await v2.sendRaw(
      v2Header(1, 0x21, [...source, ...new Array(16).fill(0), 0x9c, 0x42, 0x07, 0x5b]),
    );
    assert.equal((await v2.sendConnect({ clientId: "via-v2", version: 5 })).reasonCode, 0);
    clients.push(v2);
    const reply = await body<Page<ClientReply>>(await t.fetch("/api/v1/clients?like=via-"));
    assert.deepEqual(
      reply.data.map((c) => [c.clientId, c.remoteAddress, c.remotePort]),
      [["via-v1", "198.51.100.20", 40001], ["via-v2", "2001:db8::42", 40002]],
    );
    const byAddress = await body<Page<ClientReply>>(
      await t.request("/api/v1/clients?address=198.51.100.20"),
    );
    assert.deepEqual(byAddress.data.map((c) => c.clientId), ["via-v1"]);
  } finally {
    for (const client of clients) await client.destroy();
    proxied.close();
    await t.close();
  }
});
