/**
 * `/api/v1/nodes`: the brokers serving this deployment. With the memory backbone that is this
 * node alone; a clustered backbone adds the others from its node registry.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import type { Broker, EventLoopLag } from "../src/mod.ts";
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

const NodeSchema = z.object({
  id: z.string(),
  state: z.enum(["ready", "not ready"]).openapi({
    description: "ready: listeners bound and backbone ready, as /readyz says",
  }),
  version: z.string(),
  backbone: z.string(),
  startedAt: z.string().openapi({ format: "date-time" }),
  uptimeSeconds: z.number().int(),
  connections: z.number().int(),
  sessions: z.number().int(),
  subscriptions: z.number().int(),
  retained: z.number().int(),
  memory: z.object({ rss: z.number(), heapUsed: z.number(), heapTotal: z.number() }),
  eventLoopLagMs: z.number().openapi({ description: "Lag of the latest event-loop sample" }),
  eventLoopLagMaxMs: z.number().openapi({
    description: "Largest event-loop lag of the recent sampling window",
  }),
  listeners: z.array(z.object({ transport: z.string(), address: z.string(), port: z.number() })),
}).openapi("Node");

const listNodes = createRoute({
  method: "get",
  path: "/",
  tags: ["nodes"],
  summary: "The nodes of this deployment",
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
  const describe = async () => {
    const now = broker.clock.now();
    const memory = deps.memoryUsage();
    const readiness = deps.readiness();
    const lag = deps.eventLoopLag();
    return {
      id: broker.options.nodeId,
      state: readiness.listeners && readiness.backbone ? "ready" as const : "not ready" as const,
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
  };
  app.openapi(listNodes, async (c) => c.json([await describe()], 200));
  app.openapi(getNode, async (c) => {
    const { nodeId } = c.req.valid("param");
    if (nodeId !== broker.options.nodeId) return problem(c, 404, `No node "${nodeId}"`);
    return c.json(await describe(), 200);
  });
  return app;
}
