import assert from "node:assert/strict";
import mqtt from "mqtt";
import { PacketType } from "../../src/codec/mod.ts";
import { body, startAdmin } from "../helpers/admin.ts";
import { TestClient, text } from "../helpers/test_client.ts";

type Issues = { issues: { field: string; message: string }[] };

function post(payload: unknown): RequestInit {
  return { method: "POST", body: JSON.stringify(payload) };
}

Deno.test("POST /api/v1/publish delivers to a subscriber with its MQTT 5 properties", async () => {
  const t = await startAdmin({ http: true });
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "sub", version: 5 });
    await client.subscribe("alerts/#", 1);
    const response = await t.fetch(
      "/api/v1/publish",
      post({
        topic: "alerts/fire",
        payload: "evacuate",
        qos: 1,
        properties: {
          contentType: "text/plain",
          responseTopic: "alerts/ack",
          correlationData: "AQID",
          userProperties: [["source", "admin"], ["source", "api"]],
          messageExpiryInterval: 3600,
          payloadFormatIndicator: 1,
        },
      }),
    );
    assert.equal(response.status, 200);
    assert.deepEqual(await body(response), { reasonCode: 0, reason: "Success" });
    const delivered = await client.expect(PacketType.PUBLISH);
    assert.equal(delivered.topic, "alerts/fire");
    assert.equal(text(delivered.payload), "evacuate");
    assert.equal(delivered.qos, 1);
    const p = delivered.properties!;
    assert.equal(p.contentType, "text/plain");
    assert.equal(p.responseTopic, "alerts/ack");
    assert.deepEqual([...p.correlationData!], [1, 2, 3]);
    assert.deepEqual(p.userProperties, [["source", "admin"], ["source", "api"]]);
    assert.equal(p.payloadFormatIndicator, 1);
    assert.ok(p.messageExpiryInterval! > 3590 && p.messageExpiryInterval! <= 3600);
    await client.ack(delivered);
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/publish takes a base64 payload and a RETAIN flag (seen by mqtt.js)", async () => {
  const t = await startAdmin();
  try {
    const response = await t.request(
      "/api/v1/publish",
      post({
        topic: "bin/blob",
        payload: "AP8Q",
        encoding: "base64",
        qos: 2,
        retain: true,
      }),
    );
    assert.equal(response.status, 200);
    assert.deepEqual(await body(response), { reasonCode: 16, reason: "No matching subscribers" });
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${t.server.port}`, {
      clientId: "mqttjs-sub",
      reconnectPeriod: 0,
    });
    const message = new Promise<{ payload: Uint8Array; retain: boolean }>((resolve) =>
      client.once(
        "message",
        (_topic, payload, packet) => resolve({ payload, retain: packet.retain }),
      )
    );
    await client.subscribeAsync("bin/#", { qos: 2 });
    const received = await message;
    assert.deepEqual([...received.payload], [0x00, 0xff, 0x10]);
    assert.equal(received.retain, true);
    await client.endAsync();
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/publish answers 400 naming each bad field", async () => {
  const t = await startAdmin({ config: { mqtt: { maxQos: 1 } } });
  try {
    const cases: [unknown, string[]][] = [
      [{ topic: "a/+", payload: "x" }, ["topic"]],
      [{ topic: "a", qos: 3 }, ["qos"]],
      [{ topic: "a", qos: 2 }, ["qos"]], // above mqtt.maxQos
      [{ topic: "a", payload: "not base64!", encoding: "base64" }, ["payload"]],
      [{ topic: "a", encoding: "hex" }, ["encoding"]],
      [{ topic: "a", properties: { correlationData: "%%" } }, ["properties.correlationData"]],
      [{ topic: "a", properties: { userProperties: [["k"]] } }, ["properties.userProperties.0"]],
      [{ topic: "a", properties: { topicAlias: 3 } }, ["properties"]],
      [{
        topic: "a",
        payload: "/w==",
        encoding: "base64",
        properties: { payloadFormatIndicator: 1 },
      }, [
        "payload",
      ]],
      [{ payload: "x" }, ["topic"]],
      [{ topic: "a", retain: "yes" }, ["retain"]],
    ];
    for (const [request, fields] of cases) {
      const response = await t.request("/api/v1/publish", post(request));
      assert.equal(response.status, 400, JSON.stringify(request));
      const reply = await body<Issues & { message: string }>(response);
      assert.deepEqual(reply.issues.map((i) => i.field), fields, JSON.stringify(request));
      assert.match(
        reply.message,
        new RegExp(`^Invalid request: ${fields[0].replaceAll(".", "\\.")}: `),
      );
    }
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/publish answers 400 naming the payload when the PUBLISH would exceed mqtt.maxPacketSize", async () => {
  const t = await startAdmin({ http: true, config: { mqtt: { maxPacketSize: 1024 } } });
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "sub", version: 5 });
    await client.subscribe("big/#", 0);
    // 2 + 5 (topic) + 1000 payload + 1 (no properties) = 1008 remaining, 1011 bytes in all: fits.
    const fits = await t.fetch(
      "/api/v1/publish",
      post({ topic: "big/a", payload: "x".repeat(1000) }),
    );
    assert.equal(fits.status, 200);
    await fits.body?.cancel();
    assert.equal((await client.expect(PacketType.PUBLISH)).payload.length, 1000);
    // The same with a user property that brings the packet over 1024 bytes.
    const over = await t.fetch(
      "/api/v1/publish",
      post({
        topic: "big/a",
        payload: "x".repeat(1000),
        properties: { userProperties: [["k", "v".repeat(20)]] },
      }),
    );
    assert.equal(over.status, 400);
    const reply = await body<Issues & { message: string }>(over);
    assert.deepEqual(reply.issues.map((i) => i.field), ["payload"]);
    assert.match(
      reply.message,
      /^Invalid request: payload: the message makes a 1037-byte PUBLISH packet, over mqtt\.maxPacketSize \(1024 bytes\)$/,
    );
    await client.expectNothingPending();
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/publish answers 400 to malformed JSON and 415 to another content type", async () => {
  const t = await startAdmin({ http: true });
  try {
    const malformed = await t.fetch("/api/v1/publish", { method: "POST", body: "{topic" });
    assert.equal(malformed.status, 400);
    assert.equal((await body(malformed)).message, "Malformed JSON in request body");
    const form = await t.fetch("/api/v1/publish", {
      method: "POST",
      body: "topic=a",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assert.equal(form.status, 415);
    assert.equal((await body(form)).status, 415);
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/publish answers 413 past admin.maxBodySize, over HTTP too", async () => {
  const t = await startAdmin({ http: true, maxBodySize: 1024 });
  try {
    const large = JSON.stringify({ topic: "big", payload: "x".repeat(2048) });
    for (const send of [t.request, t.fetch]) {
      const response = await send("/api/v1/publish", { method: "POST", body: large });
      assert.equal(response.status, 413);
      assert.match((await body(response)).message as string, /exceeds 1024 bytes/);
    }
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/publish never delivers to an MQTT client that may not read it", async () => {
  const t = await startAdmin({
    config: { acl: { rules: [{ permission: "deny", action: "subscribe", topic: "secret/#" }] } },
  });
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "curious", version: 5 });
    const suback = await client.subscribe("#", 0);
    assert.deepEqual(suback.reasonCodes, [0]);
    await t.request("/api/v1/publish", post({ topic: "secret/plan", payload: "x" }));
    await t.request("/api/v1/publish", post({ topic: "public/news", payload: "y" }));
    const delivered = await client.expect(PacketType.PUBLISH);
    assert.equal(delivered.topic, "public/news");
    assert.equal(t.server.broker.stats.droppedNotAuthorized, 1);
    await client.disconnect();
  } finally {
    await t.close();
  }
});
