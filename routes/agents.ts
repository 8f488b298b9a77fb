/**
 * `/api/v1/agents`: the agents of the whole cluster (agent mode, `agent.enabled`), with their
 * host facts, state (online or offline), node and connection time; list (paged, filtered by state
 * and platform), get one, and forget an offline one. Without agent mode every route answers 404.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import type { AgentRecord, AgentRegistry } from "../src/mod.ts";
import {
  authErrors,
  errors,
  json,
  pageOf,
  pageQuery,
  paginate,
  problem,
  resourceApp,
} from "./_common.ts";

const AgentSchema = z.object({
  clientId: z.string().openapi({ example: "d92e1e7b-d59c-454a-9eef-7090ba33c419" }),
  state: z.enum(["online", "offline"]),
  node: z.string().openapi({
    description: "The node holding its connection, or the one that held it last",
  }),
  hostName: z.string().nullable(),
  intranetIp: z.string().nullable(),
  publicIp: z.string().nullable(),
  platform: z.string().nullable(),
  arch: z.string().nullable(),
  os: z.string().nullable(),
  agentVersion: z.string().nullable(),
  username: z.string().nullable(),
  remoteAddress: z.string(),
  protocolVersion: z.number().int(),
  connectedAt: z.string().openapi({
    format: "date-time",
    description: "When its (last) connection completed CONNECT",
  }),
  since: z.string().openapi({ format: "date-time", description: "When its state last changed" }),
  reason: z.string().nullable().openapi({
    description: "Offline: why (unsubscribed, a disconnect reason, node_lost)",
  }),
}).openapi("Agent");

type AgentView = z.infer<typeof AgentSchema>;

function agentView(record: AgentRecord): AgentView {
  const facts = record.facts;
  return {
    clientId: record.clientId,
    state: record.state,
    node: record.node,
    hostName: facts.host_name ?? null,
    intranetIp: facts.intranet_ip ?? null,
    publicIp: facts.public_ip ?? null,
    platform: facts.platform ?? null,
    arch: facts.arch ?? null,
    os: facts.os ?? null,
    agentVersion: facts.agent_version ?? null,
    username: record.username ?? null,
    remoteAddress: record.remoteAddress,
    protocolVersion: record.protocolVersion,
    connectedAt: new Date(record.connectedAt).toISOString(),
    since: new Date(record.since).toISOString(),
    reason: record.reason ?? null,
  };
}

const ClientIdParam = z.object({
  clientId: z.string().min(1).openapi({ param: { name: "clientId", in: "path" } }),
});

const listAgents = createRoute({
  method: "get",
  path: "/",
  tags: ["agents"],
  summary: "List the agents of the cluster",
  request: {
    query: z.object({
      ...pageQuery,
      state: z.enum(["online", "offline"], { error: 'expected "online" or "offline"' })
        .optional(),
      platform: z.string().optional().openapi({ description: "Exact platform fact" }),
    }),
  },
  responses: {
    200: {
      description: "One page of agents, ordered by client id",
      content: json(pageOf(AgentSchema)),
    },
    400: errors[400],
    404: errors[404],
    ...authErrors,
  },
});

const getAgent = createRoute({
  method: "get",
  path: "/{clientId}",
  tags: ["agents"],
  summary: "One agent",
  request: { params: ClientIdParam },
  responses: {
    200: { description: "The agent", content: json(AgentSchema) },
    404: errors[404],
    ...authErrors,
  },
});

const forgetAgent = createRoute({
  method: "delete",
  path: "/{clientId}",
  tags: ["agents"],
  summary: "Forget an offline agent",
  request: { params: ClientIdParam },
  responses: {
    204: { description: "Forgotten" },
    404: errors[404],
    409: errors[409],
    ...authErrors,
  },
});

const OFF = "Agent mode is off (agent.enabled)";

/** The agents resource; `registry` is undefined without agent mode. */
export function agentsRoutes(registry: AgentRegistry | undefined) {
  const app = resourceApp();
  app.openapi(listAgents, (c) => {
    if (!registry) return problem(c, 404, OFF);
    const { page, limit, state, platform } = c.req.valid("query");
    const agents = registry.list()
      .filter((record) =>
        (state === undefined || record.state === state) &&
        (platform === undefined || record.facts.platform === platform)
      )
      .map(agentView);
    return c.json(paginate(agents, page, limit), 200);
  });
  app.openapi(getAgent, (c) => {
    if (!registry) return problem(c, 404, OFF);
    const { clientId } = c.req.valid("param");
    const record = registry.get(clientId);
    if (!record) return problem(c, 404, `No agent "${clientId}"`);
    return c.json(agentView(record), 200);
  });
  app.openapi(forgetAgent, async (c) => {
    if (!registry) return problem(c, 404, OFF);
    const { clientId } = c.req.valid("param");
    const record = registry.get(clientId);
    if (!record) return problem(c, 404, `No agent "${clientId}"`);
    if (record.state === "online") {
      return problem(c, 409, `Agent "${clientId}" is online: it can be forgotten once offline`);
    }
    await registry.forget(clientId);
    return c.body(null, 204);
  });
  return app;
}
