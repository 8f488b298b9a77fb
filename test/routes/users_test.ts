import assert from "node:assert/strict";
import { ReasonCode } from "../../src/codec/mod.ts";
import { body, startAdmin } from "../helpers/admin.ts";
import { TestClient } from "../helpers/test_client.ts";

function json(method: string, payload: unknown): RequestInit {
  return { method, body: JSON.stringify(payload) };
}

/** The CONNACK reason code a user name and password get. */
async function connectAs(port: number, username: string, password: string): Promise<number> {
  const { client, connack } = await TestClient.connect(port, {
    clientId: `c-${username}`,
    version: 5,
    username,
    password,
  });
  if (connack.reasonCode === 0) await client.disconnect();
  else await client.closed;
  return connack.reasonCode;
}

Deno.test("POST /api/v1/users adds a user who can connect at once, and writes the file", async () => {
  const t = await startAdmin({ http: true });
  try {
    const response = await t.fetch(
      "/api/v1/users",
      json("POST", { username: "dev1", password: "s3cret" }),
    );
    assert.equal(response.status, 201);
    assert.deepEqual(await body(response), { username: "dev1" });
    assert.equal(await connectAs(t.server.port, "dev1", "s3cret"), ReasonCode.Success);
    assert.equal(await connectAs(t.server.port, "dev1", "wrong"), ReasonCode.BadUserNameOrPassword);
    const file = await Deno.readTextFile(`${t.dir}/users.txt`);
    assert.match(file, /^dev1:SCRAM-SHA-256\$/m);
    assert.ok(!file.includes("s3cret"), "the file holds a verifier, never the password");
    const duplicate = await t.request(
      "/api/v1/users",
      json("POST", { username: "dev1", password: "x" }),
    );
    assert.equal(duplicate.status, 409);
  } finally {
    await t.close();
  }
});

Deno.test("GET /api/v1/users lists users and GET /api/v1/users/{username} finds one", async () => {
  const t = await startAdmin();
  try {
    for (const username of ["zed", "amy"]) {
      await t.request("/api/v1/users", json("POST", { username, password: "pw" }));
    }
    const list = await body<{ data: { username: string }[] }>(await t.request("/api/v1/users"));
    assert.deepEqual(list.data, [{ username: "amy" }, { username: "zed" }]);
    assert.deepEqual(await body(await t.request("/api/v1/users/amy")), { username: "amy" });
    assert.equal((await t.request("/api/v1/users/bob")).status, 404);
  } finally {
    await t.close();
  }
});

Deno.test("PUT /api/v1/users/{username} changes the password without a restart", async () => {
  const t = await startAdmin({ http: true });
  try {
    await t.request("/api/v1/users", json("POST", { username: "dev2", password: "old" }));
    const response = await t.fetch("/api/v1/users/dev2", json("PUT", { password: "new" }));
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.equal(await connectAs(t.server.port, "dev2", "new"), ReasonCode.Success);
    assert.equal(await connectAs(t.server.port, "dev2", "old"), ReasonCode.BadUserNameOrPassword);
    assert.equal(
      (await t.request("/api/v1/users/nobody", json("PUT", { password: "x" }))).status,
      404,
    );
  } finally {
    await t.close();
  }
});

Deno.test("DELETE /api/v1/users/{username} removes the user from memory and the file", async () => {
  const t = await startAdmin({ config: { auth: { anonymous: "never" } } });
  try {
    await t.request("/api/v1/users", json("POST", { username: "dev3", password: "pw" }));
    assert.equal((await t.request("/api/v1/users/dev3", { method: "DELETE" })).status, 204);
    assert.notEqual(await connectAs(t.server.port, "dev3", "pw"), ReasonCode.Success);
    assert.ok(!(await Deno.readTextFile(`${t.dir}/users.txt`)).includes("dev3:"));
    assert.equal((await t.request("/api/v1/users/dev3", { method: "DELETE" })).status, 404);
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/users answers 400 naming a bad user name or a missing password", async () => {
  const t = await startAdmin();
  try {
    const badName = await t.request(
      "/api/v1/users",
      json("POST", { username: "a:b", password: "x" }),
    );
    assert.equal(badName.status, 400);
    assert.deepEqual((await body(badName)).issues, [
      { field: "username", message: 'the user name contains ":" or a line break' },
    ]);
    const noPassword = await t.request("/api/v1/users", json("POST", { username: "ok" }));
    assert.equal(noPassword.status, 400);
    assert.deepEqual((await body(noPassword)).issues, [
      { field: "password", message: "expected a non-empty string" },
    ]);
  } finally {
    await t.close();
  }
});

Deno.test("/api/v1/users answers 409 when no password file is configured", async () => {
  const t = await startAdmin({ config: { auth: { chain: [] } } });
  try {
    const response = await t.request("/api/v1/users");
    assert.equal(response.status, 409);
    assert.match((await body(response)).message as string, /auth\.passwordFile\.path/);
  } finally {
    await t.close();
  }
});
