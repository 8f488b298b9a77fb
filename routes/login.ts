/**
 * `POST /api/v1/login`: an API user (`admin.users`) trades a user name and password for a
 * short-lived JWT, then sends it like a static token.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import { errors, json, jsonBody, problem, resourceApp } from "./_common.ts";
import type { AdminAuthenticator } from "./auth.ts";

const LoginBody = z.object({
  username: z.string({ error: "expected a user name" }).min(1, { error: "expected a user name" }),
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
  },
});

/** The login endpoint. */
export function loginRoutes(authenticator: AdminAuthenticator) {
  const app = resourceApp();
  app.openapi(login, async (c) => {
    const { username, password } = c.req.valid("json");
    const issued = await authenticator.login(username, password);
    if (!issued) return problem(c, 401, "Wrong user name or password");
    return c.json({ ...issued, tokenType: "Bearer" as const }, 200);
  });
  return app;
}
