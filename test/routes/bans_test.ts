/**
 * Bans over real sockets: a kick that bans refuses the client's reconnect with CONNACK 0x8A
 * (MQTT 5) or return code 5 (3.1.1) until the ban expires; bans listed, added (disconnecting the
 * clients they match) and removed through `/api/v1/bans`; the list's bound.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConnackReturnCode, PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { BanList } from "../../src/auth/bans.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { body, startAdmin } from "../helpers/admin.ts";
import { TestClient } from "../helpers/test_client.ts";

const START = 1_700_000_000_000;

interface BanReply {
  kind: string;
  value: string;
  until: string | null;
  reason: string | null;
  createdBy: string;
  disconnected?: number;
}

for (const version of [5, 4] as const) {
  const refused = version === 5 ? ReasonCode.Banned : ConnackReturnCode.NotAuthorized;
  Deno.test(`DELETE /api/v1/clients/{id}?ban= refuses the ${version === 5 ? "MQTT 5" : "3.1.1"} client's reconnect (CONNACK 0x${refused.toString(16)}) until the ban expires`, async () => {
    const clock = new ManualClock(START);
    const t = await startAdmin({ http: true, clock });
    try {
      const { client } = await TestClient.connect(t.server.port, { clientId: "pest", version });
      const kick = await t.fetch("/api/v1/clients/pest?ban=600", { method: "DELETE" });
      assert.equal(kick.status, 200);
      const ban = await body<BanReply>(kick);
      assert.deepEqual(
        { ...ban, until: ban.until },
        {
          kind: "clientId",
          value: "pest",
          until: new Date(START + 600_000).toISOString(),
          reason: "kicked",
          createdAt: new Date(START).toISOString(),
          createdBy: "ci-admin",
        },
      );
      if (version === 5) {
        const disconnect = await client.expect(PacketType.DISCONNECT);
        assert.equal(disconnect.reasonCode, ReasonCode.AdministrativeAction);
      }
      await client.closed;

      const again = await TestClient.connect(t.server.port, { clientId: "pest", version });
      assert.equal(again.connack.reasonCode, refused);
      if (version === 5) {
        assert.equal(
          again.connack.properties?.reasonString,
          `Banned until ${new Date(START + 600_000).toISOString()}`,
        );
      }
      await again.client.closed;
      // Another client id from the same address is not banned.
      const other = await TestClient.connect(t.server.port, { clientId: "other", version });
      assert.equal(other.connack.reasonCode, 0);
      await other.client.disconnect();

      clock.advance(600_000);
      const back = await TestClient.connect(t.server.port, { clientId: "pest", version });
      assert.equal(back.connack.reasonCode, 0);
      await back.client.disconnect();
      const list = await body<{ data: BanReply[] }>(await t.fetch("/api/v1/bans"));
      assert.deepEqual(list.data, []);
    } finally {
      await t.close();
    }
  });
}

Deno.test("DELETE /api/v1/clients/{id}?ban=&banBy=username bans the user under any client id; 400 names banBy when there is none", async () => {
  const t = await startAdmin({ http: true });
  try {
    const user = await t.fetch("/api/v1/users", {
      method: "POST",
      body: JSON.stringify({ username: "ann", password: "pw" }),
    });
    assert.equal(user.status, 201);
    await user.body?.cancel();
    const ann = { username: "ann", password: "pw", version: 5 as const };
    const { client } = await TestClient.connect(t.server.port, { ...ann, clientId: "ann-1" });
    const kick = await t.fetch("/api/v1/clients/ann-1?ban=60&banBy=username", {
      method: "DELETE",
    });
    assert.equal(kick.status, 200);
    const ban = await body<BanReply>(kick);
    assert.deepEqual([ban.kind, ban.value], ["username", "ann"]);
    await client.closed;
    const again = await TestClient.connect(t.server.port, { ...ann, clientId: "ann-2" });
    assert.equal(again.connack.reasonCode, ReasonCode.Banned);
    await again.client.closed;

    // An anonymous client has no user name to ban.
    const anon = await TestClient.connect(t.server.port, { clientId: "anon", version: 5 });
    const noName = await t.fetch("/api/v1/clients/anon?ban=60&banBy=username", {
      method: "DELETE",
    });
    assert.equal(noName.status, 400);
    const reply = await body<{ issues: { field: string; message: string }[] }>(noName);
    assert.deepEqual(reply.issues, [{ field: "banBy", message: 'client "anon" has no username' }]);
    const bad = await t.fetch("/api/v1/clients/anon?ban=0", { method: "DELETE" });
    assert.equal(bad.status, 400);
    assert.equal((await body<{ issues: { field: string }[] }>(bad)).issues[0].field, "ban");
    await anon.client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/bans bans an address range, disconnects the clients it matches, and DELETE lifts it", async () => {
  const t = await startAdmin({ http: true });
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "local", version: 5 });
    const added = await t.fetch("/api/v1/bans", {
      method: "POST",
      body: JSON.stringify({ kind: "address", value: "127.0.0.0/8", reason: "maintenance" }),
    });
    assert.equal(added.status, 201);
    const ban = await body<BanReply>(added);
    assert.equal(ban.until, null);
    assert.equal(ban.disconnected, 1);
    assert.equal((await client.expect(PacketType.DISCONNECT)).reasonCode, 0x98);
    const refused = await TestClient.connect(t.server.port, { clientId: "local", version: 5 });
    assert.equal(refused.connack.reasonCode, ReasonCode.Banned);
    await refused.client.closed;

    const list = await body<{ data: BanReply[] }>(await t.fetch("/api/v1/bans"));
    assert.deepEqual(list.data.map((b) => [b.kind, b.value, b.reason]), [
      ["address", "127.0.0.0/8", "maintenance"],
    ]);
    const lifted = await t.fetch("/api/v1/bans/address/127.0.0.0%2F8", { method: "DELETE" });
    assert.equal(lifted.status, 204);
    const gone = await t.fetch("/api/v1/bans/address/127.0.0.0%2F8", { method: "DELETE" });
    assert.equal(gone.status, 404);
    await gone.body?.cancel();
    const back = await TestClient.connect(t.server.port, { clientId: "local", version: 5 });
    assert.equal(back.connack.reasonCode, 0);
    await back.client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("POST /api/v1/bans answers 400 naming the field, and 409 past admin.maxBans", async () => {
  const t = await startAdmin({ maxBans: 2 });
  try {
    const cases: [unknown, string][] = [
      [{ kind: "address", value: "not-an-address" }, "value"],
      [{ kind: "host", value: "x" }, "kind"],
      [{ kind: "clientId", value: "" }, "value"],
      [{ kind: "clientId", value: "x", duration: -1 }, "duration"],
    ];
    for (const [request, field] of cases) {
      const response = await t.request("/api/v1/bans", {
        method: "POST",
        body: JSON.stringify(request),
      });
      assert.equal(response.status, 400, JSON.stringify(request));
      const reply = await body<{ issues: { field: string }[] }>(response);
      assert.equal(reply.issues[0].field, field, JSON.stringify(request));
    }
    for (const value of ["a", "b"]) {
      const response = await t.request("/api/v1/bans", {
        method: "POST",
        body: JSON.stringify({ kind: "clientId", value }),
      });
      assert.equal(response.status, 201);
    }
    // Replacing an existing ban is fine; a third one is not.
    const replaced = await t.request("/api/v1/bans", {
      method: "POST",
      body: JSON.stringify({ kind: "clientId", value: "a", duration: 60 }),
    });
    assert.equal(replaced.status, 200);
    const full = await t.request("/api/v1/bans", {
      method: "POST",
      body: JSON.stringify({ kind: "clientId", value: "c" }),
    });
    assert.equal(full.status, 409);
    assert.match(
      (await body(full)).message as string,
      /ban list is full \(2 bans, admin\.maxBans\)/,
    );
  } finally {
    await t.close();
  }
});

Deno.test("BanList drops expired bans, matches IPv4-mapped addresses, and makes room from expired ones", () => {
  const clock = new ManualClock(0);
  const bans = new BanList({ clock, maxBans: 2 });
  const base = { reason: undefined, createdAt: 0, createdBy: "t" };
  bans.add({ kind: "address", value: "10.0.0.7", until: 1000, ...base });
  bans.add({ kind: "username", value: "mallory", until: undefined, ...base });
  const subject = { clientId: "c", username: undefined, remoteAddress: "::ffff:10.0.0.7" };
  assert.equal(bans.find(subject)?.value, "10.0.0.7");
  assert.equal(
    bans.find({ ...subject, remoteAddress: "10.0.0.8", username: "mallory" })?.kind,
    "username",
  );
  assert.throws(
    () => bans.add({ kind: "clientId", value: "x", until: undefined, ...base }),
    /full/,
  );
  clock.advance(1000);
  assert.equal(bans.find(subject), undefined);
  bans.add({ kind: "clientId", value: "x", until: undefined, ...base });
  assert.deepEqual(bans.list().map((b) => b.value), ["x", "mallory"]);
});
