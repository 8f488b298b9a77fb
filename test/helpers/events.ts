/**
 * A broker with the event parts wired as `main.ts` wires them: the notifier of `notify`, the
 * agent registry of `agent` (on the broker's backbone config store), security from `auth` and
 * `acl`, and the admin API (open, on loopback) to ask `/api/v1/agents`.
 *
 * @module
 */

import { createAdminApp } from "../../routes/mod.ts";
import { BanList } from "../../src/auth/bans.ts";
import type { ConfigInput } from "../../src/config/mod.ts";
import { AgentRegistry } from "../../src/events/agents.ts";
import type { Notifier } from "../../src/events/notifier.ts";
import { createNotifier } from "../../src/events/setup.ts";
import { createSystemClock } from "../../src/util/clock.ts";
import { nullLogger } from "../../src/util/logger.ts";
import { type SecureTestBroker, startSecureBroker } from "./secure_broker.ts";

export interface EventsBroker {
  server: SecureTestBroker;
  notifier: Notifier;
  agents: AgentRegistry | undefined;
  /** `GET`/`DELETE` on the admin API, answered as JSON (or null for an empty body). */
  // deno-lint-ignore no-explicit-any -- JSON replies, read field by field in assertions
  api(path: string, method?: string): Promise<{ status: number; body: any }>;
  /** `/metrics` as Prometheus text. */
  metrics(): Promise<string>;
  close(): Promise<void>;
}

export async function startEventsBroker(config: ConfigInput): Promise<EventsBroker> {
  const server = await startSecureBroker({ config });
  const clock = createSystemClock();
  const notifier = await createNotifier(server.config, { clock, logger: nullLogger });
  const broker = server.broker;
  let agents: AgentRegistry | undefined;
  if (server.config.agent.enabled) {
    agents = new AgentRegistry({
      store: broker.backbone.config,
      notifier,
      nodeId: server.config.node.id,
      clock,
      logger: nullLogger,
      maxAgents: server.config.agent.maxAgents,
      isSubscribed: (clientId, filter) =>
        broker.sessions.attached(clientId)?.subscriptions.has(filter) ?? false,
    });
    await agents.start();
  }
  broker.onEvent((event) => {
    notifier.event(event);
    agents?.event(event);
  });
  const app = createAdminApp({
    broker,
    auth: { tokens: [], users: [], jwtSecret: "x".repeat(32), jwtTtl: 60_000, clock },
    security: { acl: server.security.acl, bans: new BanList({ clock, maxBans: 10 }) },
    readiness: () => ({ listeners: true, backbone: true }),
    listeners: () => [],
    eventLoopLag: () => ({ mean: 0, max: 0, p99: 0, latest: 0 }),
    maxBodySize: 1 << 20,
    agents,
    notifier,
    logger: nullLogger,
  });
  return {
    server,
    notifier,
    agents,
    async api(path, method = "GET") {
      const response = await app.request(`http://localhost${path}`, { method });
      const text = await response.text();
      return { status: response.status, body: text === "" ? null : JSON.parse(text) };
    },
    async metrics() {
      return await (await app.request("http://localhost/metrics")).text();
    },
    async close() {
      await server.close();
      await agents?.stop();
      await notifier.close(0);
    },
  };
}
