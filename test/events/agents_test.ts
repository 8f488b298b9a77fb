/**
 * Agent mode in one process: a real broker with the notifier and the agent registry wired as
 * main.ts wires them, a real webhook receiver, agents connecting with smq's legacy trailer or MQTT
 * 5 user properties, and `/api/v1/agents`. The last test runs smq's job pattern.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import type { ConfigInput } from "../../src/config/mod.ts";
import { type EventsBroker, startEventsBroker } from "../helpers/events.ts";
import { legacyConnect, trailerOf } from "../helpers/legacy_connect.ts";
import { WebhookReceiver } from "../helpers/receivers.ts";
import { TestClient } from "../helpers/test_client.ts";

const FACTS = {
  host_name: "web-1",
  intranet_ip: "10.0.0.5",
  public_ip: "203.0.113.9",
  platform: "ubuntu",
  arch: "amd64",
  os: "linux",
  agent_version: "1.4.2",
};

async function withAgents(
  config: ConfigInput,
  run: (broker: EventsBroker, receiver: WebhookReceiver) => Promise<void>,
): Promise<void> {
  const receiver = new WebhookReceiver();
  const broker = await startEventsBroker({
    agent: { enabled: true, legacyConnectInfo: true },
    notify: { webhook: { url: receiver.url } },
    ...config,
  });
  try {
    await run(broker, receiver);
  } finally {
    await broker.close();
    await receiver.close();
  }
}

/** An agent as smq's library connects: 3.1.1 with the legacy trailer. */
async function legacyAgent(port: number, clientId: string, facts: object = FACTS) {
  const client = await TestClient.open(port);
  await client.sendRaw(legacyConnect(clientId, trailerOf(JSON.stringify(facts))));
  const connack = await client.expect(PacketType.CONNACK);
  assert.equal(connack.reasonCode, 0);
  return client;
}

Deno.test("agents: online on subscribing to agents/{own id}, offline on unsubscribe and on disconnect", async () => {
  await withAgents({}, async (broker, receiver) => {
    const port = broker.server.port;
    const agent = await legacyAgent(port, "a1");
    await agent.subscribe("agents/a1", 1);
    await receiver.until((r) => r.some((x) => x.name === "OnAgentConnect"));
    const online = receiver.bodies("OnAgentConnect")[0];
    assert.equal(online.id, "a1");
    assert.equal(online.status, 1);
    assert.equal(online.host_name, "web-1");
    assert.equal(online.platform, "ubuntu");
    assert.equal(online.node_id, broker.server.config.node.id);
    await broker.server.until(() => broker.agents!.get("a1")?.state === "online");
    const listed = await broker.api("/api/v1/agents");
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.data.map((a: { clientId: string }) => a.clientId), ["a1"]);
    const one = (await broker.api("/api/v1/agents/a1")).body;
    assert.equal(one.state, "online");
    assert.equal(one.hostName, "web-1");
    assert.equal(one.agentVersion, "1.4.2");
    assert.equal(one.node, broker.server.config.node.id);
    assert.equal(one.reason, null);
    assert.ok(Date.parse(one.connectedAt) > 0);

    // Subscribing again changes nothing; unsubscribing goes offline.
    await agent.subscribe("agents/a1", 1);
    await agent.unsubscribe(["agents/a1"]);
    await receiver.until((r) => r.some((x) => x.name === "OnAgentDisconnected"));
    const offline = receiver.bodies("OnAgentDisconnected")[0];
    assert.equal(offline.status, 2);
    assert.equal(offline.reason, "unsubscribed");
    assert.equal(offline.os, "linux");
    await broker.server.until(() => broker.agents!.get("a1")?.state === "offline");

    // Online again, then the connection ends: offline with the disconnect's reason.
    await agent.subscribe("agents/a1", 1);
    await receiver.until((r) => r.filter((x) => x.name === "OnAgentConnect").length === 2);
    await agent.destroy();
    await receiver.until((r) => r.filter((x) => x.name === "OnAgentDisconnected").length === 2);
    assert.equal(receiver.bodies("OnAgentDisconnected")[1].reason, "connection_lost");
    assert.equal(receiver.bodies("OnAgentConnect").length, 2);
    await broker.server.until(() => broker.agents!.get("a1")?.reason === "connection_lost");
    const gone = (await broker.api("/api/v1/agents?state=offline")).body;
    assert.deepEqual(gone.data.map((a: { clientId: string }) => a.clientId), ["a1"]);
    assert.equal((await broker.api("/api/v1/agents?state=online")).body.data.length, 0);
  });
});

Deno.test("agents: facts from MQTT 5 user properties; filters by platform; forget an offline one", async () => {
  await withAgents({}, async (broker) => {
    const port = broker.server.port;
    const clients: TestClient[] = [];
    for (const [id, platform] of [["u1", "ubuntu"], ["w1", "windows"], ["u2", "ubuntu"]]) {
      const { client } = await TestClient.connect(port, {
        clientId: id,
        version: 5,
        properties: { userProperties: [["platform", platform], ["host_name", `${id}.local`]] },
      });
      await client.subscribe(`agents/${id}`, 1);
      clients.push(client);
    }
    await broker.server.until(() => broker.agents!.list().length === 3);
    const ubuntu = (await broker.api("/api/v1/agents?platform=ubuntu")).body;
    assert.deepEqual(ubuntu.data.map((a: { clientId: string }) => a.clientId), ["u1", "u2"]);
    assert.equal(ubuntu.data[0].hostName, "u1.local");
    assert.equal((await broker.api("/api/v1/agents?state=asleep")).status, 400);
    assert.equal((await broker.api("/api/v1/agents/nobody")).status, 404);
    assert.equal((await broker.api("/api/v1/agents/w1", "DELETE")).status, 409);
    await clients[1].disconnect();
    await broker.server.until(() => broker.agents!.get("w1")?.state === "offline");
    assert.equal((await broker.api("/api/v1/agents/w1", "DELETE")).status, 204);
    await broker.server.until(() => broker.agents!.get("w1") === undefined);
    assert.equal((await broker.api("/api/v1/agents")).body.meta.count, 2);
    for (const client of clients) await client.destroy();
  });
});

Deno.test("agents: another client's agents/ topic is as the ACL says, and changes no agent's state", async () => {
  await withAgents({
    acl: {
      rules: [
        { permission: "allow", action: "subscribe", topic: "agents/%c" },
        { permission: "allow", action: "subscribe", topic: "agents/+", clients: ["operator"] },
        { permission: "deny", action: "subscribe", topic: "agents/#" },
      ],
    },
  }, async (broker, receiver) => {
    const port = broker.server.port;
    const { client: snoop } = await TestClient.connect(port, { clientId: "snoop", version: 5 });
    const denied = await snoop.subscribe("agents/victim", 1);
    assert.deepEqual(denied.reasonCodes, [ReasonCode.NotAuthorized]);
    const { client: operator } = await TestClient.connect(port, { clientId: "operator" });
    const allowed = await operator.subscribe("agents/victim", 1);
    assert.deepEqual(allowed.reasonCodes, [1]);
    // The victim is not connected: nothing made it an agent, nothing made the others agents.
    const victim = await legacyAgent(port, "victim");
    await victim.subscribe("agents/victim", 1);
    await receiver.until((r) => r.some((x) => x.name === "OnAgentConnect"));
    await operator.unsubscribe(["agents/victim"]);
    await operator.disconnect();
    await receiver.until((r) => r.filter((x) => x.name === "OnClientDisconnected").length === 1);
    assert.deepEqual(receiver.bodies("OnAgentConnect").map((b) => b.id), ["victim"]);
    assert.equal(receiver.bodies("OnAgentDisconnected").length, 0);
    assert.deepEqual(broker.agents!.list().map((a) => [a.clientId, a.state]), [[
      "victim",
      "online",
    ]]);
    await snoop.destroy();
    await victim.destroy();
  });
});

Deno.test("agents: a resumed session that holds agents/{id} is online at CONNECT", async () => {
  await withAgents({}, async (broker, receiver) => {
    const port = broker.server.port;
    const { client } = await TestClient.connect(port, { clientId: "p1", cleanStart: false });
    await client.subscribe("agents/p1", 1);
    await client.disconnect();
    await receiver.until((r) => r.some((x) => x.name === "OnAgentDisconnected"));
    await broker.server.offline("p1");
    const { client: again, connack } = await TestClient.connect(port, {
      clientId: "p1",
      cleanStart: false,
    });
    assert.equal(connack.sessionPresent, true);
    await receiver.until((r) => r.filter((x) => x.name === "OnAgentConnect").length === 2);
    await broker.server.until(() => broker.agents!.get("p1")?.state === "online");
    await again.destroy();
  });
});

Deno.test("agents: agent.maxAgents bounds the records; the longest offline one makes room", async () => {
  await withAgents({ agent: { enabled: true, maxAgents: 2 } }, async (broker) => {
    const port = broker.server.port;
    const agent = async (id: string) => {
      const { client } = await TestClient.connect(port, { clientId: id });
      await client.subscribe(`agents/${id}`, 0);
      await broker.server.until(() => broker.agents!.get(id)?.state === "online");
      return client;
    };
    const first = await agent("m1");
    const second = await agent("m2");
    // Both online: a third is not recorded.
    const { client: third } = await TestClient.connect(port, { clientId: "m3" });
    await third.subscribe("agents/m3", 0);
    await broker.server.until(() => broker.agents!.notRecorded === 1);
    assert.equal(broker.agents!.get("m3"), undefined);
    await first.disconnect();
    await broker.server.until(() => broker.agents!.get("m1")?.state === "offline");
    const fourth = await agent("m4");
    assert.deepEqual(broker.agents!.list().map((a) => a.clientId), ["m2", "m4"]);
    for (const client of [second, third, fourth]) await client.destroy();
  });
});

Deno.test("agents: without agent mode, /api/v1/agents answers 404 and no agent events go out", async () => {
  const receiver = new WebhookReceiver();
  const broker = await startEventsBroker({ notify: { webhook: { url: receiver.url } } });
  try {
    const { client } = await TestClient.connect(broker.server.port, { clientId: "x1" });
    await client.subscribe("agents/x1", 0);
    await client.disconnect();
    await receiver.until((r) => r.some((x) => x.name === "OnClientDisconnected"));
    assert.equal(receiver.bodies("OnAgentConnect").length, 0);
    const reply = await broker.api("/api/v1/agents");
    assert.equal(reply.status, 404);
    assert.match(reply.body.message, /agent\.enabled/);
    // The sink's counters in /metrics.
    await broker.server.until(() => broker.notifier.sinks[0].sent === 4);
    const metrics = await broker.metrics();
    for (
      const line of [
        'perch_notify_sent_total{sink="webhook"',
        'perch_notify_failed_total{sink="webhook"',
        'perch_notify_dropped_total{sink="webhook"',
        'perch_notify_queue_depth{sink="webhook"',
      ]
    ) assert.ok(metrics.includes(line), `${line} missing`);
    assert.match(metrics, /perch_notify_sent_total\{sink="webhook",node="[^"]+"\} 4/);
  } finally {
    await broker.close();
    await receiver.close();
  }
});

Deno.test("smq's job pattern: a job on agents/{id} reaches the agent, its result on $queue/results reaches the control plane, which sees it come and go", async () => {
  // `$` topics are only for who a rule lets in (docs/security.md).
  const acl: ConfigInput["acl"] = {
    rules: [{ permission: "allow", action: "both", topic: "$queue/results" }],
  };
  await withAgents({ acl }, async (broker, receiver) => {
    const port = broker.server.port;
    // The control plane: an MQTT client taking the results, and the webhook receiver.
    const { client: control } = await TestClient.connect(port, { clientId: "control", version: 5 });
    // Without the Kafka bridge, results reach the control plane over MQTT: `$queue/results` as a
    // topic name, taken by a shared subscription whose filter is that topic.
    assert.deepEqual((await control.subscribe("$share/control/$queue/results", 1)).reasonCodes, [
      1,
    ]);
    const agent = await legacyAgent(port, "agent-7");
    await agent.subscribe("agents/agent-7", 1);
    await receiver.until((r) =>
      r.some((x) => x.name === "OnAgentConnect" && x.body.id === "agent-7")
    );

    await control.publish("agents/agent-7", JSON.stringify({ job: 42, cmd: "uptime" }), { qos: 1 });
    const job = await agent.expect(PacketType.PUBLISH);
    await agent.ack(job);
    assert.equal(job.topic, "agents/agent-7");
    assert.deepEqual(JSON.parse(new TextDecoder().decode(job.payload)), { job: 42, cmd: "uptime" });

    const puback = await agent.publish(
      "$queue/results",
      JSON.stringify({ job: 42, out: "up 3d" }),
      {
        qos: 1,
      },
    );
    assert.equal(puback?.type, PacketType.PUBACK);
    const result = await control.expect(PacketType.PUBLISH);
    await control.ack(result);
    assert.equal(result.topic, "$queue/results");
    assert.deepEqual(JSON.parse(new TextDecoder().decode(result.payload)), {
      job: 42,
      out: "up 3d",
    });

    await agent.disconnect();
    await receiver.until((r) =>
      r.some((x) => x.name === "OnAgentDisconnected" && x.body.id === "agent-7")
    );
    const names = receiver.received.filter((r) =>
      r.body.id === "agent-7" || r.body.client_id === "agent-7"
    )
      .map((r) => r.name);
    assert.deepEqual(names.slice(0, 3), ["OnClientConnect", "OnSubscribe", "OnAgentConnect"]);
    assert.ok(names.indexOf("OnAgentDisconnected") > names.indexOf("OnAgentConnect"));
    await control.destroy();
  });
});
