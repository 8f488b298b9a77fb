/**
 * `/api/v1/bans`: client ids, user names and addresses (or CIDR ranges) refused at CONNECT with
 * 0x8A Banned (MQTT 3.1.1: return code 5), until a time or until removed. List, add (connected
 * clients the ban matches are disconnected at once) and remove. The list is bounded
 * (`admin.maxBans`) and lives in memory: a restart forgets it.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import {
  type Ban,
  BAN_KINDS,
  type BanKind,
  type BanList,
  BanListFullError,
  type Broker,
  ReasonCode,
} from "../src/mod.ts";
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

/** The longest ban with an end: ten years, in seconds. */
const MAX_BAN_SECONDS = 315_360_000;

const DURATION_ERROR = `expected a number of seconds from 1 to ${MAX_BAN_SECONDS}`;

/** A ban's length in seconds, from a body or a query string. */
export const DurationSchema = z.coerce.number({ error: DURATION_ERROR })
  .int({ error: DURATION_ERROR })
  .min(1, { error: DURATION_ERROR })
  .max(MAX_BAN_SECONDS, { error: DURATION_ERROR });

/** What a ban matches on. */
export const BanKindSchema = z.enum(BAN_KINDS as [BanKind, ...BanKind[]], {
  error: `expected ${BAN_KINDS.map((k) => `"${k}"`).join(", ")}`,
});

/** A ban as the API shows it. */
export const BanSchema = z.object({
  kind: BanKindSchema,
  value: z.string(),
  /** When the ban ends; null: until removed. */
  until: z.string().nullable().openapi({ format: "date-time" }),
  reason: z.string().nullable(),
  createdAt: z.string().openapi({ format: "date-time" }),
  createdBy: z.string(),
}).openapi("Ban");

/** The API view of a ban. */
export function banView(ban: Ban): z.infer<typeof BanSchema> {
  return {
    kind: ban.kind,
    value: ban.value,
    until: ban.until === undefined ? null : new Date(ban.until).toISOString(),
    reason: ban.reason ?? null,
    createdAt: new Date(ban.createdAt).toISOString(),
    createdBy: ban.createdBy,
  };
}

const AddBanBody = z.object({
  kind: BanKindSchema,
  value: z.string({ error: "expected a client id, user name, address or CIDR range" })
    .min(1, { error: "expected a client id, user name, address or CIDR range" })
    .max(65_535, { error: "expected at most 65535 characters" }),
  /** Seconds; without it the ban lasts until removed. */
  duration: DurationSchema.optional(),
  reason: z.string({ error: "expected a string" }).max(1024, {
    error: "expected at most 1024 characters",
  }).optional(),
}).strict().openapi("AddBan");

const BanKeyParams = z.object({
  kind: BanKindSchema.openapi({ param: { name: "kind", in: "path" } }),
  value: z.string().min(1).openapi({ param: { name: "value", in: "path" } }),
});

const listBans = createRoute({
  method: "get",
  path: "/",
  tags: ["bans"],
  summary: "Bans in force, by kind and value",
  request: { query: z.object(pageQuery) },
  responses: {
    200: { description: "One page of bans", content: json(pageOf(BanSchema)) },
    400: errors[400],
    ...authErrors,
  },
});

const addBan = createRoute({
  method: "post",
  path: "/",
  tags: ["bans"],
  summary: "Ban a client id, user name or address (connected clients it matches are disconnected)",
  request: { body: jsonBody(AddBanBody) },
  responses: {
    201: {
      description: "Banned",
      content: json(BanSchema.extend({ disconnected: z.number().int() })),
    },
    200: {
      description: "An existing ban replaced",
      content: json(BanSchema.extend({ disconnected: z.number().int() })),
    },
    400: errors[400],
    409: errors[409],
    ...authErrors,
  },
});

const removeBan = createRoute({
  method: "delete",
  path: "/{kind}/{value}",
  tags: ["bans"],
  summary: "Lift a ban (the value URL-encoded: 10.0.0.0/8 is 10.0.0.0%2F8)",
  request: { params: BanKeyParams },
  responses: {
    204: { description: "Lifted" },
    400: errors[400],
    404: errors[404],
    ...authErrors,
  },
});

/** What the bans resource works on. */
export interface BansDeps {
  broker: Broker;
  bans: BanList;
}

/**
 * Adds a ban.
 *
 * @returns The stored ban and whether it replaced one, or why not: 409 when the list is full, 400
 *   for an address ban whose value is not an address or range
 */
export function tryAdd(
  bans: BanList,
  ban: Ban,
): { ban: Ban; replaced: boolean } | { status: 400 | 409; message: string } {
  try {
    return bans.add(ban);
  } catch (error) {
    if (error instanceof BanListFullError) return { status: 409, message: error.message };
    if (error instanceof TypeError) return { status: 400, message: error.message };
    throw error;
  }
}

/** The bans resource. */
export function bansRoutes(deps: BansDeps) {
  const { broker, bans } = deps;
  const app = resourceApp();
  app.openapi(listBans, (c) => {
    const { page, limit } = c.req.valid("query");
    return c.json(paginate(bans.list().map(banView), page, limit), 200);
  });
  app.openapi(addBan, (c) => {
    const body = c.req.valid("json");
    const now = broker.clock.now();
    const added = tryAdd(bans, {
      kind: body.kind,
      value: body.value,
      until: body.duration === undefined ? undefined : now + body.duration * 1000,
      reason: body.reason,
      createdAt: now,
      createdBy: c.get("principal").name,
    });
    if ("status" in added) {
      return added.status === 409
        ? problem(c, 409, added.message)
        : fieldProblem(c, "value", added.message);
    }
    let disconnected = 0;
    for (const client of broker.listClients()) {
      if (bans.find(client) === undefined) continue;
      broker.disconnectClient(client.clientId, ReasonCode.AdministrativeAction, {
        reason: "Banned by an administrator",
      });
      disconnected++;
    }
    return c.json({ ...banView(added.ban), disconnected }, added.replaced ? 200 : 201);
  });
  app.openapi(removeBan, (c) => {
    const { kind, value } = c.req.valid("param");
    if (!bans.remove(kind, value)) return problem(c, 404, `No ${kind} ban on "${value}"`);
    return c.body(null, 204);
  });
  return app;
}
