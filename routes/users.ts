/**
 * `/api/v1/users`: the MQTT users of the password file (`auth.passwordFile.path`). Create, change
 * a password, delete: each change is written to the file at once (atomically) and applies to the
 * next CONNECT without a restart. Passwords are never returned; the file holds SCRAM-SHA-256
 * verifiers only.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { type Logger, type PasswordFile, validateUsername } from "../src/mod.ts";
import {
  authErrors,
  errors,
  fieldProblem,
  json,
  jsonBody,
  pageOf,
  pageQuery,
  paginate,
  problem,
  resourceApp,
} from "./_common.ts";
import type { SerialQueue } from "./_serial.ts";

const UserSchema = z.object({ username: z.string().openapi({ example: "sensor-fleet" }) })
  .openapi("User");

const UsernameParam = z.object({
  username: z.string().min(1).openapi({ param: { name: "username", in: "path" } }),
});

const password = z.string({ error: "expected a non-empty string" })
  .min(1, { error: "expected a non-empty string" })
  .max(4096, { error: "expected at most 4096 characters" });

const CreateUserBody = z.object({
  username: z.string({ error: "expected a user name" }).min(1, { error: "expected a user name" }),
  password,
}).strict().openapi("CreateUser");

const ChangePasswordBody = z.object({ password }).strict().openapi("ChangePassword");

const listUsers = createRoute({
  method: "get",
  path: "/",
  tags: ["users"],
  summary: "List users of the password file",
  request: { query: z.object(pageQuery) },
  responses: {
    200: { description: "One page of users, by name", content: json(pageOf(UserSchema)) },
    400: errors[400],
    409: errors[409],
    ...authErrors,
  },
});

const getUser = createRoute({
  method: "get",
  path: "/{username}",
  tags: ["users"],
  summary: "One user",
  request: { params: UsernameParam },
  responses: {
    200: { description: "The user", content: json(UserSchema) },
    404: errors[404],
    409: errors[409],
    ...authErrors,
  },
});

const createUser = createRoute({
  method: "post",
  path: "/",
  tags: ["users"],
  summary: "Add a user",
  request: { body: jsonBody(CreateUserBody) },
  responses: {
    201: { description: "Added", content: json(UserSchema) },
    400: errors[400],
    409: errors[409],
    500: errors[500],
    ...authErrors,
  },
});

const changePassword = createRoute({
  method: "put",
  path: "/{username}",
  tags: ["users"],
  summary: "Change a user's password",
  request: { params: UsernameParam, body: jsonBody(ChangePasswordBody) },
  responses: {
    200: { description: "Changed", content: json(UserSchema) },
    400: errors[400],
    404: errors[404],
    409: errors[409],
    500: errors[500],
    ...authErrors,
  },
});

const deleteUser = createRoute({
  method: "delete",
  path: "/{username}",
  tags: ["users"],
  summary: "Remove a user",
  request: { params: UsernameParam },
  responses: {
    204: { description: "Removed" },
    404: errors[404],
    409: errors[409],
    500: errors[500],
    ...authErrors,
  },
});

const NOT_CONFIGURED =
  "User management needs a password file: add passwordFile to auth.chain and set auth.passwordFile.path";

/** What the users resource works on. */
export interface UsersDeps {
  /** The password file, when the provider chain has one. */
  users: PasswordFile | undefined;
  /** Serializes edits and saves. */
  changes: SerialQueue;
  logger: Logger;
}

/** The users resource. */
export function usersRoutes(deps: UsersDeps) {
  const app = resourceApp();
  const { changes, logger } = deps;
  /** Writes the file; on failure the in-memory users are read back from it, so both agree. */
  const save = async (users: PasswordFile, c: Context) => {
    try {
      await users.save();
      return undefined;
    } catch (error) {
      logger.error("cannot write the password file", { file: users.path, error });
      await users.load({ allowMissing: true }).catch(() => {});
      return problem(c, 500, `Cannot write the password file ${users.path}`);
    }
  };
  app.openapi(listUsers, (c) => {
    if (!deps.users) return problem(c, 409, NOT_CONFIGURED);
    const { page, limit } = c.req.valid("query");
    return c.json(paginate(deps.users.list().map((username) => ({ username })), page, limit), 200);
  });
  app.openapi(getUser, (c) => {
    if (!deps.users) return problem(c, 409, NOT_CONFIGURED);
    const { username } = c.req.valid("param");
    if (!deps.users.has(username)) return problem(c, 404, `No user "${username}"`);
    return c.json({ username }, 200);
  });
  app.openapi(createUser, (c) => {
    const users = deps.users;
    if (!users) return problem(c, 409, NOT_CONFIGURED);
    const body = c.req.valid("json");
    const invalid = validateUsername(body.username);
    if (invalid) return fieldProblem(c, "username", invalid);
    return changes.run(async () => {
      if (users.has(body.username)) return problem(c, 409, `User "${body.username}" exists`);
      await users.setPassword(body.username, body.password);
      const failed = await save(users, c);
      if (failed) return failed;
      logger.info("user added through the admin API", { username: body.username });
      return c.json({ username: body.username }, 201);
    });
  });
  app.openapi(changePassword, (c) => {
    const users = deps.users;
    if (!users) return problem(c, 409, NOT_CONFIGURED);
    const { username } = c.req.valid("param");
    const body = c.req.valid("json");
    return changes.run(async () => {
      if (!users.has(username)) return problem(c, 404, `No user "${username}"`);
      await users.setPassword(username, body.password);
      const failed = await save(users, c);
      if (failed) return failed;
      logger.info("password changed through the admin API", { username });
      return c.json({ username }, 200);
    });
  });
  app.openapi(deleteUser, (c) => {
    const users = deps.users;
    if (!users) return problem(c, 409, NOT_CONFIGURED);
    const { username } = c.req.valid("param");
    return changes.run(async () => {
      if (!users.remove(username)) return problem(c, 404, `No user "${username}"`);
      const failed = await save(users, c);
      if (failed) return failed;
      logger.info("user removed through the admin API", { username });
      return c.body(null, 204);
    });
  });
  return app;
}
