/**
 * The app as a whole: the OpenAPI document generated from the route schemas, JSON replies for
 * unknown routes, and the same behaviour through `app.request()` and real HTTP.
 *
 * @module
 */

import assert from "node:assert/strict";
import mqtt from "mqtt";
import { body, startAdmin } from "../helpers/admin.ts";

interface OpenApi {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<
    string,
    Record<string, {
      requestBody?: { content: Record<string, { schema: unknown }> };
      responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
      security?: unknown[];
    }>
  >;
  components: {
    schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }>;
    securitySchemes: Record<string, { type: string }>;
  };
  security: unknown[];
}

const RESOURCE_PATHS = [
  "/api/v1/agents",
  "/api/v1/agents/{clientId}",
  "/api/v1/clients",
  "/api/v1/clients/{clientId}",
  "/api/v1/sessions",
  "/api/v1/sessions/{clientId}",
  "/api/v1/sessions/{clientId}/subscriptions",
  "/api/v1/sessions/{clientId}/subscriptions/{filter}",
  "/api/v1/subscriptions",
  "/api/v1/retained",
  "/api/v1/retained/{topic}",
  "/api/v1/publish",
  "/api/v1/users",
  "/api/v1/users/{username}",
  "/api/v1/acl",
  "/api/v1/acl/rules",
  "/api/v1/acl/rules/{index}",
  "/api/v1/bans",
  "/api/v1/bans/{kind}/{value}",
  "/api/v1/nodes",
  "/api/v1/nodes/{nodeId}",
  "/api/v1/stats",
  "/api/v1/bridges",
  "/api/v1/bridges/{name}",
  "/api/v1/bridge",
  "/api/v1/bridge/",
  "/api/v1/login",
  "/api/v1/me",
  "/healthz",
  "/readyz",
  "/metrics",
];

Deno.test("GET /api/v1/openapi.json describes every route from the zod schemas", async () => {
  const t = await startAdmin({ http: true });
  try {
    const response = await t.fetch("/api/v1/openapi.json", { token: null });
    assert.equal(response.status, 200);
    const doc = await body<OpenApi>(response);
    assert.equal(doc.openapi, "3.1.0");
    assert.equal(doc.info.title, "Perch admin API");
    assert.deepEqual(Object.keys(doc.paths).sort(), [...RESOURCE_PATHS].sort());
    assert.deepEqual(Object.keys(doc.paths["/api/v1/clients/{clientId}"]).sort(), [
      "delete",
      "get",
    ]);
    assert.deepEqual(doc.components.securitySchemes.bearer.type, "http");
    assert.deepEqual(doc.components.securitySchemes.xToken.type, "apiKey");
    assert.deepEqual(doc.security, [{ bearer: [] }, { xToken: [] }]);
    // The publish body is the zod schema the route validates with.
    const publish = doc.components.schemas.PublishRequest;
    assert.deepEqual(
      Object.keys(publish.properties!).sort(),
      ["encoding", "payload", "properties", "qos", "retain", "topic"],
    );
    assert.deepEqual(publish.required, ["topic"]);
    const errorReply = doc.paths["/api/v1/publish"].post.responses["400"];
    assert.equal(
      errorReply.content?.["application/json"].schema.$ref,
      "#/components/schemas/Error",
    );
    assert.deepEqual(doc.paths["/healthz"].get.security, []);
  } finally {
    await t.close();
  }
});

Deno.test("admin API answers an unknown route with a JSON 404", async () => {
  const t = await startAdmin({ http: true });
  try {
    for (const send of [t.request, t.fetch]) {
      const response = await send("/api/v1/nothing");
      assert.equal(response.status, 404);
      assert.deepEqual(await body(response), {
        status: 404,
        message: "No route for GET /api/v1/nothing",
      });
    }
  } finally {
    await t.close();
  }
});

Deno.test("admin API serves MQTT over WebSocket on its own port at /mqtt", async () => {
  const t = await startAdmin({ http: true });
  try {
    const client = await mqtt.connectAsync(`${t.url!.replace("http", "ws")}/mqtt`, {
      clientId: "on-admin-port",
      reconnectPeriod: 0,
    });
    const listed = await body<{ data: { transport: string }[] }>(
      await t.fetch("/api/v1/clients?clientId=on-admin-port"),
    );
    assert.deepEqual(listed.data.map((c) => c.transport), ["ws"]);
    await client.endAsync();
  } finally {
    await t.close();
  }
});
