import assert from "node:assert/strict";
import { isSecretKey, REDACTED, redactText } from "../../src/util/redact.ts";

Deno.test("isSecretKey() matches secret names ignoring case, _ and -", () => {
  for (
    const name of [
      "password",
      "Password",
      "PASSWORD",
      "token",
      "secret",
      "authorization",
      "jwt",
      "passphrase",
      "apiToken",
      "client_secret",
      "Proxy-Authorization",
      "refresh_token",
    ]
  ) {
    assert.ok(isSecretKey(name), name);
  }
});

Deno.test("isSecretKey() leaves other names alone", () => {
  for (
    const name of ["username", "clientId", "topic", "tokenCount", "key", "passwordless_mode", ""]
  ) {
    assert.equal(isSecretKey(name), false, name);
  }
});

Deno.test("REDACTED is the placeholder shown for secrets", () => {
  assert.equal(REDACTED, "[redacted]");
});

Deno.test("isSecretKey() also covers credentials and verifiers", () => {
  for (const name of ["credentials", "scramCredentials", "verifier", "storedVerifier"]) {
    assert.ok(isSecretKey(name), name);
  }
});

Deno.test("redactText() masks JWTs, URL passwords and SCRAM verifiers inside free text", () => {
  const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLWJ5dGVz";
  assert.equal(redactText(`token ${jwt} refused`), "token [redacted] refused");
  assert.equal(
    redactText("fetch http://svc:hunter2@auth.local/check failed"),
    "fetch http://[redacted]@auth.local/check failed",
  );
  assert.equal(
    redactText("line SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2Vydg== bad"),
    "line [redacted] bad",
  );
  assert.equal(redactText("nothing secret here: a/b@c"), "nothing secret here: a/b@c");
});
