/**
 * The admin API over a real in-process broker with its security parts (a password file and an
 * ACL rules file in a temp dir), reachable through `app.request()` and, on request, over real HTTP
 * on a free port. With `bridge.kafka.brokers` in the config it has the Kafka bridge, and with
 * `agent.enabled` the agent registry, on the broker's backbone as `main.ts` wires them.
 *
 * @module
 */

import type { ConfigInput } from "../../src/config/mod.ts";
import { deriveScramCredentials } from "../../src/auth/credentials.ts";
import { DenoHttpServer } from "../../src/transport/deno_http.ts";
import { EventLoopLagMonitor } from "../../src/util/event_loop_lag.ts";
import { createLogger, type LogEntryLevel } from "../../src/util/logger.ts";
import { BanList } from "../../src/auth/bans.ts";
import { ClientEvents } from "../../src/ops/client_events.ts";
import { KafkaBridge } from "../../src/bridge/kafka_bridge.ts";
import type { MessageSink } from "../../src/domain/sink.ts";
import { AgentRegistry } from "../../src/events/agents.ts";
import { createNotifier } from "../../src/events/setup.ts";
import type { Clock } from "../../src/util/clock.ts";
import { type ApiUser, createAdminApp } from "../../routes/mod.ts";
import type { ApiToken } from "../../routes/auth.ts";
import { type SecureTestBroker, startSecureBroker } from "./secure_broker.ts";

export const ADMIN_TOKEN = "admin-token-0123456789abcdef";
export const VIEWER_TOKEN = "viewer-token-0123456789abcdef";
export const JWT_SECRET = "jwt-secret-for-tests-0123456789abcdef";
/** Password of the API users `ops` (admin) and `watcher` (viewer). */
export const API_PASSWORD = "correct horse battery staple";

export interface TestAdminOptions {
  /** Broker config, merged over the security settings this helper writes. */
  config?: ConfigInput;
  /** Static tokens; default one admin and one viewer token. */
  tokens?: ApiToken[];
  /** Add the API users `ops` and `watcher` (PBKDF2 with few iterations: tests only). */
  users?: boolean;
  /** Serve the app over HTTP on a free port (with MQTT over WebSocket at /mqtt). */
  http?: boolean;
  maxBodySize?: number;
  publicMetrics?: boolean;
  /** The broker's and the API's clock (the system clock by default). */
  clock?: Clock;
  /** Failed logins allowed and the lock-out after them (ms); default 5 and 5 minutes. */
  login?: { maxFailures: number; lockout: number };
  /** Most bans held; default 100. */
  maxBans?: number;
  /** The dashboard's files; the repository's `dashboard/` by default. */
  dashboardDir?: URL;
}

export interface TestAdmin {
  server: SecureTestBroker;
  app: ReturnType<typeof createAdminApp>;
  /** Temp dir holding `users.txt` and `acl.yaml`. */
  dir: string;
  /** Base URL of the HTTP server (`http` option). */
  url: string | undefined;
  /** Port of the HTTP server (`http` option). */
  httpPort: number | undefined;
  bans: BanList;
  /** The Kafka bridge, when the config sets `bridge.kafka.brokers`. */
  bridge: KafkaBridge | undefined;
  /** The agent registry, when the config sets `agent.enabled`. */
  agents: AgentRegistry | undefined;
  /** Lines the admin API logged (audit lines, logins). */
  apiLogs: { level: LogEntryLevel; line: string }[];
  /** `app.request()` with the admin token unless `token` says otherwise (null: none). */
  request(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  /** The same over HTTP. */
  fetch(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

function withToken(init: RequestInit & { token?: string | null } = {}): RequestInit {
  const { token, ...rest } = init;
  const headers = new Headers(rest.headers);
  const chosen = token === undefined ? ADMIN_TOKEN : token;
  if (chosen !== null) headers.set("x-token", chosen);
  if (rest.body !== undefined && !headers.has("content-type")) {
    headers.set("content-type", "application/json");
  }
  return { ...rest, headers };
}

export async function startAdmin(options: TestAdminOptions = {}): Promise<TestAdmin> {
  const dir = await Deno.makeTempDir({ prefix: "perch_admin_test_" });
  await Deno.writeTextFile(`${dir}/users.txt`, "");
  await Deno.writeTextFile(`${dir}/acl.yaml`, "[]\n");
  const bans = new BanList({
    clock: options.clock ?? { now: () => Date.now() },
    maxBans: options.maxBans ?? 100,
  });
  const events = new ClientEvents(createLogger({ level: "silent" }));
  // main.ts makes the bridge before the broker, on the same backbone; here the broker makes its
  // backbone, so the broker gets a sink that hands messages to the bridge made right after it.
  let bridge: KafkaBridge | undefined;
  const toBridge: MessageSink = {
    offer: (message, publisher) => bridge?.offer(message, publisher),
  };
  const server = await startSecureBroker({
    clock: options.clock,
    bans,
    hooks: events.hooks(),
    sinks: [toBridge],
    config: {
      ...options.config,
      auth: {
        chain: ["passwordFile"],
        passwordFile: { path: `${dir}/users.txt`, watch: false },
        ...options.config?.auth,
      },
      acl: { file: `${dir}/acl.yaml`, watch: false, ...options.config?.acl },
    },
  });
  const users: ApiUser[] = [];
  if (options.users) {
    // 4096 iterations: the minimum the verifier format allows, to keep tests fast.
    const credentials = await deriveScramCredentials(API_PASSWORD, { iterations: 4096 });
    users.push({ username: "ops", role: "admin", credentials });
    users.push({ username: "watcher", role: "viewer", credentials });
  }
  const config = server.config;
  const quiet = createLogger({ level: "silent" });
  if (config.bridge.kafka.brokers.length > 0) {
    bridge = new KafkaBridge({
      settings: config.bridge.kafka,
      backbone: server.backbone,
      nodeId: config.node.id,
      clock: server.broker.clock,
      logger: quiet,
    });
    await bridge.start();
  }
  const notifier = await createNotifier(config, { clock: server.broker.clock, logger: quiet });
  let agents: AgentRegistry | undefined;
  if (config.agent.enabled) {
    const broker = server.broker;
    agents = new AgentRegistry({
      store: broker.backbone.config,
      notifier,
      nodeId: config.node.id,
      clock: broker.clock,
      logger: quiet,
      maxAgents: config.agent.maxAgents,
      isSubscribed: (clientId, filter) =>
        broker.sessions.attached(clientId)?.subscriptions.has(filter) ?? false,
    });
    await agents.start();
    const registry = agents;
    broker.onEvent((event) => registry.event(event));
  }
  const lag = new EventLoopLagMonitor(server.broker.clock);
  const apiLogs: { level: LogEntryLevel; line: string }[] = [];
  lag.start();
  const app = createAdminApp({
    broker: server.broker,
    auth: {
      tokens: options.tokens ?? [
        { token: ADMIN_TOKEN, role: "admin", name: "ci-admin" },
        { token: VIEWER_TOKEN, role: "viewer", name: "ci-viewer" },
      ],
      users,
      jwtSecret: JWT_SECRET,
      jwtTtl: 60_000,
      clock: server.broker.clock,
    },
    security: {
      acl: server.security.acl,
      users: server.security.users,
      aclRules: server.security.aclRules,
      bans,
    },
    clientEvents: events,
    login: options.login,
    readiness: () => ({ listeners: true, backbone: true }),
    listeners: () => [{ transport: "tcp", address: "127.0.0.1", port: server.port }],
    eventLoopLag: () => lag.read(),
    maxBodySize: options.maxBodySize ?? 64 * 1024,
    publicMetrics: options.publicMetrics,
    dashboardDir: options.dashboardDir,
    bridge,
    agents,
    notifier,
    logger: createLogger({
      level: "debug",
      format: "json",
      write: (line, level) => apiLogs.push({ level, line }),
    }),
  });
  let http: DenoHttpServer | undefined;
  if (options.http) {
    http = DenoHttpServer.serve(
      {
        hostname: "127.0.0.1",
        port: 0,
        webSocket: { options: { path: "/mqtt" }, accept: server.broker.accept },
      },
      (request, peer) => app.fetch(request, { remoteAddress: peer.address }),
    );
  }
  const url = http && `http://127.0.0.1:${http.port}`;
  return {
    server,
    app,
    dir,
    url,
    httpPort: http?.port,
    bans,
    bridge,
    agents,
    apiLogs,
    request: (path, init) => Promise.resolve(app.request(path, withToken(init))),
    fetch: (path, init) => {
      if (!url) throw new Error("startAdmin({ http: true }) serves over HTTP");
      return fetch(`${url}${path}`, withToken(init));
    },
    async close() {
      lag.stop();
      await server.close();
      await bridge?.close();
      await agents?.stop();
      await notifier.close(0);
      await http?.stopWebSockets();
      await http?.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Reads a JSON reply body. */
export async function body<T = Record<string, unknown>>(response: Response): Promise<T> {
  return await response.json() as T;
}
