/**
 * `/api/v1/clients`: connected clients of this node. List (paged, filtered by client id, user
 * name or address), get one with its session and subscriptions, and kick (MQTT 5 clients get
 * DISCONNECT 0x98 Administrative action), optionally banning the client id, user name or address
 * for a while (`?ban=<seconds>&banBy=clientId|username|address`).
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import { type BanKind, type BanList, type Broker, ReasonCode } from "../src/mod.ts";
import {
  authErrors,
  byText,
  errors,
  fieldProblem,
  json,
  pageOf,
  pageQuery,
  paginate,
  problem,
  resourceApp,
} from "./_common.ts";
import { BanKindSchema, BanSchema, banView, DurationSchema, tryAdd } from "./bans.ts";
import { ClientDetailSchema, ClientSchema, clientView, sessionDetailView } from "./_views.ts";

const ClientIdParam = z.object({
  clientId: z.string().min(1).openapi({ param: { name: "clientId", in: "path" } }),
});

const listClients = createRoute({
  method: "get",
  path: "/",
  tags: ["clients"],
  summary: "List connected clients",
  request: {
    query: z.object({
      ...pageQuery,
      clientId: z.string().optional().openapi({ description: "Exact client id" }),
      like: z.string().optional().openapi({ description: "Part of the client id" }),
      username: z.string().optional(),
      address: z.string().optional().openapi({ description: "Exact remote IP address" }),
    }),
  },
  responses: {
    200: {
      description: "One page of clients, ordered by client id",
      content: json(pageOf(ClientSchema)),
    },
    400: errors[400],
    ...authErrors,
  },
});

const getClient = createRoute({
  method: "get",
  path: "/{clientId}",
  tags: ["clients"],
  summary: "A connected client with its session and subscriptions",
  request: { params: ClientIdParam },
  responses: {
    200: { description: "The client", content: json(ClientDetailSchema) },
    404: errors[404],
    ...authErrors,
  },
});

const kickClient = createRoute({
  method: "delete",
  path: "/{clientId}",
  tags: ["clients"],
  summary: "Disconnect a client (MQTT 5: DISCONNECT 0x98 Administrative action)",
  description:
    "The session stays (subject to its expiry interval); delete the session to end it as well. With `ban`, the client id (or, with `banBy`, its user name or address) is refused at CONNECT for that many seconds (CONNACK 0x8A Banned; 3.1.1: return code 5), and the ban is returned.",
  request: {
    params: ClientIdParam,
    query: z.object({
      ban: DurationSchema.optional().openapi({
        param: { name: "ban", in: "query" },
        description: "Ban for this many seconds",
      }),
      banBy: BanKindSchema.default("clientId").openapi({
        param: { name: "banBy", in: "query" },
      }),
    }),
  },
  responses: {
    200: { description: "Disconnected and banned", content: json(BanSchema) },
    204: { description: "Disconnected" },
    400: errors[400],
    404: errors[404],
    409: errors[409],
    ...authErrors,
  },
});

/** What the clients resource works on. */
export interface ClientsDeps {
  broker: Broker;
  bans: BanList;
}

/** The clients resource. */
export function clientsRoutes(deps: ClientsDeps) {
  const { broker, bans } = deps;
  const app = resourceApp();
  app.openapi(listClients, (c) => {
    const { page, limit, clientId, like, username, address } = c.req.valid("query");
    const clients = broker.listClients()
      .filter((info) =>
        (clientId === undefined || info.clientId === clientId) &&
        (like === undefined || info.clientId.includes(like)) &&
        (username === undefined || info.username === username) &&
        (address === undefined || info.remoteAddress === address)
      )
      .sort(byText((info) => info.clientId))
      .map(clientView);
    return c.json(paginate(clients, page, limit), 200);
  });
  app.openapi(getClient, async (c) => {
    const { clientId } = c.req.valid("param");
    const info = broker.getClient(clientId);
    const session = info && await broker.getSession(clientId);
    if (!info || !session) return problem(c, 404, `No connected client "${clientId}"`);
    return c.json({ ...clientView(info), session: sessionDetailView(session) }, 200);
  });
  app.openapi(kickClient, (c) => {
    const { clientId } = c.req.valid("param");
    const { ban, banBy } = c.req.valid("query");
    const info = broker.getClient(clientId);
    if (!info) return problem(c, 404, `No connected client "${clientId}"`);
    if (ban === undefined) {
      broker.disconnectClient(clientId);
      return c.body(null, 204);
    }
    const values: Record<BanKind, string | undefined> = {
      clientId,
      username: info.username,
      address: info.remoteAddress,
    };
    const value = values[banBy];
    if (value === undefined || value === "") {
      return fieldProblem(c, "banBy", `client "${clientId}" has no ${banBy}`);
    }
    const now = broker.clock.now();
    const added = tryAdd(bans, {
      kind: banBy,
      value,
      until: now + ban * 1000,
      reason: "kicked",
      createdAt: now,
      createdBy: c.get("principal").name,
    });
    if ("status" in added) {
      return added.status === 409
        ? problem(c, 409, added.message)
        : fieldProblem(c, "banBy", added.message);
    }
    broker.disconnectClient(clientId, ReasonCode.AdministrativeAction, {
      reason: "Banned by an administrator",
    });
    return c.json(banView(added.ban), 200);
  });
  return app;
}
