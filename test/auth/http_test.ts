import assert from "node:assert/strict";
import { HttpAuthProvider } from "../../src/auth/http.ts";
import type { AuthenticateRequest } from "../../src/hooks/hooks.ts";
import { createLogger } from "../../src/util/logger.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startSecureBroker } from "../helpers/secure_broker.ts";
import { TestClient } from "../helpers/test_client.ts";

interface Seen {
  clientId: string;
  username: string | null;
  password: string | null;
  remoteAddress: string;
  protocolVersion: number;
}

/** A real HTTP auth service on a free port: allows password "open-sesame", 403 otherwise. */
function startService(
  answer: (body: Seen) => Response | Promise<Response> = (body) =>
    body.password === "open-sesame"
      ? Response.json({ result: "allow" })
      : new Response(null, { status: 403 }),
) {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.json() as Seen;
    seen.push(body);
    return answer(body);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/mqtt/auth`,
    seen,
    close: () => server.shutdown(),
  };
}

function request(password: string | undefined, clientId = "dev-1"): AuthenticateRequest {
  return {
    clientId,
    username: "dev",
    password: password === undefined ? undefined : new TextEncoder().encode(password),
    remoteAddress: "127.0.0.1",
    remotePort: 4000,
    protocolVersion: 5,
    transport: "tcp",
    peerCertificate: undefined,
    userProperties: undefined,
  };
}

const silent = createLogger({ level: "silent" });

for (const version of [4, 5] as const) {
  Deno.test(`v${version === 5 ? 5 : "3.1.1"}: the HTTP provider POSTs the CONNECT as JSON and follows the answer`, async () => {
    const service = startService();
    const server = await startSecureBroker({
      config: { auth: { anonymous: "never", chain: ["http"], http: { url: service.url } } },
    });
    try {
      const ok = await TestClient.connect(server.port, {
        version,
        clientId: "dev-1",
        username: "dev",
        password: "open-sesame",
      });
      assert.equal(ok.connack.reasonCode, 0);
      await ok.client.disconnect();
      const bad = await TestClient.connect(server.port, {
        version,
        clientId: "dev-2",
        username: "dev",
        password: "nope",
      });
      assert.equal(bad.connack.reasonCode, version === 5 ? 0x87 : 5);
      await bad.client.closed;
      assert.deepEqual(service.seen[0], {
        clientId: "dev-1",
        username: "dev",
        password: "open-sesame",
        remoteAddress: "127.0.0.1",
        protocolVersion: version,
      });
    } finally {
      await server.close();
      await service.close();
    }
  });
}

Deno.test("HttpAuthProvider caches results, bounded and with a time to live", async () => {
  const service = startService();
  const clock = new ManualClock(1_000_000);
  const provider = new HttpAuthProvider({
    url: service.url,
    timeout: 5000,
    cacheSize: 2,
    cacheTtl: 60_000,
    failPolicy: "closed",
    clock,
    logger: silent,
  });
  try {
    assert.equal((await provider.authenticate(request("open-sesame"))).outcome, "allow");
    assert.equal((await provider.authenticate(request("open-sesame"))).outcome, "allow");
    assert.equal(service.seen.length, 1, "the second CONNECT was answered from the cache");
    // Bounded: a third and fourth distinct request evict the oldest.
    await provider.authenticate(request("x", "dev-2"));
    await provider.authenticate(request("y", "dev-3"));
    assert.equal(provider.cacheSize, 2);
    assert.equal(service.seen.length, 3);
    await provider.authenticate(request("open-sesame"));
    assert.equal(service.seen.length, 4, "the evicted entry was asked again");
    // Expired entries are asked again.
    clock.advance(60_001);
    await provider.authenticate(request("open-sesame"));
    assert.equal(service.seen.length, 5);
  } finally {
    provider.close();
    await service.close();
  }
});

Deno.test("HttpAuthProvider reads allow with a user name and ACL, deny, and pass from a JSON body", async () => {
  const answers: Record<string, unknown> = {
    a: {
      result: "allow",
      username: "renamed",
      acl: [{ permission: "allow", action: "both", topic: "x/#" }],
    },
    d: { result: "deny" },
    p: { result: "pass" },
    bad: { result: "maybe" },
  };
  const service = startService((body) => Response.json(answers[body.password!]));
  const provider = new HttpAuthProvider({
    url: service.url,
    timeout: 5000,
    cacheSize: 0,
    cacheTtl: 0,
    failPolicy: "closed",
    clock: new ManualClock(),
    logger: silent,
  });
  try {
    assert.deepEqual(await provider.authenticate(request("a")), {
      outcome: "allow",
      username: "renamed",
      aclRules: [{ permission: "allow", action: "both", topic: "x/#" }],
    });
    assert.equal((await provider.authenticate(request("d"))).outcome, "deny");
    assert.equal((await provider.authenticate(request("p"))).outcome, "pass");
    // A body outside the contract is a service failure: closed policy refuses with 0x88.
    assert.deepEqual(await provider.authenticate(request("bad")), {
      outcome: "deny",
      reasonCode: 0x88,
      reason: "Authentication service unavailable",
    });
  } finally {
    await service.close();
  }
});

for (const failPolicy of ["open", "closed"] as const) {
  Deno.test(
    `the HTTP provider's fail policy "${failPolicy}" ${
      failPolicy === "open" ? "admits" : "refuses (0x88)"
    } clients when the service times out or answers 500`,
    async () => {
      const { promise: never } = Promise.withResolvers<Response>();
      const release = new AbortController();
      const service = startService((body) =>
        body.password === "slow-pw-3141"
          ? Promise.race([
            never,
            new Promise<Response>((resolve) =>
              release.signal.addEventListener("abort", () => resolve(new Response("late")))
            ),
          ])
          : new Response("boom", { status: 500 })
      );
      const server = await startSecureBroker({
        config: {
          auth: {
            anonymous: "never",
            chain: ["http"],
            http: { url: service.url, timeout: "200ms", failPolicy },
          },
        },
      });
      try {
        for (const password of ["slow-pw-3141", "err-pw-2718"]) {
          const { client, connack } = await TestClient.connect(server.port, {
            version: 5,
            clientId: `f-${password.length}`,
            username: "dev",
            password,
          });
          assert.equal(connack.reasonCode, failPolicy === "open" ? 0 : 0x88, password);
          await client.destroy();
        }
        // Failures are logged without the password.
        const log = server.logs.map((l) => l.line).join("\n");
        assert.match(log, /HTTP authentication failed/);
        assert.ok(!log.includes("slow-pw-3141") && !log.includes("err-pw-2718"));
      } finally {
        release.abort();
        await server.close();
        await service.close();
      }
    },
  );
}
