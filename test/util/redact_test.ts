import assert from "node:assert/strict";
import { isSecretKey, REDACTED } from "../../src/util/redact.ts";

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
