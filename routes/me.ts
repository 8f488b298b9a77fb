/**
 * `GET /api/v1/me`: who the presented token stands for, so a client (the dashboard) can tell an
 * admin from a viewer, and whether the API asks for credentials at all, without trying a write.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import { authErrors, json, resourceApp } from "./_common.ts";

const MeSchema = z.object({
  /** The token's name, the user name of a login token, or `anonymous` on an open API. */
  name: z.string().openapi({ example: "ops" }),
  role: z.enum(["admin", "viewer"]),
  /** False when no token and no user is configured (loopback only, every caller an admin). */
  authenticated: z.boolean(),
}).openapi("Me");

const getMe = createRoute({
  method: "get",
  path: "/",
  tags: ["auth"],
  summary: "The caller: name and role of the presented token",
  responses: { 200: { description: "The caller", content: json(MeSchema) }, ...authErrors },
});

/** The caller resource; `open` is true when the API asks for no credentials. */
export function meRoutes(open: boolean) {
  const app = resourceApp();
  app.openapi(getMe, (c) => {
    const { name, role } = c.get("principal");
    return c.json({ name, role, authenticated: !open }, 200);
  });
  return app;
}
