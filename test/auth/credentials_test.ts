import assert from "node:assert/strict";
import {
  deriveScramCredentials,
  formatScramCredentials,
  hmacSha256,
  parseScramCredentials,
  type ScramCredentials,
  sha256,
  verifyScramPassword,
} from "../../src/auth/credentials.ts";

// RFC 7677 section 3: user "user", password "pencil", this salt, 4096 iterations.
const RFC_SALT = Uint8Array.fromBase64("W22ZaJ0SNY7soEsUEjb6gQ==");

Deno.test("deriveScramCredentials() yields the keys of the RFC 7677 example exchange", async () => {
  const c = await deriveScramCredentials("pencil", { salt: RFC_SALT, iterations: 4096 });
  const authMessage = new TextEncoder().encode(
    "n=user,r=rOprNGfwEbeRWgbNEkqO," +
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096," +
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  );
  // The server signature of the RFC's exchange is HMAC(ServerKey, AuthMessage).
  assert.equal(
    (await hmacSha256(c.serverKey, authMessage)).toBase64(),
    "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
  );
  // The RFC's client proof recovers a ClientKey whose hash is StoredKey.
  const proof = Uint8Array.fromBase64("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  const signature = await hmacSha256(c.storedKey, authMessage);
  const clientKey = proof.map((byte, i) => byte ^ signature[i]);
  assert.deepEqual(await sha256(clientKey), c.storedKey);
});

Deno.test("deriveScramCredentials() salts randomly and defaults to 100000 iterations", async () => {
  const a = await deriveScramCredentials("secret");
  const b = await deriveScramCredentials("secret");
  assert.equal(a.iterations, 100_000);
  assert.equal(a.salt.length, 16);
  assert.notDeepEqual(a.salt, b.salt);
  assert.notDeepEqual(a.storedKey, b.storedKey);
});

Deno.test("deriveScramCredentials() refuses fewer than 4096 iterations", async () => {
  await assert.rejects(
    () => deriveScramCredentials("x", { iterations: 4095 }),
    (err: Error) => err instanceof RangeError && /at least 4096, got 4095/.test(err.message),
  );
});

Deno.test("verifyScramPassword() accepts the password and nothing else", async () => {
  const c = await deriveScramCredentials("correct horse", { iterations: 4096 });
  assert.equal(await verifyScramPassword("correct horse", c), true);
  assert.equal(await verifyScramPassword("correct hors", c), false);
  assert.equal(await verifyScramPassword("", c), false);
});

Deno.test("formatScramCredentials() and parseScramCredentials() round-trip the PostgreSQL form", async () => {
  const c = await deriveScramCredentials("pencil", { salt: RFC_SALT, iterations: 4096 });
  const text = formatScramCredentials(c);
  assert.match(
    text,
    /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/,
  );
  const parsed = parseScramCredentials(text) as ScramCredentials;
  assert.deepEqual(parsed, c);
});

Deno.test("parseScramCredentials() names what is wrong", () => {
  const key = new Uint8Array(32).toBase64();
  const cases: [string, RegExp][] = [
    ["plain", /start with "SCRAM-SHA-256\$"/],
    ["SCRAM-SHA-256$4096:c2FsdA==", /expected <iterations>/],
    [`SCRAM-SHA-256$abc:c2FsdA==$${key}:${key}`, /iterations "abc" is not a number/],
    [`SCRAM-SHA-256$100:c2FsdA==$${key}:${key}`, /iterations must be from 4096/],
    [`SCRAM-SHA-256$4096:!!$${key}:${key}`, /salt is not base64/],
    [`SCRAM-SHA-256$4096:c2FsdA==$c2hvcnQ=:${key}`, /StoredKey is not 32 bytes/],
    [`SCRAM-SHA-256$4096:c2FsdA==$${key}:x`, /ServerKey is not 32 bytes/],
  ];
  for (const [text, message] of cases) {
    const result = parseScramCredentials(text);
    assert.ok(result instanceof Error, text);
    assert.match(result.message, /^Invalid SCRAM-SHA-256 verifier: /);
    assert.match(result.message, message, text);
  }
});
