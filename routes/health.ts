/**
 * `/healthz` (the process is up and serving) and `/readyz` (listeners bound and backbone ready:
 * send traffic here), unauthenticated so orchestrators and load balancers can probe them. With
 * the Kafka bridge configured, `/readyz` also shows its state, which never makes the node
 * unready: messages wait for Kafka in the bridge's buffer.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import type { KafkaBridge } from "../src/mod.ts";
import { json, resourceApp } from "./_common.ts";

/** What readiness is made of. */
export interface Readiness {
  /** Every configured listener is bound and accepting (false while shutting down). */
  listeners: boolean;
  /** The backbone has started and not closed. */
  backbone: boolean;
}

const HealthSchema = z.object({ status: z.literal("ok") }).openapi("Health");
const ReadinessSchema = z.object({
  status: z.enum(["ready", "not ready"]),
  checks: z.object({ listeners: z.boolean(), backbone: z.boolean() }),
  bridges: z.object({
    kafka: z.object({
      state: z.enum(["connecting", "connected", "disconnected", "retrying", "stopped"]),
      buffered: z.number().int().openapi({ description: "Messages waiting for Kafka" }),
    }),
  }).optional().openapi({ description: "Bridges and their state (detail: never unready)" }),
}).openapi("Readiness");

const healthz = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["health"],
  summary: "Liveness: the process is up",
  security: [],
  responses: { 200: { description: "Up", content: json(HealthSchema) } },
});

const readyz = createRoute({
  method: "get",
  path: "/readyz",
  tags: ["health"],
  summary: "Readiness: listeners bound and backbone ready",
  security: [],
  responses: {
    200: { description: "Ready", content: json(ReadinessSchema) },
    503: { description: "Not ready (starting or shutting down)", content: json(ReadinessSchema) },
  },
});

/** The health endpoints. */
export function healthRoutes(readiness: () => Readiness, bridge?: KafkaBridge) {
  const app = resourceApp();
  app.openapi(healthz, (c) => c.json({ status: "ok" as const }, 200));
  app.openapi(readyz, (c) => {
    const checks = readiness();
    const ready = checks.listeners && checks.backbone;
    const kafka = bridge?.status();
    const detail = kafka
      ? { bridges: { kafka: { state: kafka.state, buffered: kafka.buffered } } }
      : {};
    return ready
      ? c.json({ status: "ready" as const, checks, ...detail }, 200)
      : c.json({ status: "not ready" as const, checks, ...detail }, 503);
  });
  return app;
}
