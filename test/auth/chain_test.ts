import assert from "node:assert/strict";
import { AuthChain } from "../../src/auth/chain.ts";
import type { AuthDecision, AuthProvider } from "../../src/auth/provider.ts";
import { anonymousNotice } from "../../src/auth/setup.ts";
import type { AuthenticateRequest } from "../../src/hooks/hooks.ts";
import { createLogger } from "../../src/util/logger.ts";
import { startSecureBroker } from "../helpers/secure_broker.ts";
import { TestClient } from "../helpers/test_client.ts";

const logger = createLogger({ level: "silent" });

function request(overrides: Partial<AuthenticateRequest> = {}): AuthenticateRequest {
  return {
    clientId: "c",
    username: undefined,
    password: undefined,
    remoteAddress: "127.0.0.1",
    remotePort: 5000,
    protocolVersion: 5,
    transport: "tcp",
    peerCertificate: undefined,
    userProperties: undefined,
    ...overrides,
  };
}

/** A provider that always answers the same and records that it was asked. */
function fixed(name: string, decision: AuthDecision, asked: string[]): AuthProvider {
  return {
    name,
    authenticate() {
      asked.push(name);
      return decision;
    },
  };
}

Deno.test("AuthChain asks providers in order and the first allow or deny decides", async () => {
  const asked: string[] = [];
  const chain = new AuthChain({
    providers: [
      fixed("a", { outcome: "pass" }, asked),
      fixed("b", { outcome: "allow", username: "from-b" }, asked),
      fixed("c", { outcome: "deny", reasonCode: 0x87, reason: "no" }, asked),
    ],
    anonymous: "never",
    logger,
  });
  assert.deepEqual(await chain.authenticate(request({ username: "x" })), {
    ok: true,
    username: "from-b",
    context: undefined,
  });
  assert.deepEqual(asked, ["a", "b"]);
  const denyFirst = new AuthChain({
    providers: [
      fixed("c", { outcome: "deny", reasonCode: 0x87, reason: "no" }, asked),
      fixed("b", { outcome: "allow" }, asked),
    ],
    anonymous: "always",
    logger,
  });
  assert.deepEqual(await denyFirst.authenticate(request()), {
    ok: false,
    reasonCode: 0x87,
    reason: "no",
  });
});

Deno.test("AuthChain refuses credentials no provider recognised (0x86) instead of letting them in anonymously", async () => {
  const chain = new AuthChain({
    providers: [fixed("a", { outcome: "pass" }, [])],
    anonymous: "always",
    logger,
  });
  const result = await chain.authenticate(request({ username: "ghost" }));
  assert.deepEqual(result, { ok: false, reasonCode: 0x86, reason: "Bad user name or password" });
  assert.equal((await chain.authenticate(request())).ok, true); // no credentials: anonymous
});

Deno.test("AuthChain anonymous policy: never, loopback (this machine only) and always", async () => {
  const remote = request({ remoteAddress: "203.0.113.7" });
  const cases: [string, AuthenticateRequest, boolean][] = [
    ["never", request(), false],
    ["loopback", request(), true],
    ["loopback", request({ remoteAddress: "::1" }), true],
    ["loopback", request({ remoteAddress: "::ffff:127.0.0.1" }), true],
    ["loopback", remote, false],
    ["always", remote, true],
  ];
  for (const [anonymous, req, ok] of cases) {
    const chain = new AuthChain({
      providers: [],
      anonymous: anonymous as "never" | "loopback" | "always",
      logger,
    });
    const result = await chain.authenticate(req);
    assert.equal(result.ok, ok, `${anonymous} from ${req.remoteAddress}`);
    if (!result.ok) assert.equal(result.reasonCode, 0x87);
  }
});

Deno.test("AuthChain refuses (0x88) when a provider throws, and logs without the password", async () => {
  const lines: string[] = [];
  const chain = new AuthChain({
    providers: [{
      name: "broken",
      authenticate() {
        throw new Error("database down");
      },
    }],
    anonymous: "always",
    logger: createLogger({ write: (line) => lines.push(line) }),
  });
  const result = await chain.authenticate(
    request({ username: "u", password: new TextEncoder().encode("hunter2") }),
  );
  assert.deepEqual(result, { ok: false, reasonCode: 0x88, reason: "Server unavailable" });
  assert.equal(lines.length, 1);
  assert.match(lines[0], /authentication provider failed.*database down/);
  assert.ok(!lines.join("\n").includes("hunter2"));
});

Deno.test("anonymousNotice() warns loudly when anonymous access is open to the network", () => {
  const warning = anonymousNotice("always", ["0.0.0.0"]);
  assert.equal(warning?.level, "warn");
  assert.match(warning!.message, /ANONYMOUS ACCESS IS ALLOWED FROM THE NETWORK.*0\.0\.0\.0/);
  assert.equal(anonymousNotice("always", ["127.0.0.1", "::1"]), undefined);
  assert.equal(anonymousNotice("loopback", ["0.0.0.0"])?.level, "info");
  assert.equal(anonymousNotice("never", ["0.0.0.0"]), undefined);
});

Deno.test("the default configuration accepts anonymous clients on loopback", async () => {
  const server = await startSecureBroker();
  try {
    const { client, connack } = await TestClient.connect(server.port, { clientId: "anon" });
    assert.equal(connack.reasonCode, 0);
    await client.disconnect();
  } finally {
    await server.close();
  }
});

for (const version of [4, 5] as const) {
  Deno.test(
    `v${version === 5 ? 5 : "3.1.1"}: auth.anonymous never refuses a client without credentials (${
      version === 5 ? "0x87" : "return code 5"
    })`,
    async () => {
      const server = await startSecureBroker({ config: { auth: { anonymous: "never" } } });
      try {
        const { client, connack } = await TestClient.connect(server.port, {
          version,
          clientId: "anon",
        });
        assert.equal(connack.reasonCode, version === 5 ? 0x87 : 5);
        await client.closed;
        assert.equal(server.broker.sessionCount, 0);
      } finally {
        await server.close();
      }
    },
  );
}
