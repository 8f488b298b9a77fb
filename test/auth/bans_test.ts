/**
 * Bans in front of MQTT 5 enhanced authentication: a banned client id is refused before the
 * exchange starts, a banned user name once SCRAM has told who the client is; both get CONNACK
 * 0x8A. And the ACL default's source, logged at every reload.
 *
 * @module
 */

import assert from "node:assert/strict";
import { BanList, withBans } from "../../src/auth/bans.ts";
import { deriveScramCredentials, formatScramCredentials } from "../../src/auth/credentials.ts";
import { createSecurity } from "../../src/auth/setup.ts";
import { MemoryConfigStore } from "../../src/backbone/memory.ts";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { configSchema } from "../../src/config/mod.ts";
import { authMethodsFrom } from "../../src/main.ts";
import { createSystemClock } from "../../src/util/clock.ts";
import { createLogger } from "../../src/util/logger.ts";
import { startBroker } from "../helpers/broker.ts";
import { ScramClient } from "../helpers/scram_client.ts";
import { startSecureBroker } from "../helpers/secure_broker.ts";
import { TestClient } from "../helpers/test_client.ts";

const SCRAM = "SCRAM-SHA-256";

Deno.test("a ban refuses a SCRAM client with CONNACK 0x8A (by client id before the exchange, by user name after it) and fails its re-authentication", async () => {
  const dir = await Deno.makeTempDir({ prefix: "perch-bans-" });
  const verifier = await deriveScramCredentials("wonderland", { iterations: 4096 });
  await Deno.writeTextFile(`${dir}/passwd`, `alice:${formatScramCredentials(verifier)}\n`);
  const config = configSchema.parse({
    auth: {
      chain: ["passwordFile"],
      passwordFile: { path: `${dir}/passwd`, watch: false },
      scram: { enabled: true },
    },
  });
  const clock = createSystemClock();
  const logger = createLogger({ level: "silent" });
  const security = await createSecurity(config.auth, config.acl, {
    clock,
    logger,
    config: new MemoryConfigStore(),
  });
  const bans = new BanList({ clock, maxBans: 10 });
  const secured = withBans(bans, security.hooks, authMethodsFrom(config, security), logger);
  const server = startBroker({ hooks: secured.hooks, authMethods: secured.authMethods });
  const ban = { until: undefined, reason: undefined, createdAt: 0, createdBy: "test" };
  try {
    bans.add({ kind: "clientId", value: "banned-id", ...ban });
    const early = await TestClient.open(server.port, 5);
    const login = new ScramClient("alice", "wonderland");
    await early.sendConnectOnly({
      clientId: "banned-id",
      version: 5,
      properties: { authenticationMethod: SCRAM, authenticationData: login.clientFirst() },
    });
    assert.equal((await early.expect(PacketType.CONNACK)).reasonCode, ReasonCode.Banned);
    await early.closed;

    bans.add({ kind: "username", value: "alice", ...ban });
    const late = await TestClient.open(server.port, 5);
    const again = new ScramClient("alice", "wonderland");
    await late.sendConnectOnly({
      clientId: "fine-id",
      version: 5,
      properties: { authenticationMethod: SCRAM, authenticationData: again.clientFirst() },
    });
    const challenge = await late.expect(PacketType.AUTH);
    await late.send({
      type: PacketType.AUTH,
      reasonCode: ReasonCode.ContinueAuthentication,
      properties: {
        authenticationMethod: SCRAM,
        authenticationData: await again.clientFinal(challenge.properties!.authenticationData!),
      },
    });
    assert.equal((await late.expect(PacketType.CONNACK)).reasonCode, ReasonCode.Banned);
    await late.closed;

    // A client connected before its ban fails its next re-authentication: DISCONNECT cannot
    // carry 0x8A, so it says 0x87 Not authorized.
    bans.remove("username", "alice");
    const live = await TestClient.open(server.port, 5);
    const first = new ScramClient("alice", "wonderland");
    await live.sendConnectOnly({
      clientId: "live-id",
      version: 5,
      properties: { authenticationMethod: SCRAM, authenticationData: first.clientFirst() },
    });
    const liveChallenge = await live.expect(PacketType.AUTH);
    await live.send({
      type: PacketType.AUTH,
      reasonCode: ReasonCode.ContinueAuthentication,
      properties: {
        authenticationMethod: SCRAM,
        authenticationData: await first.clientFinal(liveChallenge.properties!.authenticationData!),
      },
    });
    assert.equal((await live.expect(PacketType.CONNACK)).reasonCode, ReasonCode.Success);
    bans.add({ kind: "clientId", value: "live-id", ...ban });
    await live.send({
      type: PacketType.AUTH,
      reasonCode: ReasonCode.ReAuthenticate,
      properties: {
        authenticationMethod: SCRAM,
        authenticationData: new ScramClient("alice", "wonderland").clientFirst(),
      },
    });
    assert.equal((await live.expect(PacketType.DISCONNECT)).reasonCode, ReasonCode.NotAuthorized);
    await live.closed;
    assert.equal(bans.refused, 3);
  } finally {
    await server.close();
    security.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every reload logs the ACL default in force and its source", async () => {
  const dir = await Deno.makeTempDir({ prefix: "perch-acl-" });
  await Deno.writeTextFile(`${dir}/acl.yaml`, "[]\n");
  const server = await startSecureBroker({
    config: { acl: { default: "deny", file: `${dir}/acl.yaml`, watch: false } },
  });
  try {
    const lines = () =>
      server.logs.map((l) => l.line).filter((line) => line.includes("ACL default"));
    assert.match(lines()[0], /ACL default in force default=deny source=acl\.default file=/);
    await Deno.writeTextFile(`${dir}/acl.yaml`, "{ default: allow, rules: [] }\n");
    await server.security.reload();
    assert.match(
      lines()[1],
      /WARN ACL default "allow" of acl\.file overrides acl\.default "deny" default=allow source=acl\.file/,
    );
    assert.equal(server.security.acl.defaultPolicy, "allow");
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
