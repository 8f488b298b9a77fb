/**
 * `/api/v1/nodes`: the brokers serving this deployment, every node of the backbone's node registry
 * (with the memory backbone, this node alone), each describing itself when asked; a node that does
 * not answer in time is listed as `unreachable` with what the registry knows of it.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import type { Broker, EventLoopLag, NodeStatus } from "../src/mod.ts";
import { askNode, nodeIds, NodeMethod } from "./_cluster.ts";
import { authErrors, errors, json, problem, resourceApp } from "./_common.ts";
import type { Readiness } from "./health.ts";
import type { MemoryUsage } from "./metrics.ts";

/** A bound listener, for the node description. */
export interface ListenerInfo {
  transport: string;
  address: string;
  port: number;
}

/** What describes this node. */
export interface NodesDeps {
  broker: Broker;
  listeners: () => ListenerInfo[];
  /** Listeners bound and backbone ready: the node's state. */
  readiness: () => Readiness;
  eventLoopLag: () => EventLoopLag;
  memoryUsage: () => MemoryUsage;
}

/** A number a node that did not answer cannot give. */
const measured = () => z.number().int().nullable();

const NodeSchema = z.object({
  id: z.string(),
  state: z.enum(["ready", "not ready", "unreachable"]).openapi({
    description:
      "ready: listeners bound and backbone ready, as /readyz says; unreachable: the node did not answer in time (its figures are null)",
  }),
  /** Its lease in the node registry is current. */
  alive: z.boolean(),
  lastSeen: z.string().openapi({ format: "date-time", description: "Its last heartbeat" }),
  version: z.string(),
  backbone: z.string(),
  startedAt: z.string().openapi({ format: "date-time" }),
  uptimeSeconds: z.number().int(),
  connections: measured(),
  sessions: measured(),
  subscriptions: measured(),
  retained: measured(),
  memory: z.object({ rss: z.number(), heapUsed: z.number(), heapTotal: z.number() }).nullable(),
  eventLoopLagMs: z.number().nullable().openapi({
    description: "Lag of the latest event-loop sample",
  }),
  eventLoopLagMaxMs: z.number().nullable().openapi({
    description: "Largest event-loop lag of the recent sampling window",
  }),
  listeners: z.array(z.object({ transport: z.string(), address: z.string(), port: z.number() })),
}).openapi("Node");

/** How a node describes itself. */
export type NodeView = z.infer<typeof NodeSchema>;

/** This node, as `/api/v1/nodes` shows it and as it answers another node asking. */
export async function describeNode(deps: NodesDeps): Promise<NodeView> {
  const { broker } = deps;
  const now = broker.clock.now();
  const memory = deps.memoryUsage();
  const readiness = deps.readiness();
  const lag = deps.eventLoopLag();
  return {
    id: broker.options.nodeId,
    state: readiness.listeners && readiness.backbone ? "ready" : "not ready",
    alive: true,
    lastSeen: new Date(now).toISOString(),
    version: broker.version,
    backbone: broker.backbone.kind,
    startedAt: new Date(broker.stats.startedAt).toISOString(),
    uptimeSeconds: Math.floor((now - broker.stats.startedAt) / 1000),
    connections: broker.stats.clientsConnected,
    sessions: broker.sessionCount,
    subscriptions: broker.subscriptionCount,
    retained: await broker.backbone.retained.count(),
    memory: { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal },
    eventLoopLagMs: lag.latest,
    eventLoopLagMaxMs: lag.max,
    listeners: deps.listeners(),
  };
}

/** A node that did not answer, from what the node registry knows. */
function unreachable(broker: Broker, id: string, status: NodeStatus | undefined): NodeView {
  const startedAt = status?.startedAt ?? 0;
  return {
    id,
    state: "unreachable",
    alive: status?.alive ?? false,
    lastSeen: new Date(status?.lastSeen ?? 0).toISOString(),
    version: status?.version ?? "",
    backbone: broker.backbone.kind,
    startedAt: new Date(startedAt).toISOString(),
    uptimeSeconds: Math.max(0, Math.floor((broker.clock.now() - startedAt) / 1000)),
    connections: null,
    sessions: null,
    subscriptions: null,
    retained: null,
    memory: null,
    eventLoopLagMs: null,
    eventLoopLagMaxMs: null,
    listeners: [],
  };
}

const listNodes = createRoute({
  method: "get",
  path: "/",
  tags: ["nodes"],
  summary: "Every node of this deployment",
  responses: { 200: { description: "Nodes", content: json(z.array(NodeSchema)) }, ...authErrors },
});

const getNode = createRoute({
  method: "get",
  path: "/{nodeId}",
  tags: ["nodes"],
  summary: "One node",
  request: {
    params: z.object({ nodeId: z.string().openapi({ param: { name: "nodeId", in: "path" } }) }),
  },
  responses: {
    200: { description: "The node", content: json(NodeSchema) },
    404: errors[404],
    ...authErrors,
  },
});

/** The nodes resource. */
export function nodesRoutes(deps: NodesDeps) {
  const app = resourceApp();
  const { broker } = deps;
  const describe = async (id: string, status: NodeStatus | undefined): Promise<NodeView> => {
    const answer = await askNode(broker, id, NodeMethod.describe, null, () => describeNode(deps));
    if ("missing" in answer) return unreachable(broker, id, status);
    // The registry knows the liveness of every node better than the node itself.
    return status
      ? { ...answer.value, alive: status.alive, lastSeen: new Date(status.lastSeen).toISOString() }
      : answer.value;
  };
  const statuses = async () =>
    new Map((await broker.backbone.nodes.list()).map((status) => [status.id, status]));
  app.openapi(listNodes, async (c) => {
    const known = await statuses();
    const ids = await nodeIds(broker);
    return c.json(await Promise.all(ids.map((id) => describe(id, known.get(id)))), 200);
  });
  app.openapi(getNode, async (c) => {
    const { nodeId } = c.req.valid("param");
    const known = await statuses();
    if (nodeId !== broker.options.nodeId && !known.has(nodeId)) {
      return problem(c, 404, `No node "${nodeId}"`);
    }
    return c.json(await describe(nodeId, known.get(nodeId)), 200);
  });
  return app;
}
