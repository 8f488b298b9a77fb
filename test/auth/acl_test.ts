import assert from "node:assert/strict";
import { Acl, type AclRule, filterCovers } from "../../src/auth/acl.ts";
import { type AclDocument, AclRuleFile } from "../../src/auth/acl_file.ts";
import { RuleIndexError, SharedAclRules } from "../../src/auth/shared_acl.ts";
import { MemoryConfigStore } from "../../src/backbone/memory.ts";
import { nullLogger } from "../../src/util/logger.ts";
import { PacketType } from "../../src/codec/mod.ts";
import type { ClientInfo } from "../../src/hooks/hooks.ts";
import { startSecureBroker } from "../helpers/secure_broker.ts";
import { TestClient, text } from "../helpers/test_client.ts";

function client(clientId: string, username?: string, authContext?: unknown): ClientInfo {
  return {
    clientId,
    username,
    remoteAddress: "127.0.0.1",
    remotePort: 1,
    protocolVersion: 5,
    transport: "tcp",
    peerCertificate: undefined,
    authContext,
  };
}

const allow = (
  action: AclRule["action"],
  topic: string,
  extra: Partial<AclRule> = {},
): AclRule => ({
  permission: "allow",
  action,
  topic,
  ...extra,
});
const deny = (action: AclRule["action"], topic: string, extra: Partial<AclRule> = {}): AclRule => ({
  permission: "deny",
  action,
  topic,
  ...extra,
});

Deno.test("filterCovers() tells whether a rule filter reaches every topic of a requested filter", () => {
  const cases: [string, string, boolean][] = [
    ["#", "a/b", true],
    ["#", "#", true],
    ["a/#", "a", true],
    ["a/#", "a/+/c", true],
    ["a/+", "a/b", true],
    ["a/+", "a/+", true],
    ["a/+", "a/#", false],
    ["a/b", "a/+", false],
    ["a/b", "a/b/c", false],
    ["a/b/c", "a/b", false],
    ["+/b", "x/b", true],
    ["#", "$SYS/x", false], // a leading wildcard never reaches $ topics [MQTT-4.7.2-1]
    ["+/#", "$SYS/#", false],
    ["$SYS/#", "$SYS/broker/uptime", true],
  ];
  for (const [rule, requested, expected] of cases) {
    assert.equal(filterCovers(rule, requested), expected, `${rule} covers ${requested}`);
  }
});

Deno.test("Acl: first match wins, then the default", () => {
  const acl = new Acl({
    rules: [deny("both", "secret/#"), allow("publish", "sensors/#"), allow("subscribe", "#")],
    default: "deny",
  });
  const c = client("c1", "u1");
  assert.equal(acl.canPublish(c, "sensors/t"), true);
  assert.equal(acl.canPublish(c, "secret/x"), false);
  assert.equal(acl.canPublish(c, "other"), false); // default deny
  assert.equal(acl.canRead(c, "other"), true);
  assert.equal(acl.canRead(c, "secret/x"), false);
  assert.equal(acl.canSubscribe(c, "#"), true); // the deny does not cover all of #
  assert.equal(acl.canSubscribe(c, "secret/+"), false); // covered by the deny
});

Deno.test("Acl: %u and %c are filled per client, and never with a value holding / + or #", () => {
  const acl = new Acl({
    rules: [allow("both", "users/%u/#"), allow("both", "clients/%c")],
    default: "deny",
  });
  assert.equal(acl.canPublish(client("c1", "alice"), "users/alice/x"), true);
  assert.equal(acl.canPublish(client("c1", "alice"), "users/bob/x"), false);
  assert.equal(acl.canPublish(client("c1", "alice"), "clients/c1"), true);
  assert.equal(acl.canPublish(client("c1"), "users/undefined/x"), false); // no user name
  // A user called "+" must not read everyone's tree.
  assert.equal(acl.canRead(client("c2", "+"), "users/alice/x"), false);
  assert.equal(acl.canRead(client("c2", "#"), "users/alice/x"), false);
  assert.equal(acl.canRead(client("a/b", "x"), "clients/a/b"), false);
});

Deno.test("Acl: rules can be limited to users and client ids", () => {
  const acl = new Acl({
    rules: [
      allow("both", "ops/#", { users: ["admin"] }),
      allow("both", "dev/#", { clients: ["d1"] }),
    ],
    default: "deny",
  });
  assert.equal(acl.canPublish(client("x", "admin"), "ops/a"), true);
  assert.equal(acl.canPublish(client("x", "guest"), "ops/a"), false);
  assert.equal(acl.canPublish(client("d1"), "dev/a"), true);
  assert.equal(acl.canPublish(client("d2"), "dev/a"), false);
});

Deno.test("Acl: $ topics fall to no default, only to a rule naming them", () => {
  const open = new Acl({ rules: [allow("both", "#")], default: "allow" });
  const c = client("c");
  assert.equal(open.canRead(c, "$SYS/broker/uptime"), false);
  assert.equal(open.canSubscribe(c, "$SYS/#"), false);
  const sys = new Acl({ rules: [allow("subscribe", "$SYS/#", { users: ["ops"] })] });
  assert.equal(sys.canRead(client("o", "ops"), "$SYS/broker/uptime"), true);
  assert.equal(sys.canSubscribe(client("o", "ops"), "$SYS/#"), true);
  assert.equal(sys.canRead(client("g", "guest"), "$SYS/broker/uptime"), false);
});

Deno.test("Acl: replace() applies at each client's next check (cached decisions are dropped)", () => {
  const acl = new Acl({ rules: [allow("both", "a/#")], default: "deny" });
  const c = client("c");
  assert.equal(acl.canRead(c, "a/x"), true);
  acl.replace([deny("both", "a/#")]);
  assert.equal(acl.canRead(c, "a/x"), false);
  assert.throws(() => acl.replace([allow("both", "a/#/b")]), /Invalid ACL rule 0: topic/);
  assert.equal(acl.canRead(c, "a/x"), false); // the bad set was not applied
});

Deno.test("Acl: a client's own rules (from a token) replace the configured ones and deny the rest", () => {
  const acl = new Acl({ rules: [allow("both", "#")], default: "allow" });
  const scoped = client("t", "u", { aclRules: [allow("publish", "mine/#")] });
  assert.equal(acl.canPublish(scoped, "mine/a"), true);
  assert.equal(acl.canPublish(scoped, "other"), false);
  assert.equal(acl.canRead(scoped, "other"), false);
  assert.equal(acl.canPublish(client("plain"), "other"), true);
});

// ---- end to end -------------------------------------------------------------------------------

const RULES: AclRule[] = [
  deny("both", "private/#"),
  allow("publish", "readonly/#", { users: ["writer"] }),
  deny("publish", "readonly/#"),
  allow("both", "#"),
];

for (const version of [4, 5] as const) {
  const v = version === 5 ? "v5" : "v3.1.1";
  Deno.test(
    `${v}: a denied PUBLISH ${
      version === 5 ? "gets PUBACK/PUBREC 0x87" : "is acknowledged and dropped [MQTT-3.3.5-2]"
    } and reaches no subscriber`,
    async () => {
      const server = await startSecureBroker({ config: { acl: { rules: RULES } } });
      try {
        const { client: sub } = await TestClient.connect(server.port, { version, clientId: "s" });
        assert.deepEqual((await sub.subscribe("readonly/#", 1)).reasonCodes, [1]);
        const { client: pub } = await TestClient.connect(server.port, { version, clientId: "p" });
        const puback = await pub.publish("readonly/x", "no", { qos: 1 });
        assert.equal(puback?.type, PacketType.PUBACK);
        assert.equal((puback as { reasonCode: number }).reasonCode, version === 5 ? 0x87 : 0);
        const pubrec = await pub.publish("readonly/y", "no", { qos: 2 });
        assert.equal((pubrec as { reasonCode: number }).reasonCode, version === 5 ? 0x87 : 0);
        await pub.publish("readonly/z", "no", { qos: 0 });
        await sub.expectNothingPending();
        assert.equal(server.broker.stats.publishDenied, 3);
        await pub.disconnect();
        await sub.disconnect();
      } finally {
        await server.close();
      }
    },
  );

  Deno.test(`${v}: a denied subscription gets SUBACK ${version === 5 ? "0x87" : "0x80"} in its place, the others are granted [MQTT-3.9.3-1]`, async () => {
    const server = await startSecureBroker({ config: { acl: { rules: RULES } } });
    try {
      const { client } = await TestClient.connect(server.port, { version, clientId: "s" });
      const suback = await client.subscribe([
        { filter: "public/#", qos: 1 },
        { filter: "private/+", qos: 1 },
        { filter: "$share/g/private/x", qos: 0 },
      ]);
      assert.deepEqual(suback.reasonCodes, version === 5 ? [1, 0x87, 0x87] : [1, 0x80, 0x80]);
      await client.disconnect();
    } finally {
      await server.close();
    }
  });
}

Deno.test("a wildcard subscriber never receives a topic it may not read, live or retained", async () => {
  const server = await startSecureBroker({ config: { acl: { rules: RULES } } });
  try {
    const { client: pub } = await TestClient.connect(server.port, {
      clientId: "pub",
      username: "writer",
    });
    // Retained messages on both sides of the rules, stored before the subscriber exists; nobody
    // may publish to private/, so that one goes in through the broker API.
    await pub.publish("readonly/ok", "retained-ok", { qos: 1, retain: true });
    server.broker.publish({
      topic: "private/secret",
      payload: new TextEncoder().encode("retained-secret"),
      qos: 1,
      retain: true,
      properties: undefined,
      expiresAt: 0,
      origin: "admin",
    });
    const { client: sub } = await TestClient.connect(server.port, { clientId: "sub", version: 5 });
    assert.deepEqual((await sub.subscribe("#", 1)).reasonCodes, [1]);
    const retained = await sub.expect(PacketType.PUBLISH);
    assert.equal(retained.topic, "readonly/ok");
    await sub.ack(retained);
    await sub.expectNothingPending();
    // Live: the private message published through the broker reaches nobody.
    server.broker.publish({
      topic: "private/live",
      payload: new TextEncoder().encode("live-secret"),
      qos: 1,
      retain: false,
      properties: undefined,
      expiresAt: 0,
      origin: "admin",
    });
    await pub.publish("public/live", "hello", { qos: 1 });
    const live = await sub.expect(PacketType.PUBLISH);
    assert.equal(live.topic, "public/live");
    assert.equal(text(live.payload), "hello");
    await sub.ack(live);
    await sub.expectNothingPending();
    assert.ok(server.broker.stats.droppedNotAuthorized >= 2);
    await pub.disconnect();
    await sub.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("queued messages are checked again when replayed: an ACL change while offline withholds them", async () => {
  const server = await startSecureBroker({ config: { acl: { rules: [allow("both", "#")] } } });
  try {
    const { client: sub } = await TestClient.connect(server.port, {
      clientId: "away",
      version: 5,
      cleanStart: true,
      properties: { sessionExpiryInterval: 600 },
    });
    await sub.subscribe("feed/#", 1);
    await sub.disconnect();
    const { client: pub } = await TestClient.connect(server.port, { clientId: "pub", version: 5 });
    await pub.publish("feed/a", "one", { qos: 1 });
    await pub.publish("feed/b", "two", { qos: 1 });
    await pub.disconnect();
    assert.equal((await server.broker.getSession("away"))?.queued, 2);
    // The rules change while the subscriber is away: feed/a may no longer be read.
    server.security.acl.replace([deny("both", "feed/a"), allow("both", "#")]);
    const { client: back, connack } = await TestClient.connect(server.port, {
      clientId: "away",
      version: 5,
      cleanStart: false,
      properties: { sessionExpiryInterval: 600 },
    });
    assert.equal(connack.sessionPresent, true);
    const replayed = await back.expect(PacketType.PUBLISH);
    assert.equal(replayed.topic, "feed/b");
    await back.ack(replayed);
    await back.expectNothingPending();
    await back.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("$SYS topics are readable only where a rule allows them", async () => {
  const server = await startSecureBroker({
    config: {
      sys: { enabled: true },
      acl: {
        rules: [allow("subscribe", "$SYS/#", { users: ["ops"] }), allow("both", "#")],
      },
    },
  });
  try {
    await server.broker.publish({
      topic: "$SYS/broker/test",
      payload: new TextEncoder().encode("1"),
      qos: 0,
      retain: true,
      properties: undefined,
      expiresAt: 0,
      origin: "",
    });
    const { client: guest } = await TestClient.connect(server.port, {
      clientId: "guest",
      version: 5,
    });
    assert.deepEqual((await guest.subscribe("$SYS/#", 0)).reasonCodes, [0x87]);
    await guest.disconnect();
    const { client: ops } = await TestClient.connect(server.port, {
      clientId: "ops",
      version: 5,
      username: "ops",
    });
    assert.deepEqual((await ops.subscribe("$SYS/broker/test", 0)).reasonCodes, [0]);
    assert.equal((await ops.expect(PacketType.PUBLISH)).topic, "$SYS/broker/test");
    await ops.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("an ACL rules file is loaded after the config rules, edited through its API and reloaded on change", async () => {
  const dir = await Deno.makeTempDir({ prefix: "perch-acl-" });
  const path = `${dir}/acl.yaml`;
  try {
    await Deno.writeTextFile(
      path,
      "default: deny\nrules:\n  - { permission: allow, action: both, topic: 'open/#' }\n",
    );
    const server = await startSecureBroker({
      config: { acl: { file: path, rules: [deny("both", "open/closed")] } },
    });
    try {
      const check = async (topic: string) => {
        const { client } = await TestClient.connect(server.port, { clientId: "f", version: 5 });
        const code = (await client.subscribe(topic, 0)).reasonCodes[0];
        await client.disconnect();
        return code;
      };
      assert.equal(await check("open/x"), 0);
      assert.equal(await check("open/closed"), 0x87); // the config rule comes first
      assert.equal(await check("elsewhere"), 0x87); // the file's default: deny
      // The programmatic API (what the admin API calls): add a rule, export it to the file; the
      // watcher sees this node's own export and has nothing to take in.
      const rules = server.security.aclRules!;
      await rules.add({ permission: "allow", action: "both", topic: "elsewhere" });
      assert.equal(await check("elsewhere"), 0); // in force at once
      const reloaded = server.security.nextFileReload();
      await rules.export();
      await reloaded;
      assert.equal(await check("elsewhere"), 0);
      // Someone edits the file by hand: the watcher picks it up.
      const edited = server.security.nextFileReload();
      await Deno.writeTextFile(path, "- { permission: allow, action: both, topic: '#' }\n");
      await edited;
      assert.equal(await check("anything"), 0);
      // A broken file is refused and the rules in force stay.
      await Deno.writeTextFile(path, "- { permission: maybe, action: both, topic: '#' }\n");
      await server.security.reload();
      assert.equal(await check("anything"), 0);
      assert.ok(server.logs.some((l) => /ACL reload failed.*rule 0: permission/.test(l.line)));
    } finally {
      await server.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SharedAclRules: seeded from the rules file, changed with checked rules and indexes, exported, and a changed file taken in", async () => {
  const dir = await Deno.makeTempDir({ prefix: "perch-aclapi-" });
  try {
    const path = `${dir}/rules.yaml`;
    await Deno.writeTextFile(path, "- { permission: allow, action: publish, topic: 'a/#' }\n");
    const store = new MemoryConfigStore();
    const seen: AclDocument[] = [];
    const rules = await SharedAclRules.open(
      new AclRuleFile(path),
      store,
      (document) => seen.push(document),
      nullLogger,
    );
    assert.deepEqual(rules.list(), [allow("publish", "a/#")]);
    assert.equal(await rules.add(deny("publish", "a/b"), 0), 0);
    assert.deepEqual(rules.list().map((r) => r.topic), ["a/b", "a/#"]);
    await rules.update(1, allow("both", "c/+"));
    await rules.remove(0);
    assert.deepEqual(rules.list(), [allow("both", "c/+")]);
    await assert.rejects(
      rules.add({ ...allow("both", "x"), permission: "maybe" as "allow" }),
      TypeError,
    );
    await assert.rejects(rules.remove(5), (error: unknown) => {
      assert.ok(error instanceof RuleIndexError);
      assert.deepEqual([error.index, error.size], [5, 1]);
      return true;
    });
    await assert.rejects(rules.add(allow("both", "x"), 2), RuleIndexError);
    // The seed and each of the three changes, nothing for the refused ones.
    assert.equal(seen.length, 4);
    await rules.export();
    assert.deepEqual((await new AclRuleFile(path).read()).rules, [allow("both", "c/+")]);

    // Another node on the same store follows the store, whatever its own file says.
    const otherPath = `${dir}/other.yaml`;
    await Deno.writeTextFile(otherPath, "[]\n");
    const other = await SharedAclRules.open(
      new AclRuleFile(otherPath),
      store,
      () => {},
      nullLogger,
    );
    assert.deepEqual(other.list(), [allow("both", "c/+")]);
    // Its file as it was at its start is not taken in again; a changed one is, for every node.
    assert.equal(await other.importFile(), false);
    await Deno.writeTextFile(otherPath, "default: deny\nrules: []\n");
    assert.equal(await other.importFile(), true);
    assert.deepEqual([rules.list(), rules.defaultPolicy], [[], "deny"]);
    // A file this node exported is not taken in again either.
    assert.equal(await rules.importFile(), false);
    rules.close();
    other.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
