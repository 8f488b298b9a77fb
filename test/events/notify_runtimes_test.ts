/**
 * Event notifications and agent mode from the broker as a process on Deno and on Bun: one broker
 * with the webhook, gRPC and NATS sinks at once (each goes through a different part of the
 * runtime: fetch, `node:http2` under `@grpc/grpc-js`, the NATS client's `node:net`), and real
 * receivers that must each get the same events; an agent listed online by the admin API. What the
 * sinks and the agent registry do in detail is in `notify_test.ts` and `agents_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { RUNTIMES } from "../helpers/broker_process.ts";
import { type NatsServer, startNatsServer } from "../helpers/nats.ts";
import { GrpcReceiver, WebhookReceiver } from "../helpers/receivers.ts";
import { type Fixture, targetTest } from "../helpers/targets.ts";
import { TestClient } from "../helpers/test_client.ts";

const EVENTS = ["OnClientConnect", "OnSubscribe", "OnUnSubscribe", "OnClientDisconnected"];

interface Receivers extends Fixture {
  webhook: WebhookReceiver;
  grpc: GrpcReceiver;
  nats: NatsServer;
  natsClient: NatsConnection;
  /** Subjects published on NATS, in order. */
  natsSubjects: string[];
  natsDone: Promise<void>;
}

async function receivers(): Promise<Receivers> {
  const webhook = new WebhookReceiver();
  const grpc = await GrpcReceiver.start();
  const nats = await startNatsServer();
  const natsClient = await connect({ servers: nats.url });
  const natsSubjects: string[] = [];
  const { promise: natsDone, resolve } = Promise.withResolvers<void>();
  natsClient.subscribe("fleet.events.>", {
    callback: (_error, message) => {
      natsSubjects.push(message.subject);
      if (natsSubjects.length === EVENTS.length) resolve();
    },
  });
  await natsClient.flush();
  return {
    webhook,
    grpc,
    nats,
    natsClient,
    natsSubjects,
    natsDone,
    config: {
      notify: {
        webhook: { url: webhook.url },
        grpc: { server: `127.0.0.1:${grpc.port}` },
        nats: { enabled: true, servers: [nats.url], prefix: "fleet" },
      },
    },
    async remove() {
      await natsClient.close();
      await nats.close();
      await grpc.close();
      await webhook.close();
    },
  };
}

targetTest(
  "the webhook, gRPC and NATS sinks each get a client's connect, subscribe, unsubscribe and disconnect",
  { fixture: receivers, targets: RUNTIMES },
  async (server, { webhook, grpc, natsSubjects, natsDone }) => {
    const { client } = await TestClient.connect(server.port, { clientId: "c1", version: 5 });
    await client.subscribe("jobs/#", 1);
    await client.unsubscribe(["jobs/#"]);
    await client.disconnect();
    await webhook.until((received) => received.length === EVENTS.length);
    await grpc.until((received) => received.length === EVENTS.length);
    await natsDone;
    assert.deepEqual(webhook.received.map((r) => r.name), EVENTS);
    assert.deepEqual(grpc.received.map((r) => r.name), EVENTS);
    assert.deepEqual(natsSubjects, EVENTS.map((name) => `fleet.events.${name}`));
    assert.equal(webhook.bodies("OnClientConnect")[0].id, "c1");
    assert.equal(grpc.bodies("OnClientConnect")[0].id, "c1");
  },
);

targetTest(
  "agent mode: an agent subscribed to agents/{own id} is online, with its facts, and its webhook says so",
  {
    fixture: () => {
      const webhook = new WebhookReceiver();
      return Promise.resolve({
        webhook,
        config: { agent: { enabled: true }, notify: { webhook: { url: webhook.url } } },
        remove: () => webhook.close(),
      });
    },
    targets: RUNTIMES,
  },
  async (server, { webhook }) => {
    const { client: agent } = await TestClient.connect(server.port, {
      clientId: "a1",
      version: 5,
      properties: { userProperties: [["host_name", "web-1"], ["platform", "ubuntu"]] },
    });
    await agent.subscribe("agents/a1", 1);
    await webhook.until((received) => received.some((r) => r.name === "OnAgentConnect"));
    const online = webhook.bodies("OnAgentConnect")[0];
    assert.deepEqual([online.id, online.host_name, online.platform], ["a1", "web-1", "ubuntu"]);
    const listed = await (await fetch(`http://127.0.0.1:${server.ports.admin}/api/v1/agents/a1`))
      .json();
    assert.deepEqual([listed.state, listed.hostName], ["online", "web-1"]);
    await agent.disconnect();
    await webhook.until((received) => received.some((r) => r.name === "OnAgentDisconnected"));
  },
);
