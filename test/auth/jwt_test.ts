import assert from "node:assert/strict";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import { PacketType } from "../../src/codec/mod.ts";
import type { ConfigInput } from "../../src/config/mod.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";
import { startSecureBroker } from "../helpers/secure_broker.ts";
import { TestClient } from "../helpers/test_client.ts";

const SECRET = "a-long-shared-secret-for-hs256-tests";
const NOW = Date.UTC(2026, 0, 1) / 1000; // seconds

function hs256(claims: Record<string, unknown>, secret = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode(secret));
}

async function login(port: number, token: string, version: 4 | 5 = 5, clientId = "jwt-c") {
  const { client, connack } = await TestClient.connect(port, {
    version,
    clientId,
    username: "ignored",
    password: token,
  });
  return { client, code: connack.reasonCode };
}

async function withJwtBroker(
  jwt: NonNullable<NonNullable<ConfigInput["auth"]>["jwt"]>,
  body: (port: number, clock: ManualClock, names: (string | undefined)[]) => Promise<void>,
): Promise<void> {
  const clock = new ManualClock(NOW * 1000);
  const names: (string | undefined)[] = [];
  const server = await startSecureBroker({
    clock,
    config: { auth: { anonymous: "never", chain: ["jwt"], jwt } },
    hooks: { onConnect: (client) => names.push(client.username) },
  });
  try {
    await body(server.port, clock, names);
  } finally {
    await server.close();
  }
}

for (const version of [4, 5] as const) {
  Deno.test(`v${version === 5 ? 5 : "3.1.1"}: an HS256 token in the password field is verified and its subject becomes the user name`, async () => {
    await withJwtBroker({ secret: SECRET }, async (port, _clock, names) => {
      const good = await login(port, await hs256({ sub: "sensor-7", exp: NOW + 60 }), version);
      assert.equal(good.code, 0);
      await good.client.send({ type: PacketType.PINGREQ });
      await good.client.expect(PacketType.PINGRESP);
      assert.deepEqual(names, ["sensor-7"]);
      await good.client.disconnect();
      const forged = await login(port, await hs256({ sub: "x", exp: NOW + 60 }, "wrong"), version);
      assert.equal(forged.code, version === 5 ? 0x86 : 4);
      await forged.client.closed;
    });
  });
}

Deno.test("JWT exp and nbf are enforced with the configured clock skew", async () => {
  await withJwtBroker({ secret: SECRET, clockSkew: "30s" }, async (port) => {
    const cases: [string, Record<string, unknown>, number][] = [
      ["expired beyond the skew", { sub: "a", exp: NOW - 31 }, 0x86],
      ["expired within the skew", { sub: "a", exp: NOW - 29 }, 0],
      ["not yet valid beyond the skew", { sub: "a", exp: NOW + 600, nbf: NOW + 31 }, 0x86],
      ["not yet valid within the skew", { sub: "a", exp: NOW + 600, nbf: NOW + 29 }, 0],
      ["without exp (required by default)", { sub: "a" }, 0x86],
      ["without sub", { exp: NOW + 60 }, 0x86],
    ];
    for (const [what, claims, expected] of cases) {
      const { client, code } = await login(port, await hs256(claims));
      assert.equal(code, expected, what);
      await client.destroy();
    }
  });
});

Deno.test("a JWT accepted now is refused once the broker clock passes its exp", async () => {
  await withJwtBroker({ secret: SECRET, clockSkew: 0 }, async (port, clock) => {
    const token = await hs256({ sub: "a", exp: NOW + 10 });
    const first = await login(port, token);
    assert.equal(first.code, 0);
    await first.client.disconnect();
    clock.advance(11_000);
    const second = await login(port, token);
    assert.equal(second.code, 0x86);
    await second.client.closed;
  });
});

Deno.test("JWT issuer and audience are checked when configured", async () => {
  await withJwtBroker({ secret: SECRET, issuer: "perch-tests", audience: "mqtt" }, async (port) => {
    const base = { sub: "a", exp: NOW + 60 };
    for (
      const [claims, expected] of [
        [{ ...base, iss: "perch-tests", aud: "mqtt" }, 0],
        [{ ...base, iss: "someone-else", aud: "mqtt" }, 0x86],
        [{ ...base, iss: "perch-tests", aud: "web" }, 0x86],
      ] as const
    ) {
      const { client, code } = await login(port, await hs256(claims));
      assert.equal(code, expected, JSON.stringify(claims));
      await client.destroy();
    }
  });
});

for (const alg of ["RS256", "ES256"] as const) {
  Deno.test(`an ${alg} token is verified with a PEM public key, and one signed by another key is refused`, async () => {
    const { publicKey, privateKey } = await generateKeyPair(alg);
    const other = await generateKeyPair(alg);
    const dir = await Deno.makeTempDir({ prefix: "perch-jwt-" });
    try {
      await Deno.writeTextFile(`${dir}/key.pem`, await exportSPKI(publicKey));
      await withJwtBroker(
        { publicKeyFile: `${dir}/key.pem`, publicKeyAlgorithm: alg },
        async (port) => {
          const sign = (key: Parameters<SignJWT["sign"]>[0]) =>
            new SignJWT({ sub: "k", exp: NOW + 60 }).setProtectedHeader({ alg }).sign(key);
          const good = await login(port, await sign(privateKey));
          assert.equal(good.code, 0);
          await good.client.disconnect();
          const bad = await login(port, await sign(other.privateKey));
          assert.equal(bad.code, 0x86);
          await bad.client.closed;
          // An HS256 token keyed with the public key text must not pass (algorithm confusion).
          const confused = await login(
            port,
            await hs256({ sub: "k", exp: NOW + 60 }, await exportSPKI(publicKey)),
          );
          assert.equal(confused.code, 0x86);
          await confused.client.closed;
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("a token is verified against the matching key of a JWKS file (by kid)", async () => {
  const rsa = await generateKeyPair("RS256");
  const ec = await generateKeyPair("ES256");
  const dir = await Deno.makeTempDir({ prefix: "perch-jwks-" });
  try {
    const keys = [
      { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
      { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
    ];
    await Deno.writeTextFile(`${dir}/jwks.json`, JSON.stringify({ keys }));
    await withJwtBroker({ jwksFile: `${dir}/jwks.json` }, async (port) => {
      for (
        const [alg, kid, key] of [["RS256", "rsa-1", rsa.privateKey], [
          "ES256",
          "ec-1",
          ec.privateKey,
        ]] as const
      ) {
        const token = await new SignJWT({ sub: kid, exp: NOW + 60 })
          .setProtectedHeader({ alg, kid }).sign(key);
        const { client, code } = await login(port, token);
        assert.equal(code, 0, kid);
        await client.disconnect();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a JWT's ACL claim becomes the client's rules: allowed topics pass, others are refused (0x87)", async () => {
  await withJwtBroker({ secret: SECRET }, async (port) => {
    const token = await hs256({
      sub: "meter-1",
      exp: NOW + 60,
      acl: { publish: ["meters/%u/#"], subscribe: ["commands/%u"] },
    });
    const { client, code } = await login(port, token);
    assert.equal(code, 0);
    const suback = await client.subscribe([
      { filter: "commands/meter-1", qos: 1 },
      { filter: "commands/meter-2", qos: 1 },
    ]);
    assert.deepEqual(suback.reasonCodes, [1, 0x87]);
    const allowed = await client.publish("meters/meter-1/kwh", "5", { qos: 1 });
    assert.equal((allowed as { reasonCode: number }).reasonCode, 0x10); // no subscribers, accepted
    const denied = await client.publish("meters/meter-2/kwh", "5", { qos: 1 });
    assert.equal((denied as { reasonCode: number }).reasonCode, 0x87);
    await client.disconnect();
  });
});

Deno.test("a password that is not a JWT passes the jwt provider to the next one", async () => {
  await withJwtBroker({ secret: SECRET }, async (port) => {
    // The chain has only the jwt provider: the plain password is unrecognised, 0x86.
    const { client, code } = await login(port, "just-a-password");
    assert.equal(code, 0x86);
    await client.closed;
  });
});
