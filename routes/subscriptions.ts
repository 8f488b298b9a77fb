/**
 * `/api/v1/subscriptions`: every subscription of every session on this node, filtered by client
 * id, filter, QoS or share group. Adding and removing one is done on its session:
 * `/api/v1/sessions/{clientId}/subscriptions`.
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
  QosQuery,
  resourceApp,
} from "./_common.ts";
import { SubscriptionSchema, subscriptionView } from "./_views.ts";

const listSubscriptions = createRoute({
  method: "get",
  path: "/",
  tags: ["subscriptions"],
  summary: "List subscriptions",
  request: {
    query: z.object({
      ...pageQuery,
      clientId: z.string().optional().openapi({ description: "Exact client id" }),
      filter: z.string().optional().openapi({ description: "Exact filter, as subscribed" }),
      qos: QosQuery.optional(),
      share: z.string().optional().openapi({
        description: "Share group name: only `$share/{share}/...` subscriptions",
      }),
    }),
  },
  responses: {
    200: {
      description: "One page of subscriptions, by client id then filter",
      content: json(pageOf(SubscriptionSchema)),
    },
    400: errors[400],
    ...authErrors,
  },
});

/** The subscriptions resource (read-only listing). */
export function subscriptionsRoutes(broker: Broker) {
  const app = resourceApp();
  app.openapi(listSubscriptions, async (c) => {
    const { page, limit, clientId, filter, qos, share } = c.req.valid("query");
    const sharePrefix = share === undefined ? undefined : `$share/${share}/`;
    const subscriptions = (await broker.listSessions())
      .filter((session) => clientId === undefined || session.clientId === clientId)
      .sort(byText((session) => session.clientId))
      .flatMap((session) =>
        session.subscriptions
          .filter((record) =>
            (filter === undefined || record.filter === filter) &&
            (qos === undefined || record.qos === qos) &&
            (sharePrefix === undefined || record.filter.startsWith(sharePrefix))
          )
          .sort(byText((record) => record.filter))
          .map((record) => subscriptionView(session.clientId, record))
      );
    return c.json(paginate(subscriptions, page, limit), 200);
  });
  return app;
}
