/**
 * Secrets never reach the logs: failed and successful logins with passwords and tokens, logged at
 * debug level, through every provider that sees them.
 */

import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { PasswordFile } from "../../src/auth/password_file.ts";
import { createLogger } from "../../src/util/logger.ts";
import { startSecureBroker } from "../helpers/secure_broker.ts";
import { TestClient } from "../helpers/test_client.ts";

const PASSWORD = "correct-horse-battery-staple";
const WRONG = "tr0ub4dor-and-3";
const SECRET = "jwt-signing-secret-that-must-stay-hidden";

Deno.test("passwords, tokens and the JWT secret never appear in the broker's log", async () => {
  const dir = await Deno.makeTempDir({ prefix: "perch-secrets-" });
  try {
    const users = new PasswordFile(`${dir}/users`);
    await users.setPassword("alice", PASSWORD, { iterations: 4096 });
    await users.save();
    const server = await startSecureBroker({
      config: {
        log: { level: "debug" },
        auth: {
          anonymous: "never",
          chain: ["jwt", "passwordFile"],
          passwordFile: { path: users.path },
          jwt: { secret: SECRET },
        },
      },
    });
    try {
      const expired = await new SignJWT({ sub: "bob", exp: 1 }).setProtectedHeader({ alg: "HS256" })
        .sign(new TextEncoder().encode(SECRET));
      const valid = await new SignJWT({ sub: "bob", exp: Math.floor(Date.now() / 1000) + 60 })
        .setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));
      const attempts: [string, string, number][] = [
        ["alice", PASSWORD, 0],
        ["alice", WRONG, 0x86],
        ["mallory", WRONG, 0x86],
        ["bob", expired, 0x86],
        ["bob", valid, 0],
      ];
      for (const [username, password, expected] of attempts) {
        const { client, connack } = await TestClient.connect(server.port, {
          version: 5,
          clientId: `c-${username}`,
          username,
          password,
        });
        assert.equal(connack.reasonCode, expected, `${username}`);
        await client.destroy();
      }
      const log = server.logs.map((l) => l.line).join("\n");
      assert.match(log, /authentication denied/); // the failures were logged...
      for (const secret of [PASSWORD, WRONG, SECRET, expired, valid, expired.split(".")[2]]) {
        assert.ok(!log.includes(secret), `log holds a secret: ${secret.slice(0, 12)}...`);
      }
    } finally {
      await server.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the logger redacts a JWT or URL password even in a field with an innocent name", () => {
  const lines: string[] = [];
  const logger = createLogger({ write: (line) => lines.push(line) });
  const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLWJ5dGVz";
  logger.warn(`rejected ${token}`, { note: token, url: "https://u:pa55@host/x" });
  logger.error("failed", { error: new Error(`bad token ${token}`) });
  const text = lines.join("\n");
  assert.ok(!text.includes(token) && !text.includes("pa55"), text);
  assert.match(text, /\[redacted\]/);
});
