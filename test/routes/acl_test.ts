import assert from "node:assert/strict";
import { parse } from "yaml";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { body, startAdmin } from "../helpers/admin.ts";
import { TestClient } from "../helpers/test_client.ts";

function json(method: string, payload: unknown): RequestInit {
  return { method, body: JSON.stringify(payload) };
}

interface AclReply {
  default: string;
  file: string | null;
  rules: { source: string; index: number; topic: string; permission: string }[];
}

Deno.test("GET /api/v1/acl lists config rules, then file rules, in check order", async () => {
  const t = await startAdmin({
    config: { acl: { rules: [{ permission: "allow", action: "both", topic: "public/#" }] } },
  });
  try {
    await t.request(
      "/api/v1/acl/rules",
      json("POST", {
        permission: "deny",
        action: "publish",
        topic: "devices/%c/config",
      }),
    );
    const reply = await body<AclReply>(await t.request("/api/v1/acl"));
    assert.equal(reply.default, "allow");
    assert.equal(reply.file, `${t.dir}/acl.yaml`);
    assert.deepEqual(reply.rules.map((r) => [r.source, r.index, r.permission, r.topic]), [
      ["config", 0, "allow", "public/#"],
      ["file", 0, "deny", "devices/%c/config"],
    ]);
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/acl/rules denies a connected client's next publish, no restart [MQTT-3.3.5-2]", async () => {
  const t = await startAdmin({ http: true });
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "dev", version: 5 });
    assert.equal(
      (await client.publish("plant/valve", "open", { qos: 1 }))?.type,
      PacketType.PUBACK,
    );
    const response = await t.fetch(
      "/api/v1/acl/rules",
      json("POST", {
        permission: "deny",
        action: "publish",
        topic: "plant/#",
        clients: ["dev"],
      }),
    );
    assert.equal(response.status, 201);
    assert.deepEqual(await body(response), {
      permission: "deny",
      action: "publish",
      topic: "plant/#",
      clients: ["dev"],
      source: "file",
      index: 0,
    });
    const ack = await client.publish("plant/valve", "open", { qos: 1 });
    assert.equal(ack?.type, PacketType.PUBACK);
    assert.equal((ack as { reasonCode: number }).reasonCode, ReasonCode.NotAuthorized);
    const saved = parse(await Deno.readTextFile(`${t.dir}/acl.yaml`));
    assert.deepEqual(saved, [{
      permission: "deny",
      action: "publish",
      topic: "plant/#",
      clients: ["dev"],
    }]);
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("PUT and DELETE /api/v1/acl/rules/{index} replace and remove file rules", async () => {
  const t = await startAdmin();
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "sub", version: 5 });
    await t.request(
      "/api/v1/acl/rules",
      json("POST", { permission: "deny", action: "subscribe", topic: "a/#" }),
    );
    await t.request(
      "/api/v1/acl/rules",
      json("POST", {
        permission: "deny",
        action: "subscribe",
        topic: "b/#",
        position: 0,
      }),
    );
    const topics = async () =>
      (await body<AclReply>(await t.request("/api/v1/acl"))).rules.map((r) => r.topic);
    assert.deepEqual(await topics(), ["b/#", "a/#"]);
    assert.deepEqual((await client.subscribe("b/x", 0)).reasonCodes, [ReasonCode.NotAuthorized]);
    const replaced = await t.request(
      "/api/v1/acl/rules/0",
      json("PUT", {
        permission: "allow",
        action: "subscribe",
        topic: "b/#",
      }),
    );
    assert.equal(replaced.status, 200);
    assert.deepEqual((await client.subscribe("b/x", 0)).reasonCodes, [0]);
    assert.equal((await t.request("/api/v1/acl/rules/1", { method: "DELETE" })).status, 204);
    assert.deepEqual(await topics(), ["b/#"]);
    assert.deepEqual((await client.subscribe("a/x", 0)).reasonCodes, [0]);
    const missing = await t.request("/api/v1/acl/rules/5", { method: "DELETE" });
    assert.equal(missing.status, 404);
    assert.match(
      (await body(missing)).message as string,
      /No rule 5 in the rules file \(it has 1\)/,
    );
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/acl/rules answers 400 naming the bad field", async () => {
  const t = await startAdmin();
  try {
    const cases: [unknown, string][] = [
      [{ permission: "maybe", action: "both", topic: "a" }, "permission"],
      [{ permission: "allow", action: "read", topic: "a" }, "action"],
      [{ permission: "allow", action: "both", topic: "a/#/b" }, "topic"],
      [{ permission: "allow", action: "both", topic: "a", users: [] }, "users"],
      [{ permission: "allow", action: "both", topic: "a", position: 3 }, "position"],
      [{ permission: "allow", action: "both", topic: "a", extra: 1 }, "(body)"],
    ];
    for (const [rule, field] of cases) {
      const response = await t.request("/api/v1/acl/rules", json("POST", rule));
      assert.equal(response.status, 400, JSON.stringify(rule));
      const reply = await body<{ issues: { field: string }[] }>(response);
      assert.equal(reply.issues[0].field, field, JSON.stringify(rule));
    }
    const badIndex = await t.request("/api/v1/acl/rules/x", { method: "DELETE" });
    assert.equal(badIndex.status, 400);
  } finally {
    await t.close();
  }
});

Deno.test("/api/v1/acl/rules answers 409 when no rules file is configured", async () => {
  const t = await startAdmin({ config: { acl: { file: undefined } } });
  try {
    const response = await t.request(
      "/api/v1/acl/rules",
      json("POST", {
        permission: "deny",
        action: "both",
        topic: "a",
      }),
    );
    assert.equal(response.status, 409);
    assert.match((await body(response)).message as string, /set acl\.file/);
    assert.equal((await body<AclReply>(await t.request("/api/v1/acl"))).file, null);
  } finally {
    await t.close();
  }
});
