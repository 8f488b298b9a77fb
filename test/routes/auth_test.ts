/**
 * API security: static tokens in `x-token` or `Authorization: Bearer`, login tokens, roles, and
 * the open mode with no credentials configured. Through `app.request()` and over real HTTP.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sign } from "hono/jwt";
import { presentedToken } from "../../routes/auth.ts";
import {
  ADMIN_TOKEN,
  API_PASSWORD,
  body,
  JWT_SECRET,
  startAdmin,
  VIEWER_TOKEN,
} from "../helpers/admin.ts";

Deno.test("admin API answers 401 without a token, naming how to send one", async () => {
  const t = await startAdmin({ http: true });
  try {
    for (const send of [t.request, t.fetch]) {
      const response = await send("/api/v1/clients", { token: null });
      assert.equal(response.status, 401);
      assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer/);
      const reply = await body(response);
      assert.equal(reply.status, 401);
      assert.match(reply.message as string, /x-token or Authorization: Bearer/);
    }
  } finally {
    await t.close();
  }
});

Deno.test("admin API answers 401 to a wrong token", async () => {
  const t = await startAdmin({ http: true });
  try {
    for (const send of [t.request, t.fetch]) {
      const response = await send("/api/v1/stats", { token: "not-the-token-0123456789" });
      assert.equal(response.status, 401);
      assert.deepEqual(await body(response), { status: 401, message: "Invalid or expired token" });
    }
  } finally {
    await t.close();
  }
});

Deno.test("admin API takes a token in x-token or as Authorization: Bearer", async () => {
  const t = await startAdmin({ http: true });
  try {
    assert.equal((await t.request("/api/v1/stats", { token: ADMIN_TOKEN })).status, 200);
    const bearer = await t.fetch("/api/v1/stats", {
      token: null,
      headers: { authorization: `Bearer ${VIEWER_TOKEN}` },
    });
    assert.equal(bearer.status, 200);
    await bearer.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("presentedToken() prefers x-token and reads only the Bearer scheme", () => {
  assert.equal(presentedToken(new Headers({ "x-token": "a", authorization: "Bearer b" })), "a");
  assert.equal(presentedToken(new Headers({ authorization: "bearer b" })), "b");
  assert.equal(presentedToken(new Headers({ authorization: "Basic b" })), undefined);
  assert.equal(presentedToken(new Headers()), undefined);
});

Deno.test("admin API lets a viewer read and answers 403 to a viewer's write", async () => {
  const t = await startAdmin({ http: true });
  try {
    assert.equal((await t.request("/api/v1/sessions", { token: VIEWER_TOKEN })).status, 200);
    for (const send of [t.request, t.fetch]) {
      const response = await send("/api/v1/publish", {
        token: VIEWER_TOKEN,
        method: "POST",
        body: JSON.stringify({ topic: "a", payload: "x" }),
      });
      assert.equal(response.status, 403);
      assert.match((await body(response)).message as string, /viewer.*may only read/);
    }
    const kick = await t.request("/api/v1/clients/any", { token: VIEWER_TOKEN, method: "DELETE" });
    assert.equal(kick.status, 403);
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/login returns a short-lived token that works like a static one", async () => {
  const t = await startAdmin({ http: true, users: true });
  try {
    const login = await t.fetch("/api/v1/login", {
      token: null,
      method: "POST",
      body: JSON.stringify({ username: "ops", password: API_PASSWORD }),
    });
    assert.equal(login.status, 200);
    const reply = await body<{ token: string; tokenType: string; expiresIn: number; role: string }>(
      login,
    );
    assert.equal(reply.tokenType, "Bearer");
    assert.equal(reply.role, "admin");
    assert.equal(reply.expiresIn, 60);
    const stats = await t.fetch("/api/v1/stats", {
      token: null,
      headers: { authorization: `Bearer ${reply.token}` },
    });
    assert.equal(stats.status, 200);
    await stats.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/login gives a viewer a token that cannot write", async () => {
  const t = await startAdmin({ users: true });
  try {
    const login = await t.request("/api/v1/login", {
      token: null,
      method: "POST",
      body: JSON.stringify({ username: "watcher", password: API_PASSWORD }),
    });
    const { token, role } = await body<{ token: string; role: string }>(login);
    assert.equal(role, "viewer");
    assert.equal((await t.request("/api/v1/sessions", { token })).status, 200);
    const write = await t.request("/api/v1/sessions/x", { token, method: "DELETE" });
    assert.equal(write.status, 403);
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/login answers 401 to a wrong password or an unknown user", async () => {
  const t = await startAdmin({ users: true });
  try {
    for (
      const credentials of [
        { username: "ops", password: "wrong" },
        { username: "nobody", password: API_PASSWORD },
      ]
    ) {
      const response = await t.request("/api/v1/login", {
        token: null,
        method: "POST",
        body: JSON.stringify(credentials),
      });
      assert.equal(response.status, 401);
      assert.deepEqual(await body(response), {
        status: 401,
        message: "Wrong user name or password",
      });
    }
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/login answers 400 naming a missing field", async () => {
  const t = await startAdmin({ users: true });
  try {
    const response = await t.request("/api/v1/login", {
      token: null,
      method: "POST",
      body: JSON.stringify({ username: "ops" }),
    });
    assert.equal(response.status, 400);
    const reply = await body<{ issues: { field: string; message: string }[] }>(response);
    assert.deepEqual(reply.issues, [{ field: "password", message: "expected a password" }]);
  } finally {
    await t.close();
  }
});

Deno.test("admin API refuses an expired login token, and one signed with another key", async () => {
  const t = await startAdmin({ users: true });
  try {
    const now = Math.floor(Date.now() / 1000);
    const expired = await sign(
      { iss: "perch", sub: "ops", role: "admin", iat: now - 120, exp: now - 60 },
      JWT_SECRET,
      "HS256",
    );
    const forged = await sign(
      { iss: "perch", sub: "ops", role: "admin", iat: now, exp: now + 60 },
      "another-secret-another-secret-0123",
      "HS256",
    );
    for (const token of [expired, forged]) {
      const response = await t.request("/api/v1/stats", { token });
      assert.equal(response.status, 401);
    }
  } finally {
    await t.close();
  }
});

Deno.test("admin API with no credentials configured lets every caller act as admin", async () => {
  const t = await startAdmin({ tokens: [] });
  try {
    const response = await t.request("/api/v1/publish", {
      token: null,
      method: "POST",
      body: JSON.stringify({ topic: "open/mode", payload: "x" }),
    });
    assert.equal(response.status, 200);
  } finally {
    await t.close();
  }
});

Deno.test("admin API serves health probes, login and the OpenAPI document without a token", async () => {
  const t = await startAdmin({ http: true });
  try {
    for (const path of ["/healthz", "/readyz", "/api/v1/openapi.json"]) {
      const response = await t.fetch(path, { token: null });
      assert.equal(response.status, 200, path);
      await response.body?.cancel();
    }
  } finally {
    await t.close();
  }
});
