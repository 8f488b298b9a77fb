/**
 * `POST /api/v1/login`: an API user (`admin.users`) trades a user name and password for a
 * short-lived JWT, then sends it like a static token. Failed logins are limited per client address
 * and per user name (`admin.loginMaxFailures`, `admin.loginLockout`): beyond the limit the answer
 * is 429 with `Retry-After`, before any password is checked. Every attempt is logged.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import type { Logger } from "../src/mod.ts";
import { errors, json, jsonBody, problem, remoteAddress, resourceApp } from "./_common.ts";
import type { LoginThrottle } from "./_throttle.ts";
import type { AdminAuthenticator } from "./auth.ts";

const LoginBody = z.object({
  username: z.string({ error: "expected a user name" }).min(1, { error: "expected a user name" })
    .max(1024, { error: "expected at most 1024 characters" }),
  password: z.string({ error: "expected a password" }).min(1, { error: "expected a password" })
    .max(4096, { error: "expected at most 4096 characters" }),
}).strict().openapi("LoginRequest");

const LoginResult = z.object({
  token: z.string(),
  tokenType: z.literal("Bearer"),
  /** Seconds the token stays valid. */
  expiresIn: z.number().int(),
  role: z.enum(["admin", "viewer"]),
}).openapi("LoginResult");

const login = createRoute({
  method: "post",
  path: "/",
  tags: ["auth"],
  summary: "Trade an API user's password for a short-lived token",
  security: [],
  request: { body: jsonBody(LoginBody) },
  responses: {
    200: { description: "Logged in", content: json(LoginResult) },
    400: errors[400],
    401: { description: "Wrong user name or password", content: errors[400].content },
    429: errors[429],
  },
});

/** What the login endpoint needs. */
export interface LoginDeps {
  authenticator: AdminAuthenticator;
  throttle: LoginThrottle;
  logger: Logger;
}

/** The login endpoint. */
export function loginRoutes(deps: LoginDeps) {
  const { authenticator, throttle, logger } = deps;
  const app = resourceApp();
  app.openapi(login, async (c) => {
    const { username, password } = c.req.valid("json");
    const remote = remoteAddress(c);
    const locked = throttle.begin(remote, username);
    if (locked) {
      const seconds = Math.ceil(locked.retryAfter / 1000);
      logger.warn("admin login refused: too many failures", {
        username,
        remote,
        lockedBy: locked.by,
        retryAfter: seconds,
      });
      c.header("Retry-After", String(seconds));
      return problem(
        c,
        429,
        `Too many failed logins from this ${
          locked.by === "address" ? "address" : "user name"
        }: retry in ${seconds} s`,
      );
    }
    const issued = await authenticator.login(username, password);
    if (!issued) {
      logger.warn("admin login failed", { username, remote });
      return problem(c, 401, "Wrong user name or password");
    }
    throttle.succeeded(remote, username);
    logger.info("admin login", { username, remote, role: issued.role });
    return c.json({ ...issued, tokenType: "Bearer" as const }, 200);
  });
  return app;
}
