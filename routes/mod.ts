/**
 * The admin HTTP API: a Hono app with one sub-app per resource, zod-validated requests, JSON
 * errors with the right status, token and login authentication with roles, health and
 * Prometheus metrics, an OpenAPI 3.1 document generated from the same zod schemas
 * (`/api/v1/openapi.json`), and the dashboard's static files at `/dashboard/`. It knows the
 * broker only through `src/mod.ts`; `src/main.ts` serves it.
 *
 * @example Ask an embedded broker's API without a socket
 * ```ts ignore
 * const app = createAdminApp({ broker, auth, security: { acl }, ...probes });
 * const health = await app.request("/healthz"); // main.ts serves app.fetch over HTTP
 * ```
 *
 * @module
 */

import process from "node:process";
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type {
  Acl,
  AgentRegistry,
  BanList,
  Broker,
  ClientEvents,
  EventLoopLag,
  IdleCollectionStats,
  KafkaBridge,
  Logger,
  Notifier,
  SharedAclRules,
  SharedUsers,
} from "../src/mod.ts";
import { type AdminEnv, problem, remoteAddress, validationHook } from "./_common.ts";
import { SerialQueue } from "./_serial.ts";
import { LoginThrottle } from "./_throttle.ts";
import { aclRoutes } from "./acl.ts";
import { agentsRoutes } from "./agents.ts";
import { AdminAuthenticator, type AdminAuthOptions, requireToken } from "./auth.ts";
import { bansRoutes } from "./bans.ts";
import { bridgesRoutes, smqBridgeRoutes } from "./bridges.ts";
import { clientRequests, clientsRoutes } from "./clients.ts";
import { NodeMethod } from "./_cluster.ts";
import { dashboardRoutes } from "./dashboard.ts";
import { healthRoutes, type Readiness } from "./health.ts";
import { loginRoutes } from "./login.ts";
import { meRoutes } from "./me.ts";
import { createMetricsRegistry, type MemoryUsage, metricsRoutes } from "./metrics.ts";
import { describeNode, type ListenerInfo, type NodesDeps, nodesRoutes } from "./nodes.ts";
import { publishRoutes } from "./publish.ts";
import { retainedRoutes } from "./retained.ts";
import { sessionsRoutes } from "./sessions.ts";
import { statsRoutes } from "./stats.ts";
import { subscriptionsRoutes } from "./subscriptions.ts";
import { usersRoutes } from "./users.ts";

export type { AdminEnv, Principal, Role } from "./_common.ts";
export type { AdminAuthOptions, ApiToken, ApiUser } from "./auth.ts";
export type { Readiness } from "./health.ts";
export type { MemoryUsage } from "./metrics.ts";
export type { ListenerInfo } from "./nodes.ts";

/** The security parts the users and ACL resources edit. */
export interface AdminSecurity {
  /** The live ACL (config rules, then the rules file's). */
  acl: Acl;
  /** The users of every node, when the provider chain has a password file. */
  users?: SharedUsers;
  /** The rules file's rules of every node, when `acl.file` is set. */
  aclRules?: SharedAclRules;
  /** Bans enforced at CONNECT; listed, added and removed under `/api/v1/bans`. */
  bans: BanList;
}

/** What the admin API is built from. */
export interface AdminDeps {
  broker: Broker;
  auth: AdminAuthOptions;
  security: AdminSecurity;
  /** Listeners bound and backbone ready, for `/readyz`. */
  readiness: () => Readiness;
  /** Bound listeners, for `/api/v1/nodes`. */
  listeners: () => ListenerInfo[];
  eventLoopLag: () => EventLoopLag;
  /** What idle collection has done, for `/metrics`. */
  idleCollection?: () => IdleCollectionStats;
  /** Process memory; `process.memoryUsage()` by default. */
  memoryUsage?: () => MemoryUsage;
  /** Largest request body, in bytes. */
  maxBodySize: number;
  /** Serve `/metrics` without a token. */
  publicMetrics?: boolean;
  /** Client connect and disconnect counters, for `/metrics`. */
  clientEvents?: ClientEvents;
  /** Event notification sinks, for their counters in `/metrics`. */
  notifier?: Notifier;
  /** The agents of the cluster (agent mode), for `/api/v1/agents`. */
  agents?: AgentRegistry;
  /** Failed logins allowed per address and per user name, and the lock-out after them (ms). */
  login?: { maxFailures: number; lockout: number };
  /** The dashboard's files; `dashboard/` of this repository by default. */
  dashboardDir?: URL;
  /** The Kafka bridge, when `bridge.kafka` is configured: `/api/v1/bridges`, metrics, `/readyz`. */
  bridge?: KafkaBridge;
  logger: Logger;
}

/** Paths that need no token. */
const PUBLIC_PATHS: ReadonlySet<string> = new Set(["/api/v1/login", "/api/v1/openapi.json"]);

/** Host names an open API (no credentials, loopback only) answers to. */
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Methods that change something: each one is written to the audit log. */
const WRITE_METHODS: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** What this node tells other nodes' admin APIs about itself. */
export type NodeRequestDeps = Omit<NodesDeps, "memoryUsage"> & { memoryUsage?: () => MemoryUsage };

/**
 * Answers other nodes' admin APIs (this node's description, its clients, kicks) through the
 * backbone; served whether or not this node's own admin API is on. Returns a stop.
 */
export function serveNodeRequests(deps: NodeRequestDeps): () => void {
  const nodes = deps.broker.backbone.nodes;
  const memoryUsage = deps.memoryUsage ?? (() => process.memoryUsage());
  const clients = clientRequests(deps.broker);
  // Bodies come from other nodes of this deployment, through the backbone.
  const stops = [
    nodes.serve(NodeMethod.describe, () => describeNode({ ...deps, memoryUsage })),
    nodes.serve(NodeMethod.clientIds, (body) => Promise.resolve(clients.ids(body as never))),
    nodes.serve(NodeMethod.clientViews, (body) => Promise.resolve(clients.views(body as never))),
    nodes.serve(NodeMethod.client, (body) => clients.detail(body as never)),
    nodes.serve(NodeMethod.kick, (body) => Promise.resolve(clients.kick(body as never))),
  ];
  return () => {
    for (const stop of stops) stop();
  };
}

/** Builds the admin app. */
export function createAdminApp(deps: AdminDeps): OpenAPIHono<AdminEnv> {
  const { broker, logger } = deps;
  const memoryUsage = deps.memoryUsage ?? (() => process.memoryUsage());
  const authenticator = new AdminAuthenticator(deps.auth);
  const throttle = new LoginThrottle({
    maxFailures: deps.login?.maxFailures ?? 5,
    lockout: deps.login?.lockout ?? 300_000,
    clock: deps.auth.clock,
  });
  const changes = new SerialQueue();
  const app = new OpenAPIHono<AdminEnv>({ defaultHook: validationHook });

  app.onError((error, c) => {
    if (error instanceof HTTPException) {
      return problem(c, error.status as ContentfulStatusCode, error.message || "Bad request");
    }
    logger.error("admin API request failed", { method: c.req.method, path: c.req.path, error });
    return problem(c, 500, "Internal server error");
  });
  app.notFound((c) => problem(c, 404, `No route for ${c.req.method} ${c.req.path}`));
  app.use(
    "*",
    bodyLimit({
      maxSize: deps.maxBodySize,
      onError: (c) =>
        problem(c, 413, `Request body exceeds ${deps.maxBodySize} bytes (admin.maxBodySize)`),
    }),
  );
  if (authenticator.open) {
    // Without credentials the API listens on loopback only, but a web page could still reach it
    // through a DNS name rebound to 127.0.0.1: its requests carry that name as Host.
    app.use("*", async (c, next) => {
      const host = new URL(c.req.url).hostname;
      if (!LOOPBACK_HOSTS.has(host)) {
        return problem(
          c,
          403,
          `Host "${host}" refused: an admin API without credentials answers only to localhost, 127.0.0.1 or [::1]`,
        );
      }
      await next();
    });
  }
  app.use("*", async (c, next) => {
    await next();
    if (!WRITE_METHODS.has(c.req.method) || PUBLIC_PATHS.has(c.req.path)) return;
    const principal = c.get("principal");
    const url = new URL(c.req.url);
    logger.info("admin audit", {
      method: c.req.method,
      path: url.pathname + url.search,
      status: c.res.status,
      principal: principal?.name ?? null,
      role: principal?.role ?? null,
      remote: remoteAddress(c),
    });
  });
  const auth = requireToken(authenticator, PUBLIC_PATHS);
  app.use("/api/v1/*", auth);
  if (!deps.publicMetrics) app.use("/metrics", auth);

  app.route("/", healthRoutes(deps.readiness, deps.bridge));
  const registry = createMetricsRegistry({
    broker,
    eventLoopLag: deps.eventLoopLag,
    idleCollection: deps.idleCollection,
    memoryUsage,
    clientEvents: deps.clientEvents,
    notifier: deps.notifier,
    bans: deps.security.bans,
    bridge: deps.bridge,
  });
  app.route("/metrics", metricsRoutes(registry));
  app.route("/api/v1/login", loginRoutes({ authenticator, throttle, logger }));
  app.route("/api/v1/me", meRoutes(authenticator.open));
  app.route("/api/v1/clients", clientsRoutes({ broker, bans: deps.security.bans }));
  app.route("/api/v1/bans", bansRoutes({ broker, bans: deps.security.bans }));
  app.route("/api/v1/sessions", sessionsRoutes({ broker, acl: deps.security.acl }));
  app.route("/api/v1/subscriptions", subscriptionsRoutes(broker));
  app.route("/api/v1/retained", retainedRoutes(broker));
  app.route("/api/v1/publish", publishRoutes(broker));
  app.route(
    "/api/v1/users",
    usersRoutes({ users: deps.security.users, changes, logger }),
  );
  app.route(
    "/api/v1/acl",
    aclRoutes({
      acl: deps.security.acl,
      rules: deps.security.aclRules,
      changes,
      logger,
    }),
  );
  app.route(
    "/api/v1/nodes",
    nodesRoutes({
      broker,
      listeners: deps.listeners,
      readiness: deps.readiness,
      eventLoopLag: deps.eventLoopLag,
      memoryUsage,
    }),
  );
  app.route("/api/v1/stats", statsRoutes(broker));
  app.route("/api/v1/agents", agentsRoutes(deps.agents));
  app.route("/api/v1/bridges", bridgesRoutes(deps.bridge));
  app.route("/api/v1", smqBridgeRoutes(deps.bridge));
  app.route("/", dashboardRoutes({ dir: deps.dashboardDir, logger }));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "A static token (admin.tokens) or a token from POST /api/v1/login",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "xToken", {
    type: "apiKey",
    in: "header",
    name: "x-token",
  });
  app.doc31("/api/v1/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Perch admin API",
      version: broker.version,
      description:
        "Manage and observe a Perch MQTT broker. Errors are JSON `{status, message, issues?}` with the HTTP status of the problem.",
    },
    security: [{ bearer: [] }, { xToken: [] }],
  });
  return app;
}
