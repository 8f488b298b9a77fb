import assert from "node:assert/strict";
import { body, startAdmin } from "../helpers/admin.ts";
import { TestClient } from "../helpers/test_client.ts";

Deno.test("GET /api/v1/stats counts connections by protocol and messages by QoS", async () => {
  const t = await startAdmin({ http: true });
  try {
    const { client: v5 } = await TestClient.connect(t.server.port, {
      clientId: "five",
      version: 5,
    });
    const { client: v4 } = await TestClient.connect(t.server.port, {
      clientId: "four",
      version: 4,
    });
    await v5.subscribe("s/#", 1);
    await v4.publish("s/a", "12345", { qos: 1 });
    await v4.publish("s/b", "678", { qos: 0 });
    await v5.ack(await v5.expect(3));
    await v5.expect(3);
    const stats = await body<Record<string, Record<string, unknown>>>(
      await t.fetch("/api/v1/stats"),
    );
    assert.deepEqual(stats.connections.byProtocolVersion, { "3": 0, "4": 1, "5": 1 });
    assert.equal(stats.connections.connected, 2);
    assert.deepEqual(stats.messages.received, { qos0: 1, qos1: 1, qos2: 0 });
    assert.deepEqual(stats.messages.sent, { qos0: 1, qos1: 1, qos2: 0 });
    assert.deepEqual(stats.payloadBytes.received, { qos0: 3, qos1: 5, qos2: 0 });
    assert.equal(stats.subscriptions, 1);
    assert.equal(stats.sessions, 2);
    await v4.disconnect();
    await v5.disconnect();
  } finally {
    await t.close();
  }
});
