/**
 * `/api/v1/clients`: connected clients of every node. List (paged, filtered by client id, user
 * name or address), get one with its session and subscriptions, and kick (MQTT 5 clients get
 * DISCONNECT 0x98 Administrative action), optionally banning the client id, user name or address
 * for a while (`?ban=<seconds>&banBy=clientId|username|address`; the ban is this node's).
 *
 * Other nodes are asked through the backbone (`./_cluster.ts`): a list asks every node for the
 * sorted ids of its matching clients (at most as many as the page needs) and their count, then
 * asks the nodes holding the page's clients for those clients; a node that does not answer is
 * named in `missing` and the reply is what the others said. A client on another node is found
 * through its session record, which names the node holding its connection.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import { type BanKind, type BanList, type Broker, ReasonCode } from "../src/mod.ts";
import { askNode, nodeIds, NodeMethod } from "./_cluster.ts";
import {
  authErrors,
  byText,
  errors,
  fieldProblem,
  json,
  pageOf,
  pageQuery,
  problem,
  resourceApp,
} from "./_common.ts";
import { BanKindSchema, BanSchema, banView, DurationSchema, tryAdd } from "./bans.ts";
import {
  ClientDetailSchema,
  ClientSchema,
  type ClientView,
  clientView,
  sessionDetailView,
} from "./_views.ts";

const ClientIdParam = z.object({
  clientId: z.string().min(1).openapi({ param: { name: "clientId", in: "path" } }),
});

const ClientSearch = z.object({
  clientId: z.string().optional().openapi({ description: "Exact client id" }),
  like: z.string().optional().openapi({ description: "Part of the client id" }),
  username: z.string().optional(),
  address: z.string().optional().openapi({ description: "Exact remote IP address" }),
});

type Search = z.infer<typeof ClientSearch>;

const listClients = createRoute({
  method: "get",
  path: "/",
  tags: ["clients"],
  summary: "List connected clients of every node",
  request: { query: ClientSearch.extend(pageQuery) },
  responses: {
    200: {
      description:
        "One page of clients, ordered by client id; `missing` names the nodes that did not answer (their clients are not in the page or the count)",
      content: json(pageOf(ClientSchema).extend({ missing: z.array(z.string()) })),
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
    503: errors[503],
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
    503: errors[503],
    ...authErrors,
  },
});

/** What the clients resource works on. */
export interface ClientsDeps {
  broker: Broker;
  bans: BanList;
}

/** This node's clients matching a search, in client id order. */
function matching(broker: Broker, search: Search) {
  const { clientId, like, username, address } = search;
  return broker.listClients()
    .filter((info) =>
      (clientId === undefined || info.clientId === clientId) &&
      (like === undefined || info.clientId.includes(like)) &&
      (username === undefined || info.username === username) &&
      (address === undefined || info.remoteAddress === address)
    )
    .sort(byText((info) => info.clientId));
}

/** What a node answers to {@linkcode NodeMethod.clientIds}. */
interface ClientIds {
  ids: string[];
  count: number;
}

/** What the other nodes ask of this one about its clients. */
export function clientRequests(broker: Broker) {
  const node = broker.options.nodeId;
  return {
    ids(body: { search: Search; first: number }): ClientIds {
      const found = matching(broker, body.search);
      return { ids: found.slice(0, body.first).map((info) => info.clientId), count: found.length };
    },
    views(body: { clientIds: string[] }): ClientView[] {
      return body.clientIds.flatMap((clientId) => {
        const info = broker.getClient(clientId);
        return info ? [clientView(info, node)] : [];
      });
    },
    async detail(body: { clientId: string }) {
      const info = broker.getClient(body.clientId);
      const session = info && await broker.getSession(body.clientId);
      if (!info || !session) return null;
      return { ...clientView(info, node), session: sessionDetailView(session) };
    },
    kick(body: { clientId: string; banned: boolean }): boolean {
      if (!broker.getClient(body.clientId)) return false;
      if (body.banned) {
        broker.disconnectClient(body.clientId, ReasonCode.AdministrativeAction, {
          reason: "Banned by an administrator",
        });
      } else broker.disconnectClient(body.clientId);
      return true;
    },
  };
}

/** The clients resource. */
export function clientsRoutes(deps: ClientsDeps) {
  const { broker, bans } = deps;
  const local = clientRequests(broker);
  const self = broker.options.nodeId;
  const app = resourceApp();

  /** The node holding a client's connection, from this node or the client's session record. */
  const ownerOf = async (clientId: string): Promise<string | undefined> => {
    if (broker.getClient(clientId)) return self;
    const session = await broker.getSession(clientId);
    return session?.connected && session.node !== self ? session.node : undefined;
  };
  const notAnswering = (node: string, clientId: string) =>
    `Node "${node}", which holds client "${clientId}", did not answer`;

  app.openapi(listClients, async (c) => {
    const { page, limit, ...search } = c.req.valid("query");
    const start = (page - 1) * limit;
    const nodes = await nodeIds(broker);
    const missing: string[] = [];
    // Each node's first matches, enough for the page whichever node they are on.
    const found = await Promise.all(nodes.map((node) =>
      askNode<ClientIds>(
        broker,
        node,
        NodeMethod.clientIds,
        { search, first: start + limit },
        () => local.ids({ search, first: start + limit }),
      )
    ));
    let count = 0;
    const candidates: { clientId: string; node: string }[] = [];
    for (const answer of found) {
      if ("missing" in answer) {
        missing.push(answer.node);
        continue;
      }
      count += answer.value.count;
      for (const clientId of answer.value.ids) candidates.push({ clientId, node: answer.node });
    }
    const pageOfIds = candidates.sort(byText((x) => x.clientId)).slice(start, start + limit);
    const byNode = Map.groupBy(pageOfIds, (x) => x.node);
    const views = await Promise.all([...byNode].map(([node, entries]) => {
      const body = { clientIds: entries.map((x) => x.clientId) };
      return askNode<ClientView[]>(
        broker,
        node,
        NodeMethod.clientViews,
        body,
        () => local.views(body),
      );
    }));
    const data: ClientView[] = [];
    for (const answer of views) {
      if ("missing" in answer) missing.push(answer.node);
      else data.push(...answer.value);
    }
    data.sort(byText((view) => view.clientId));
    return c.json({
      data,
      meta: { page, limit, count, hasNext: start + limit < count },
      missing: [...new Set(missing)].sort(),
    }, 200);
  });
  app.openapi(getClient, async (c) => {
    const { clientId } = c.req.valid("param");
    const owner = await ownerOf(clientId);
    const answer = owner === undefined ? undefined : await askNode(
      broker,
      owner,
      NodeMethod.client,
      { clientId },
      () => local.detail({ clientId }),
    );
    if (answer && "missing" in answer) return problem(c, 503, notAnswering(answer.node, clientId));
    if (!answer?.value) return problem(c, 404, `No connected client "${clientId}"`);
    return c.json(answer.value, 200);
  });
  app.openapi(kickClient, async (c) => {
    const { clientId } = c.req.valid("param");
    const { ban, banBy } = c.req.valid("query");
    const owner = await ownerOf(clientId);
    if (owner === undefined) return problem(c, 404, `No connected client "${clientId}"`);
    const kick = async (banned: boolean) => {
      const body = { clientId, banned };
      return await askNode(broker, owner, NodeMethod.kick, body, () => local.kick(body));
    };
    if (ban === undefined) {
      const kicked = await kick(false);
      if ("missing" in kicked) return problem(c, 503, notAnswering(owner, clientId));
      if (!kicked.value) return problem(c, 404, `No connected client "${clientId}"`);
      return c.body(null, 204);
    }
    const found = await askNode(
      broker,
      owner,
      NodeMethod.client,
      { clientId },
      () => local.detail({ clientId }),
    );
    if ("missing" in found) return problem(c, 503, notAnswering(owner, clientId));
    const info = found.value;
    if (!info) return problem(c, 404, `No connected client "${clientId}"`);
    const values: Record<BanKind, string | undefined> = {
      clientId,
      username: info.username ?? undefined,
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
    const kicked = await kick(true);
    if ("missing" in kicked) return problem(c, 503, notAnswering(owner, clientId));
    return c.json(banView(added.ban), 200);
  });
  return app;
}
