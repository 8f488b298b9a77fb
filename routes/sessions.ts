/**
 * `/api/v1/sessions`: every session this node holds, connected or not. List, get one with its
 * subscriptions, delete (a connected client is disconnected first), and add or remove a
 * subscription on a session's behalf.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import {
  type Acl,
  type Broker,
  type ClientInfo,
  MqttError,
  parseSharedFilter,
  ReasonCode,
  type SubscriptionRecord,
} from "../src/mod.ts";
import {
  authErrors,
  byText,
  errors,
  json,
  jsonBody,
  pageOf,
  pageQuery,
  paginate,
  problem,
  QosSchema,
  resourceApp,
} from "./_common.ts";
import {
  SessionDetailSchema,
  sessionDetailView,
  SessionSchema,
  sessionView,
  SubscriptionSchema,
  subscriptionView,
} from "./_views.ts";

const ClientIdParam = z.object({
  clientId: z.string().min(1).openapi({ param: { name: "clientId", in: "path" } }),
});

const listSessions = createRoute({
  method: "get",
  path: "/",
  tags: ["sessions"],
  summary: "List sessions",
  request: {
    query: z.object({
      ...pageQuery,
      clientId: z.string().optional().openapi({ description: "Exact client id" }),
      like: z.string().optional().openapi({ description: "Part of the client id" }),
      connected: z.enum(["true", "false"], { error: 'expected "true" or "false"' }).optional(),
    }),
  },
  responses: {
    200: {
      description: "One page of sessions, ordered by client id",
      content: json(pageOf(SessionSchema)),
    },
    400: errors[400],
    ...authErrors,
  },
});

const getSession = createRoute({
  method: "get",
  path: "/{clientId}",
  tags: ["sessions"],
  summary: "A session with its subscriptions",
  request: { params: ClientIdParam },
  responses: {
    200: { description: "The session", content: json(SessionDetailSchema) },
    404: errors[404],
    ...authErrors,
  },
});

const deleteSession = createRoute({
  method: "delete",
  path: "/{clientId}",
  tags: ["sessions"],
  summary: "End a session (a connected client is disconnected with 0x98; a pending will is sent)",
  request: { params: ClientIdParam },
  responses: {
    204: { description: "Ended" },
    404: errors[404],
    ...authErrors,
  },
});

const SubscribeBody = z.object({
  filter: z.string({ error: "expected a topic filter" }).min(1, {
    error: "expected a topic filter",
  })
    .openapi({ example: "alerts/#" }),
  qos: QosSchema.default(0),
  noLocal: z.boolean({ error: "expected true or false" }).default(false),
  retainAsPublished: z.boolean({ error: "expected true or false" }).default(false),
  retainHandling: z.union([z.literal(0), z.literal(1), z.literal(2)], {
    error: "expected 0, 1 or 2",
  }).default(0),
  subscriptionId: z.number({ error: "expected an integer from 1 to 268435455" })
    .int({ error: "expected an integer from 1 to 268435455" })
    .min(1, { error: "expected an integer from 1 to 268435455" })
    .max(268_435_455, { error: "expected an integer from 1 to 268435455" })
    .optional(),
}).openapi("SubscribeRequest");

const addSubscription = createRoute({
  method: "post",
  path: "/{clientId}/subscriptions",
  tags: ["subscriptions"],
  summary: "Subscribe a session (a connected client gets the matching retained messages)",
  request: { params: ClientIdParam, body: jsonBody(SubscribeBody) },
  responses: {
    201: { description: "Subscribed", content: json(SubscriptionSchema) },
    200: { description: "An existing subscription replaced", content: json(SubscriptionSchema) },
    400: errors[400],
    404: errors[404],
    409: errors[409],
    ...authErrors,
    403: {
      description:
        "The ACL does not let this client subscribe to the filter, or the token's role may not write",
      content: errors[400].content,
    },
  },
});

const removeSubscription = createRoute({
  method: "delete",
  path: "/{clientId}/subscriptions/{filter}",
  tags: ["subscriptions"],
  summary: "Unsubscribe a session (the filter URL-encoded: a/# is a%2F%23)",
  request: {
    params: ClientIdParam.extend({
      filter: z.string().min(1).openapi({ param: { name: "filter", in: "path" } }),
    }),
  },
  responses: {
    204: { description: "Unsubscribed" },
    404: errors[404],
    ...authErrors,
  },
});

/** The field an MQTT reason code from a subscribe points at. */
function subscribeFailure(error: MqttError): { status: 400 | 409; field: string } {
  switch (error.reasonCode) {
    case ReasonCode.QuotaExceeded:
      return { status: 409, field: "filter" };
    case ReasonCode.SubscriptionIdentifiersNotSupported:
      return { status: 400, field: "subscriptionId" };
    case ReasonCode.ProtocolError:
      return { status: 400, field: "noLocal" };
    default:
      return { status: 400, field: "filter" };
  }
}

/** What the sessions resource works on. */
export interface SessionsDeps {
  broker: Broker;
  /** The ACL a subscription made here must pass, as the client's own SUBSCRIBE would. */
  acl: Acl;
}

/**
 * The client a subscription is checked for: the connected client as it authenticated, or, for a
 * session whose client is away, its client id alone (rules naming users or `%u` then do not
 * match; every delivery is checked again with the client's identity once it is back).
 */
function subscriber(broker: Broker, clientId: string, protocolVersion: number): ClientInfo {
  return broker.getClient(clientId) ?? {
    clientId,
    username: undefined,
    remoteAddress: "",
    remotePort: 0,
    protocolVersion: protocolVersion as ClientInfo["protocolVersion"],
    transport: "tcp",
    peerCertificate: undefined,
  };
}

/** The sessions resource, with subscriptions on a session's behalf. */
export function sessionsRoutes(deps: SessionsDeps) {
  const { broker, acl } = deps;
  const app = resourceApp();
  app.openapi(listSessions, async (c) => {
    const { page, limit, clientId, like, connected } = c.req.valid("query");
    const sessions = (await broker.listSessions())
      .filter((info) =>
        (clientId === undefined || info.clientId === clientId) &&
        (like === undefined || info.clientId.includes(like)) &&
        (connected === undefined || info.connected === (connected === "true"))
      )
      .sort(byText((info) => info.clientId))
      .map(sessionView);
    return c.json(paginate(sessions, page, limit), 200);
  });
  app.openapi(getSession, async (c) => {
    const { clientId } = c.req.valid("param");
    const session = await broker.getSession(clientId);
    if (!session) return problem(c, 404, `No session "${clientId}"`);
    return c.json(sessionDetailView(session), 200);
  });
  app.openapi(deleteSession, async (c) => {
    const { clientId } = c.req.valid("param");
    if (!(await broker.deleteSession(clientId))) return problem(c, 404, `No session "${clientId}"`);
    return c.body(null, 204);
  });
  app.openapi(addSubscription, async (c) => {
    const { clientId } = c.req.valid("param");
    const body = c.req.valid("json");
    const session = await broker.getSession(clientId);
    if (!session) return problem(c, 404, `No session "${clientId}"`);
    const shared = parseSharedFilter(body.filter);
    if (!(shared instanceof MqttError)) {
      const filter = shared ? shared.filter : body.filter;
      if (!acl.canSubscribe(subscriber(broker, clientId, session.protocolVersion), filter)) {
        const message = `the ACL does not let client "${clientId}" subscribe to "${filter}"`;
        return problem(c, 403, `filter: ${message}`, [{ field: "filter", message }]);
      }
    }
    const record: SubscriptionRecord = {
      filter: body.filter,
      qos: body.qos,
      noLocal: body.noLocal,
      retainAsPublished: body.retainAsPublished,
      retainHandling: body.retainHandling,
      subscriptionId: body.subscriptionId ?? 0,
    };
    let created: boolean | undefined;
    try {
      created = await broker.subscribeSession(clientId, record);
    } catch (error) {
      if (!(error instanceof MqttError)) throw error;
      const { status, field } = subscribeFailure(error);
      return problem(c, status, `${field}: ${error.message}`, [{ field, message: error.message }]);
    }
    if (created === undefined) return problem(c, 404, `No session "${clientId}"`);
    const granted = (await broker.getSession(clientId))!.subscriptions.find((s) =>
      s.filter === record.filter
    )!;
    return c.json(subscriptionView(clientId, granted), created ? 201 : 200);
  });
  app.openapi(removeSubscription, async (c) => {
    const { clientId, filter } = c.req.valid("param");
    const removed = await broker.unsubscribeSession(clientId, filter);
    if (removed === undefined) return problem(c, 404, `No session "${clientId}"`);
    if (!removed) return problem(c, 404, `Session "${clientId}" has no subscription "${filter}"`);
    return c.body(null, 204);
  });
  return app;
}
