/**
 * `/api/v1/clients`: connected clients of this node. List (paged, filtered by client id, user
 * name or address), get one with its session and subscriptions, and kick (MQTT 5 clients get
 * DISCONNECT 0x98 Administrative action).
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import type { Broker } from "../src/mod.ts";
import {
  authErrors,
  byText,
  errors,
  json,
  pageOf,
  pageQuery,
  paginate,
  problem,
  resourceApp,
} from "./_common.ts";
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
    "The session stays (subject to its expiry interval); delete the session to end it as well.",
  request: { params: ClientIdParam },
  responses: {
    204: { description: "Disconnected" },
    404: errors[404],
    ...authErrors,
  },
});

/** The clients resource. */
export function clientsRoutes(broker: Broker) {
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
    if (!broker.disconnectClient(clientId)) {
      return problem(c, 404, `No connected client "${clientId}"`);
    }
    return c.body(null, 204);
  });
  return app;
}
