/**
 * `GET /api/v1/me`: the name and role behind the presented token, and whether the API asks for
 * credentials at all, as the dashboard reads them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ADMIN_TOKEN, API_PASSWORD, body, startAdmin, VIEWER_TOKEN } from "../helpers/admin.ts";

Deno.test("GET /api/v1/me names the caller of a static token, a login token, or none", async () => {
  const t = await startAdmin({ users: true });
  try {
    assert.deepEqual(await body(await t.request("/api/v1/me", { token: ADMIN_TOKEN })), {
      name: "ci-admin",
      role: "admin",
      authenticated: true,
    });
    assert.deepEqual(await body(await t.request("/api/v1/me", { token: VIEWER_TOKEN })), {
      name: "ci-viewer",
      role: "viewer",
      authenticated: true,
    });
    const login = await body<{ token: string }>(
      await t.request("/api/v1/login", {
        method: "POST",
        token: null,
        body: JSON.stringify({ username: "watcher", password: API_PASSWORD }),
      }),
    );
    assert.deepEqual(await body(await t.request("/api/v1/me", { token: login.token })), {
      name: "watcher",
      role: "viewer",
      authenticated: true,
    });
    assert.equal((await t.request("/api/v1/me", { token: null })).status, 401);
  } finally {
    await t.close();
  }
});

Deno.test("GET /api/v1/me on an API without credentials: an anonymous admin", async () => {
  const t = await startAdmin({ tokens: [] });
  try {
    assert.deepEqual(await body(await t.request("/api/v1/me", { token: null })), {
      name: "anonymous",
      role: "admin",
      authenticated: false,
    });
  } finally {
    await t.close();
  }
});
