/**
 * Event notifications and agent mode across a cluster: two front-ends (`deno run src/main.ts`
 * processes on the `nats` backbone of one real nats-server), each with the webhook sink pointed
 * at one receiver in this process. Each event is sent once, by the node holding the connection;
 * when a node dies, the node that takes its sessions sends the disconnects of its clients and
 * agents; every node lists the agents of the whole cluster.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type FrontEnd, startFrontEnd } from "../../scripts/cluster.ts";
import { PacketType } from "../../src/codec/mod.ts";
import { startNatsServer } from "../helpers/nats.ts";
import { legacyConnect, trailerOf } from "../helpers/legacy_connect.ts";
import { WebhookReceiver } from "../helpers/receivers.ts";
import { TestClient } from "../helpers/test_client.ts";

/** A lost node is noticed when its lease (10 s) runs out: a guard, never a delay. */
const LOST_NODE_WAIT_MS = 60_000;

async function agents(frontEnd: FrontEnd, query = ""): Promise<Record<string, unknown>[]> {
  const response = await fetch(`http://127.0.0.1:${frontEnd.adminPort}/api/v1/agents${query}`);
  assert.equal(response.status, 200);
  return (await response.json()).data;
}

Deno.test("cluster: each event is sent once, by the node holding the connection; a lost node's clients and agents are reported by a survivor", async () => {
  await using nats = await startNatsServer();
  const receiver = new WebhookReceiver();
  const extra = {
    notify: { webhook: { url: receiver.url, retryDelay: "100ms" } },
    agent: { enabled: true, legacyConnectInfo: true },
  };
  const a = await startFrontEnd({ nodeId: "ev-a", natsUrl: nats.url, prefix: "ev", extra });
  let b: FrontEnd | undefined;
  const clients: TestClient[] = [];
  try {
    b = await startFrontEnd({ nodeId: "ev-b", natsUrl: nats.url, prefix: "ev", extra });
    const agent = await TestClient.open(a.port);
    clients.push(agent);
    await agent.sendRaw(
      legacyConnect("fleet-1", trailerOf(JSON.stringify({ host_name: "db-3", os: "linux" }))),
    );
    assert.equal((await agent.expect(PacketType.CONNACK)).reasonCode, 0);
    await agent.subscribe("agents/fleet-1", 1);
    await receiver.until((r) => r.some((x) => x.name === "OnAgentConnect"));

    // A client on each node afterwards: once both are reported, any duplicate of the agent's
    // events (which each node's queue would have sent before its own later event) is in too.
    for (const [frontEnd, id] of [[a, "later-a"], [b, "later-b"]] as const) {
      const { client } = await TestClient.connect(frontEnd.port, { clientId: id });
      clients.push(client);
    }
    await receiver.until((r) =>
      ["later-a", "later-b"].every((id) =>
        r.some((x) => x.name === "OnClientConnect" && x.body.id === id)
      )
    );
    const of = (name: string, id: string) =>
      receiver.bodies(name).filter((body) => body.id === id || body.client_id === id);
    assert.equal(of("OnClientConnect", "fleet-1").length, 1);
    assert.equal(of("OnSubscribe", "fleet-1").length, 1);
    assert.equal(of("OnAgentConnect", "fleet-1").length, 1);
    assert.equal(of("OnAgentConnect", "fleet-1")[0].node_id, "ev-a");
    assert.equal(of("OnAgentConnect", "fleet-1")[0].host_name, "db-3");
    assert.equal(of("OnClientConnect", "later-b")[0].node_id, "ev-b");

    // Node b lists the agent held by node a.
    const listed = await agents(b);
    assert.deepEqual(
      listed.map((x) => [x.clientId, x.state, x.node, x.hostName]),
      [["fleet-1", "online", "ev-a", "db-3"]],
    );

    // Node a dies: b takes its sessions and tells of the agent and of a's clients, once.
    await a.kill();
    await receiver.until(
      (r) =>
        r.some((x) => x.name === "OnAgentDisconnected" && x.body.id === "fleet-1") &&
        r.some((x) => x.name === "OnClientDisconnected" && x.body.id === "later-a"),
      LOST_NODE_WAIT_MS,
    );
    const gone = of("OnClientDisconnected", "fleet-1");
    assert.equal(gone.length, 1);
    assert.equal(gone[0].node_id, "ev-a");
    assert.equal(gone[0].reason, "node_lost");
    const agentGone = of("OnAgentDisconnected", "fleet-1");
    assert.equal(agentGone.length, 1);
    assert.equal(agentGone[0].reason, "node_lost");
    assert.equal(agentGone[0].host_name, "db-3");
    const offline = await agents(b, "?state=offline");
    assert.deepEqual(offline.map((x) => [x.clientId, x.reason]), [["fleet-1", "node_lost"]]);
  } finally {
    for (const client of clients) await client.destroy();
    await a.kill();
    await b?.stop();
    await receiver.close();
  }
});
