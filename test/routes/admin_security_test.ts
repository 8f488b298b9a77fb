/**
 * Admin API hardening over real HTTP: an open API (no credentials) answers only to loopback Host
 * names (DNS rebinding), failed logins are locked out with 429, every write is audited naming
 * the token or user.
 *
 * @module
 */

import assert from "node:assert/strict";
import { LoginThrottle } from "../../routes/_throttle.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { ADMIN_TOKEN, API_PASSWORD, body, startAdmin, VIEWER_TOKEN } from "../helpers/admin.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Sends one raw HTTP/1.1 request (so the Host header is whatever the test says). */
async function rawRequest(
  port: number,
  lines: string[],
): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode([...lines, "Connection: close", "", ""].join("\r\n")));
    let text = "";
    const buffer = new Uint8Array(16 * 1024);
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
    }
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
    return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
  } finally {
    conn.close();
  }
}

Deno.test("an admin API without credentials refuses a forged Host with 403 (DNS rebinding)", async () => {
  const t = await startAdmin({ http: true, tokens: [] });
  try {
    const port = t.httpPort!;
    for (const host of ["evil.example", `evil.example:${port}`, "10.0.0.1", "127.0.0.1.nip.io"]) {
      const reply = await rawRequest(port, [`GET /api/v1/stats HTTP/1.1`, `Host: ${host}`]);
      assert.equal(reply.status, 403, host);
      assert.match(
        JSON.parse(reply.body).message,
        /answers only to localhost, 127\.0\.0\.1 or \[::1\]/,
      );
    }
    for (
      const host of [
        "localhost",
        `localhost:${port}`,
        "127.0.0.1",
        `127.0.0.1:${port}`,
        "[::1]",
        `[::1]:${port}`,
      ]
    ) {
      const reply = await rawRequest(port, [`GET /api/v1/stats HTTP/1.1`, `Host: ${host}`]);
      assert.equal(reply.status, 200, host);
    }
  } finally {
    await t.close();
  }
});

Deno.test("an admin API with credentials answers whatever the Host (it may be served by name)", async () => {
  const t = await startAdmin({ http: true });
  try {
    const reply = await rawRequest(t.httpPort!, [
      "GET /api/v1/stats HTTP/1.1",
      "Host: broker.example.com",
      `x-token: ${ADMIN_TOKEN}`,
    ]);
    assert.equal(reply.status, 200);
  } finally {
    await t.close();
  }
});

function login(username: string, password: string): RequestInit & { token: null } {
  return { token: null, method: "POST", body: JSON.stringify({ username, password }) };
}

Deno.test("POST /api/v1/login answers 429 with Retry-After after admin.loginMaxFailures failures, until the lock-out ends", async () => {
  const clock = new ManualClock(1_700_000_000_000);
  const t = await startAdmin({
    http: true,
    users: true,
    clock,
    login: { maxFailures: 3, lockout: 60_000 },
  });
  try {
    for (let i = 0; i < 3; i++) {
      const failed = await t.fetch("/api/v1/login", login("ops", "wrong"));
      assert.equal(failed.status, 401);
      await failed.body?.cancel();
    }
    // Locked out: even the right password is not checked.
    const locked = await t.fetch("/api/v1/login", login("ops", API_PASSWORD));
    assert.equal(locked.status, 429);
    assert.equal(locked.headers.get("retry-after"), "60");
    assert.match((await body(locked)).message as string, /Too many failed logins .*retry in 60 s/);
    // Another user from the same address is locked out too: the address is.
    const other = await t.fetch("/api/v1/login", login("watcher", API_PASSWORD));
    assert.equal(other.status, 429);
    await other.body?.cancel();
    clock.advance(60_000);
    const ok = await t.fetch("/api/v1/login", login("ops", API_PASSWORD));
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const logs = t.apiLogs.map((entry) => JSON.parse(entry.line));
    assert.ok(
      logs.some((l) =>
        l.msg === "admin login failed" && l.username === "ops" && l.remote === "127.0.0.1"
      ),
    );
    assert.ok(
      logs.some((l) =>
        l.msg === "admin login refused: too many failures" && l.lockedBy === "address"
      ),
    );
    assert.ok(logs.some((l) => l.msg === "admin login" && l.username === "ops"));
  } finally {
    await t.close();
  }
});

Deno.test("LoginThrottle locks a user name out across addresses, forgives on success, and stays bounded", () => {
  const clock = new ManualClock(0);
  const throttle = new LoginThrottle({ maxFailures: 2, lockout: 1000, clock, maxEntries: 4 });
  assert.equal(throttle.begin("10.0.0.1", "alice"), undefined);
  assert.equal(throttle.begin("10.0.0.2", "alice"), undefined);
  // Two failures for alice from two addresses: alice is locked, the addresses are not.
  assert.deepEqual(throttle.begin("10.0.0.3", "alice"), { by: "username", retryAfter: 1000 });
  assert.equal(throttle.begin("10.0.0.3", "bob"), undefined);
  throttle.succeeded("10.0.0.3", "bob");
  assert.equal(throttle.begin("10.0.0.3", "bob"), undefined);
  // Many names and addresses: each map keeps at most 4 entries.
  for (let i = 0; i < 100; i++) throttle.begin(`10.1.0.${i}`, `user-${i}`);
  assert.ok(throttle.size <= 8, `size ${throttle.size}`);
  clock.advance(1000);
  assert.equal(throttle.begin("10.0.0.9", "alice"), undefined);
});

Deno.test("every admin write is audited with the token's name, status and address; reads are not", async () => {
  const t = await startAdmin({ http: true });
  try {
    const published = await t.fetch("/api/v1/publish", {
      method: "POST",
      body: JSON.stringify({ topic: "a/b", payload: "x" }),
    });
    assert.equal(published.status, 200);
    await published.body?.cancel();
    const refused = await t.fetch("/api/v1/retained/a%2Fb", {
      method: "DELETE",
      token: VIEWER_TOKEN,
    });
    assert.equal(refused.status, 403);
    await refused.body?.cancel();
    const read = await t.fetch("/api/v1/stats");
    assert.equal(read.status, 200);
    await read.body?.cancel();
    const audit = t.apiLogs.map((entry) => JSON.parse(entry.line)).filter((l) =>
      l.msg === "admin audit"
    );
    assert.deepEqual(audit.map(({ time: _, ...rest }) => rest), [
      {
        level: "info",
        msg: "admin audit",
        method: "POST",
        path: "/api/v1/publish",
        status: 200,
        principal: "ci-admin",
        role: "admin",
        remote: "127.0.0.1",
      },
      {
        level: "info",
        msg: "admin audit",
        method: "DELETE",
        path: "/api/v1/retained/a%2Fb",
        status: 403,
        principal: null,
        role: null,
        remote: "127.0.0.1",
      },
    ]);
  } finally {
    await t.close();
  }
});
