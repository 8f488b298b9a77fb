import assert from "node:assert/strict";
import { verifyScramPassword as verifyPassword } from "../../src/auth/credentials.ts";
import { PasswordFile, PasswordFileError } from "../../src/auth/password_file.ts";
import { SharedUsers } from "../../src/auth/shared_users.ts";
import { MemoryConfigStore } from "../../src/backbone/memory.ts";
import { nullLogger } from "../../src/util/logger.ts";
import { PacketType } from "../../src/codec/mod.ts";
import { startSecureBroker } from "../helpers/secure_broker.ts";
import { TestClient } from "../helpers/test_client.ts";

const FAST = { iterations: 4096 };
const REPO = new URL("../../", import.meta.url).pathname;

async function withUsers(
  users: Record<string, string>,
  body: (path: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "perch-users-" });
  try {
    const file = new PasswordFile(`${dir}/users`);
    for (const [name, password] of Object.entries(users)) {
      await file.setPassword(name, password, FAST);
    }
    await file.save();
    await body(file.path, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("PasswordFile saves verifiers, never passwords, and loads them back", async () => {
  await withUsers({ alice: "wonderland", bob: "builder" }, async (path) => {
    const text = await Deno.readTextFile(path);
    assert.ok(!text.includes("wonderland") && !text.includes("builder"));
    assert.match(text, /^alice:SCRAM-SHA-256\$4096:/m);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const loaded = new PasswordFile(path);
    await loaded.load();
    assert.deepEqual(loaded.list(), ["alice", "bob"]);
    assert.ok(loaded.scramCredentials("alice"));
    assert.equal(loaded.scramCredentials("carol"), undefined);
  });
});

Deno.test("PasswordFile API adds, updates, removes and lists users", async () => {
  await withUsers({}, async (path) => {
    const file = new PasswordFile(path);
    await file.load();
    assert.equal(await file.setPassword("u1", "one", FAST), "added");
    assert.equal(await file.setPassword("u1", "uno", FAST), "updated");
    assert.equal(await file.setPassword("u2", "two", FAST), "added");
    assert.equal(file.remove("u2"), true);
    assert.equal(file.remove("u2"), false);
    await file.save();
    const again = new PasswordFile(path);
    await again.load();
    assert.deepEqual(again.list(), ["u1"]);
    await assert.rejects(file.setPassword("a:b", "x", FAST), TypeError);
    await assert.rejects(file.setPassword("ok", "", FAST), TypeError);
  });
});

Deno.test("PasswordFile.load() names the bad line and keeps the users it had", async () => {
  await withUsers({ alice: "pw" }, async (path) => {
    const file = new PasswordFile(path);
    await file.load();
    await Deno.writeTextFile(path, "# comment\n\nmallory:plaintext-password\n");
    await assert.rejects(file.load(), (error: Error) => {
      assert.ok(error instanceof PasswordFileError);
      assert.match(error.message, /users:3: Invalid SCRAM-SHA-256 verifier/);
      assert.ok(!error.message.includes("plaintext-password"));
      return true;
    });
    assert.deepEqual(file.list(), ["alice"]);
  });
});

for (const version of [4, 5] as const) {
  const v = version === 5 ? "v5" : "v3.1.1";
  Deno.test(
    `${v}: the password file provider accepts the right password and refuses a wrong one (${
      version === 5 ? "0x86" : "return code 4"
    }) [MQTT-3.2.2-5]`,
    async () => {
      await withUsers({ alice: "wonderland" }, async (path) => {
        const server = await startSecureBroker({
          config: {
            auth: { anonymous: "never", chain: ["passwordFile"], passwordFile: { path } },
          },
        });
        try {
          const ok = await TestClient.connect(server.port, {
            version,
            clientId: "a1",
            username: "alice",
            password: "wonderland",
          });
          assert.equal(ok.connack.reasonCode, 0);
          await ok.client.disconnect();
          for (
            const [username, password] of [["alice", "wrong"], ["alice", undefined], ["eve", "x"]]
          ) {
            const bad = await TestClient.connect(server.port, {
              version,
              clientId: "a2",
              username,
              password,
            });
            assert.equal(
              bad.connack.reasonCode,
              version === 5 ? 0x86 : 4,
              `${username}/${password}`,
            );
            await bad.client.closed;
          }
          // No credentials at all, anonymous not allowed: 0x87 Not authorized / return code 5.
          const anonymous = await TestClient.connect(server.port, { version, clientId: "a3" });
          assert.equal(anonymous.connack.reasonCode, version === 5 ? 0x87 : 5);
          await anonymous.client.closed;
          assert.equal(server.broker.stats.authFailures, 4);
        } finally {
          await server.close();
        }
      });
    },
  );
}

Deno.test("a changed password file is picked up without a restart (file watch and reload)", async () => {
  await withUsers({ alice: "old" }, async (path) => {
    const server = await startSecureBroker({
      config: { auth: { anonymous: "never", chain: ["passwordFile"], passwordFile: { path } } },
    });
    try {
      const login = async (password: string) => {
        const { client, connack } = await TestClient.connect(server.port, {
          clientId: "w",
          username: "alice",
          password,
        });
        await client.destroy();
        return connack.reasonCode;
      };
      assert.equal(await login("old"), 0);
      // Change the password with the programmatic API (what the CLI and the admin API do).
      const file = new PasswordFile(path);
      await file.load();
      await file.setPassword("alice", "new", FAST);
      const reloaded = server.security.nextFileReload();
      await file.save();
      await reloaded; // the file watch saw the change and re-read the file
      assert.equal(await login("new"), 0);
      assert.equal(await login("old"), 4);
      // An explicit reload (what SIGHUP runs) also works and keeps a bad file out.
      await Deno.writeTextFile(path, "garbage\n");
      await server.security.reload();
      assert.equal(await login("new"), 0);
    } finally {
      await server.close();
    }
  });
});

async function passwd(args: string[], stdin = ""): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", `${REPO}scripts/passwd.ts`, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, out: decoder.decode(stdout) + decoder.decode(stderr) };
}

Deno.test("deno task passwd adds, changes, lists and removes users, reading the password from stdin", async () => {
  const dir = await Deno.makeTempDir({ prefix: "perch-passwd-" });
  const path = `${dir}/users`;
  try {
    const added = await passwd([path, "add", "carol", "--iterations", "4096"], "first\n");
    assert.equal(added.code, 0, added.out);
    assert.match(added.out, /Added user "carol"/);
    assert.equal((await passwd([path, "add", "carol"], "again\n")).code, 1);
    const changed = await passwd([path, "change", "carol", "--iterations", "4096"], "second\n");
    assert.equal(changed.code, 0, changed.out);
    const text = await Deno.readTextFile(path);
    assert.ok(!text.includes("first") && !text.includes("second"));
    const file = new PasswordFile(path);
    await file.load();
    assert.ok(await verifyPassword("second", file.scramCredentials("carol")!));
    assert.equal((await passwd([path, "list"])).out.trim(), "carol");
    assert.equal((await passwd([path, "remove", "carol"])).code, 0);
    assert.equal((await passwd([path, "remove", "carol"])).code, 1);
    assert.equal((await passwd([path, "list"])).out.trim(), "");
    assert.equal((await passwd([path, "bogus"])).code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a login through the password file reaches the broker with the user name", async () => {
  await withUsers({ alice: "pw" }, async (path) => {
    const seen: (string | undefined)[] = [];
    const server = await startSecureBroker({
      config: { auth: { chain: ["passwordFile"], passwordFile: { path } } },
      hooks: { onConnect: (client) => seen.push(client.username) },
    });
    try {
      const { client } = await TestClient.connect(server.port, {
        clientId: "n",
        username: "alice",
        password: "pw",
      });
      await client.send({ type: PacketType.PINGREQ });
      await client.expect(PacketType.PINGRESP);
      assert.deepEqual(seen, ["alice"]);
      await client.disconnect();
    } finally {
      await server.close();
    }
  });
});

Deno.test("SharedUsers: seeded once from the password file, changed on any node, exported, and a changed file taken in", async () => {
  await withUsers({ alice: "a-pass" }, async (path, dir) => {
    const store = new MemoryConfigStore();
    const first = await SharedUsers.open(path, store, nullLogger);
    assert.deepEqual(first.list(), ["alice"]);
    assert.equal(await first.add("bob", "b-pass"), "added");
    assert.equal(await first.add("bob", "other"), "exists");
    // A second node on the same store follows the store, not its own file, and sees the change.
    const otherPath = `${dir}/other-users`;
    await Deno.writeTextFile(otherPath, "");
    const second = await SharedUsers.open(otherPath, store, nullLogger);
    assert.deepEqual(second.list(), ["alice", "bob"]);
    assert.ok(await verifyPassword("b-pass", second.scramCredentials("bob")!));
    assert.equal(await second.changePassword("bob", "new-pass"), "updated");
    assert.ok(await verifyPassword("new-pass", first.scramCredentials("bob")!));
    assert.equal(await second.changePassword("nobody", "x"), "missing");
    assert.equal(await second.remove("alice"), true);
    assert.equal(await second.remove("alice"), false);
    assert.deepEqual(first.list(), ["bob"]);
    // Users removed after the seed stay removed when a node starts with an old file.
    const third = await SharedUsers.open(path, store, nullLogger);
    assert.deepEqual(third.list(), ["bob"]);
    // The export: the node that made a change writes its file.
    await second.export();
    const exported = new PasswordFile(otherPath);
    await exported.load();
    assert.deepEqual(exported.list(), ["bob"]);
    assert.equal(await second.importFile(), false, "its own export is not taken in again");
    // A changed file replaces the users of every node.
    await exported.setPassword("carol", "c-pass", FAST);
    exported.remove("bob");
    await exported.save();
    assert.equal(await second.importFile(), true);
    assert.deepEqual(first.list(), ["carol"]);
    // A bad file changes nothing.
    await Deno.writeTextFile(otherPath, "garbage\n");
    await assert.rejects(second.importFile(), PasswordFileError);
    assert.deepEqual(first.list(), ["carol"]);
    await assert.rejects(first.add("a:b", "x"), TypeError);
    for (const users of [first, second, third]) users.close();
  });
});
