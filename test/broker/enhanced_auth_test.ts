import assert from "node:assert/strict";
import { deriveScramCredentials, formatScramCredentials } from "../../src/auth/credentials.ts";
import { createSecurity } from "../../src/auth/setup.ts";
import { MemoryConfigStore } from "../../src/backbone/memory.ts";
import { configSchema } from "../../src/config/mod.ts";
import { authMethodsFrom } from "../../src/main.ts";
import { createSystemClock } from "../../src/util/clock.ts";
import { createLogger } from "../../src/util/logger.ts";
import type { AuthStep, EnhancedAuthMethod } from "../../src/auth/enhanced.ts";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import type { AuthPacket, Properties } from "../../src/codec/packets.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startBroker, type TestBrokerOptions } from "../helpers/broker.ts";
import { ScramClient } from "../helpers/scram_client.ts";
import { TestClient, text } from "../helpers/test_client.ts";

const SCRAM = "SCRAM-SHA-256";

/**
 * The composition root's wiring: SCRAM on the users of the chain's password file (one file for
 * plain passwords and SCRAM). The minimum iteration count keeps the tests fast.
 */
async function scramFromPasswordFile() {
  const dir = await Deno.makeTempDir({ prefix: "perch-scram-" });
  const path = `${dir}/passwd`;
  const verifier = await deriveScramCredentials("wonderland", { iterations: 4096 });
  await Deno.writeTextFile(path, `# users\nalice:${formatScramCredentials(verifier)}\n`);
  const config = configSchema.parse({
    auth: {
      chain: ["passwordFile"],
      passwordFile: { path, watch: false },
      scram: { enabled: true },
    },
  });
  const security = await createSecurity(config.auth, config.acl, {
    clock: createSystemClock(),
    logger: createLogger({ level: "silent" }),
    config: new MemoryConfigStore(),
  });
  await Deno.remove(dir, { recursive: true });
  return authMethodsFrom(config, security);
}
const scramMethods = await scramFromPasswordFile();

function scramBroker(options: TestBrokerOptions = {}) {
  return startBroker({ ...options, authMethods: scramMethods });
}

function auth(reasonCode: number, data?: Uint8Array, method = SCRAM): AuthPacket {
  return {
    type: PacketType.AUTH,
    reasonCode,
    properties: { authenticationMethod: method, authenticationData: data },
  };
}

/** Runs a SCRAM login over CONNECT/AUTH and returns the CONNACK and the client. */
async function scramConnect(
  port: number,
  login: ScramClient,
  properties: Properties = {},
) {
  const client = await TestClient.open(port, 5);
  await client.sendConnectOnly({
    clientId: `scram-${login.username}`,
    version: 5,
    properties: {
      ...properties,
      authenticationMethod: SCRAM,
      authenticationData: login.clientFirst(),
    },
  });
  const challenge = await client.expect(PacketType.AUTH);
  await client.send(
    auth(
      ReasonCode.ContinueAuthentication,
      await login.clientFinal(challenge.properties!.authenticationData!),
    ),
  );
  const connack = await client.expect(PacketType.CONNACK);
  return { client, challenge, connack };
}

Deno.test("SCRAM-SHA-256: CONNECT, AUTH 0x18 both ways, then CONNACK with the server's proof [MQTT-4.12.0-2] [MQTT-4.12.0-3] [MQTT-4.12.0-5]", async () => {
  const usernames: (string | undefined)[] = [];
  const server = scramBroker({ hooks: { onConnect: (c) => usernames.push(c.username) } });
  try {
    const login = new ScramClient("alice", "wonderland");
    const { client, challenge, connack } = await scramConnect(server.port, login);
    assert.equal(challenge.reasonCode, ReasonCode.ContinueAuthentication);
    assert.equal(challenge.properties?.authenticationMethod, SCRAM);
    assert.match(text(challenge.properties!.authenticationData!), /^r=[^,]+,s=[^,]+,i=4096$/);
    assert.equal(connack.reasonCode, ReasonCode.Success);
    assert.equal(connack.properties?.authenticationMethod, SCRAM);
    assert.ok(login.verifyServerFinal(connack.properties?.authenticationData), "server proof");
    assert.deepEqual(usernames, ["alice"]);
    // The connection works like any other.
    await client.subscribe("t", 0);
    await client.publish("t", "after scram");
    assert.equal(text((await client.expect(PacketType.PUBLISH)).payload), "after scram");
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("SCRAM-SHA-256: a wrong password gets CONNACK 0x86 and the connection is closed [MQTT-4.12.0-4]", async () => {
  const server = scramBroker();
  try {
    const { client, connack } = await scramConnect(
      server.port,
      new ScramClient("alice", "looking-glass"),
    );
    assert.equal(connack.reasonCode, ReasonCode.BadUserNameOrPassword);
    assert.equal(connack.sessionPresent, false);
    assert.equal(connack.properties?.authenticationData, undefined);
    await client.closed;
    assert.equal(server.broker.stats.authFailures, 1);
  } finally {
    await server.close();
  }
});

Deno.test("SCRAM-SHA-256: an unknown user runs the same exchange and gets CONNACK 0x86 [MQTT-4.12.0-4]", async () => {
  const server = scramBroker();
  try {
    const { client, challenge, connack } = await scramConnect(
      server.port,
      new ScramClient("mallory", "x"),
    );
    // The iteration count of a user added with the default, so nothing tells the user is unknown.
    assert.match(text(challenge.properties!.authenticationData!), /^r=[^,]+,s=[^,]+,i=100000$/);
    assert.equal(connack.reasonCode, ReasonCode.BadUserNameOrPassword);
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("an Authentication Method the broker does not offer gets CONNACK 0x8C and a close [MQTT-4.12.0-1]", async () => {
  const server = startBroker(); // no enhanced-authentication method unless configured
  try {
    const client = await TestClient.open(server.port, 5);
    await client.sendConnectOnly({
      clientId: "m",
      version: 5,
      properties: {
        authenticationMethod: SCRAM,
        authenticationData: new ScramClient("alice", "w").clientFirst(),
      },
    });
    const connack = await client.expect(PacketType.CONNACK);
    assert.equal(connack.reasonCode, ReasonCode.BadAuthenticationMethod);
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("re-authentication: AUTH 0x19 on a live connection ends with AUTH 0x00 and the server's proof, traffic going on meanwhile [MQTT-4.12.1-1]", async () => {
  const server = scramBroker();
  try {
    const { client } = await scramConnect(server.port, new ScramClient("alice", "wonderland"));
    await client.subscribe("t", 0);
    const again = new ScramClient("alice", "wonderland");
    await client.send(auth(ReasonCode.ReAuthenticate, again.clientFirst()));
    const challenge = await client.expect(PacketType.AUTH);
    assert.equal(challenge.reasonCode, ReasonCode.ContinueAuthentication);
    assert.equal(challenge.properties?.authenticationMethod, SCRAM);
    // Other packets keep flowing during re-authentication (section 4.12.1).
    await client.publish("t", "during");
    assert.equal(text((await client.expect(PacketType.PUBLISH)).payload), "during");
    await client.send(
      auth(
        ReasonCode.ContinueAuthentication,
        await again.clientFinal(challenge.properties!.authenticationData!),
      ),
    );
    const done = await client.expect(PacketType.AUTH);
    assert.equal(done.reasonCode, ReasonCode.Success);
    assert.equal(done.properties?.authenticationMethod, SCRAM);
    assert.ok(again.verifyServerFinal(done.properties?.authenticationData));
    await client.expectNothingPending();
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("re-authentication that fails ends the connection with DISCONNECT 0x86 [MQTT-4.12.1-2]", async () => {
  const server = scramBroker();
  try {
    const { client } = await scramConnect(server.port, new ScramClient("alice", "wonderland"));
    const wrong = new ScramClient("alice", "guess");
    await client.send(auth(ReasonCode.ReAuthenticate, wrong.clientFirst()));
    const challenge = await client.expect(PacketType.AUTH);
    await client.send(
      auth(
        ReasonCode.ContinueAuthentication,
        await wrong.clientFinal(challenge.properties!.authenticationData!),
      ),
    );
    const disconnect = await client.expect(PacketType.DISCONNECT);
    assert.equal(disconnect.reasonCode, ReasonCode.BadUserNameOrPassword);
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("re-authentication with another Authentication Method is a protocol error [MQTT-4.12.1-1]", async () => {
  const server = scramBroker();
  try {
    const { client } = await scramConnect(server.port, new ScramClient("alice", "wonderland"));
    await client.send(auth(ReasonCode.ReAuthenticate, new Uint8Array(1), "OTHER"));
    const disconnect = await client.expect(PacketType.DISCONNECT);
    assert.equal(disconnect.reasonCode, ReasonCode.ProtocolError);
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("during authentication only AUTH or DISCONNECT may come before CONNACK: a PUBLISH gets CONNACK 0x82 [MQTT-3.1.2-30]", async () => {
  const server = scramBroker();
  try {
    const client = await TestClient.open(server.port, 5);
    await client.sendConnectOnly({
      clientId: "eager",
      version: 5,
      properties: {
        authenticationMethod: SCRAM,
        authenticationData: new ScramClient("alice", "w").clientFirst(),
      },
    });
    await client.expect(PacketType.AUTH);
    await client.publish("t", "too early");
    const connack = await client.expect(PacketType.CONNACK);
    assert.equal(connack.reasonCode, ReasonCode.ProtocolError);
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("an AUTH carrying another method than the CONNECT's is refused with CONNACK 0x82 [MQTT-4.12.0-5]", async () => {
  const server = scramBroker();
  try {
    const client = await TestClient.open(server.port, 5);
    await client.sendConnectOnly({
      clientId: "switch",
      version: 5,
      properties: {
        authenticationMethod: SCRAM,
        authenticationData: new ScramClient("alice", "w").clientFirst(),
      },
    });
    await client.expect(PacketType.AUTH);
    await client.send(auth(ReasonCode.ContinueAuthentication, new Uint8Array(1), "PLAIN"));
    const connack = await client.expect(PacketType.CONNACK);
    assert.equal(connack.reasonCode, ReasonCode.ProtocolError);
    await client.closed;
  } finally {
    await server.close();
  }
});

Deno.test("without an Authentication Method in CONNECT the broker sends no AUTH and none in CONNACK [MQTT-4.12.0-6]", async () => {
  const server = scramBroker();
  try {
    const { client, connack } = await TestClient.connect(server.port, {
      clientId: "plain",
      version: 5,
    });
    assert.equal(connack.reasonCode, ReasonCode.Success);
    assert.equal(connack.properties?.authenticationMethod, undefined);
    assert.equal(connack.properties?.authenticationData, undefined);
    await client.expectNothingPending();
    await client.disconnect();
  } finally {
    await server.close();
  }
});

Deno.test("a pluggable method: asynchronous steps, several rounds, the user name it names, no password hook", async () => {
  const encoder = new TextEncoder();
  // A toy challenge/response: the server asks twice for the challenge reversed.
  const reverse: EnhancedAuthMethod = () => {
    let challenge = "";
    let rounds = 0;
    const ask = (): AuthStep => {
      challenge = `c${++rounds}-${crypto.randomUUID()}`;
      return { kind: "continue", data: encoder.encode(challenge) };
    };
    return {
      start: (initialData, client) =>
        Promise.resolve(
          text(initialData!) === client.clientId ? ask() : {
            kind: "failure",
            reasonCode: ReasonCode.NotAuthorized,
            reason: "Wrong hello",
          },
        ),
      continue: async (data) => {
        await Promise.resolve();
        if (text(data!) !== [...challenge].reverse().join("")) {
          return { kind: "failure", reasonCode: undefined, reason: "Wrong answer" };
        }
        return rounds < 2 ? ask() : { kind: "success", data: undefined, username: "reverser" };
      },
    };
  };
  let passwordChecks = 0;
  const usernames: (string | undefined)[] = [];
  const server = startBroker({
    authMethods: new Map([["X-REVERSE", reverse]]),
    hooks: {
      authenticate: () => {
        passwordChecks++;
        return { ok: true };
      },
      onConnect: (c) => usernames.push(c.username),
    },
  });
  try {
    const client = await TestClient.open(server.port, 5);
    await client.sendConnectOnly({
      clientId: "rev",
      version: 5,
      properties: { authenticationMethod: "X-REVERSE", authenticationData: encoder.encode("rev") },
    });
    for (let i = 0; i < 2; i++) {
      const challenge = await client.expect(PacketType.AUTH);
      const answer = [...text(challenge.properties!.authenticationData!)].reverse().join("");
      await client.send(
        auth(ReasonCode.ContinueAuthentication, encoder.encode(answer), "X-REVERSE"),
      );
    }
    const connack = await client.expect(PacketType.CONNACK);
    assert.equal(connack.reasonCode, ReasonCode.Success);
    assert.equal(connack.properties?.authenticationMethod, "X-REVERSE");
    assert.deepEqual(usernames, ["reverser"]);
    assert.equal(passwordChecks, 0);
    await client.disconnect();

    // A wrong answer: failure without a code is 0x87 Not authorized.
    const bad = await TestClient.open(server.port, 5);
    await bad.sendConnectOnly({
      clientId: "rev",
      version: 5,
      properties: { authenticationMethod: "X-REVERSE", authenticationData: encoder.encode("rev") },
    });
    await bad.expect(PacketType.AUTH);
    await bad.send(auth(ReasonCode.ContinueAuthentication, encoder.encode("nope"), "X-REVERSE"));
    const refused = await bad.expect(PacketType.CONNACK);
    assert.equal(refused.reasonCode, ReasonCode.NotAuthorized);
    assert.equal(refused.properties?.reasonString, "Wrong answer");
    await bad.closed;
  } finally {
    await server.close();
  }
});

Deno.test("an authentication exchange the client leaves unanswered is closed after connectTimeout", async () => {
  const clock = new ManualClock(Date.now());
  const server = scramBroker({ clock, config: { mqtt: { connectTimeout: "5s" } } });
  try {
    const client = await TestClient.open(server.port, 5);
    await client.sendConnectOnly({
      clientId: "silent",
      version: 5,
      properties: {
        authenticationMethod: SCRAM,
        authenticationData: new ScramClient("alice", "w").clientFirst(),
      },
    });
    await client.expect(PacketType.AUTH);
    clock.advance(5_000);
    assert.equal(await client.next(), undefined);
    await client.closed;
  } finally {
    await server.close();
  }
});
