/**
 * `/api/v1/users`: the MQTT users of the password-file provider. They live in the backbone's
 * config store, so a change made through any node applies to the next CONNECT on every node
 * without a restart; the node that made it then writes the password file
 * (`auth.passwordFile.path`) as an export, atomically. Passwords are never returned; the store and
 * the file hold SCRAM-SHA-256 verifiers only.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import { type Logger, type SharedUsers, validateUsername } from "../src/mod.ts";
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
  /** The users of every node, when the provider chain has a password file. */
  users: SharedUsers | undefined;
  /** Serializes this node's changes and their exports. */
  changes: SerialQueue;
  logger: Logger;
}

/** The users resource. */
export function usersRoutes(deps: UsersDeps) {
  const app = resourceApp();
  const { changes, logger } = deps;
  /**
   * Writes the password file after a change. The change is in force on every node whatever
   * happens here, so a file that cannot be written is logged, not answered as a failure.
   */
  const exportFile = async (users: SharedUsers) => {
    try {
      await users.export();
    } catch (error) {
      logger.error("cannot write the password file; the change is in force on every node", {
        file: users.path,
        error,
      });
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
      if (await users.add(body.username, body.password) === "exists") {
        return problem(c, 409, `User "${body.username}" exists`);
      }
      await exportFile(users);
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
      if (await users.changePassword(username, body.password) === "missing") {
        return problem(c, 404, `No user "${username}"`);
      }
      await exportFile(users);
      logger.info("password changed through the admin API", { username });
      return c.json({ username }, 200);
    });
  });
  app.openapi(deleteUser, (c) => {
    const users = deps.users;
    if (!users) return problem(c, 409, NOT_CONFIGURED);
    const { username } = c.req.valid("param");
    return changes.run(async () => {
      if (!(await users.remove(username))) return problem(c, 404, `No user "${username}"`);
      await exportFile(users);
      logger.info("user removed through the admin API", { username });
      return c.body(null, 204);
    });
  });
  return app;
}
