/**
 * The test helper `test/helpers/nats.ts` itself: a lone server starts with JetStream on free ports
 * and cleans up after itself, a file-storage stream survives a stop and a kill followed by a
 * restart on the same port and store, and a three-node cluster holds an R3 stream whose replicas
 * stay current across a member's crash and restart.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { startNatsCluster, startNatsServer } from "../helpers/nats.ts";

/** JetStream API timeout: a guard for a loaded machine, never a measurement. */
const API_TIMEOUT_MS = 30_000;
/** Attempts of a JetStream publish that meets "no responders" (nats.js backs off between them). */
const PUBLISH_RETRIES = 10;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function notFound(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return false;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return true;
    throw err;
  }
}

Deno.test("nats helper: a server starts with JetStream on a free port and close() removes it", async () => {
  const server = await startNatsServer();
  try {
    assert.notEqual(server.port, 4222);
    assert.equal(server.url, `nats://127.0.0.1:${server.port}`);
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc, { timeout: API_TIMEOUT_MS });
    const account = await jsm.getAccountInfo();
    assert.equal(account.streams, 0);
    await nc.close();
  } finally {
    await server.close();
  }
  assert.equal(server.running, false);
  assert.ok(await notFound(server.storeDir), `${server.storeDir} is left behind`);
});

Deno.test("nats helper: a file-storage stream keeps its messages across stop, kill and restart", async () => {
  await using server = await startNatsServer();
  const port = server.port;

  let nc = await connect({ servers: server.url });
  let jsm = await jetstreamManager(nc, { timeout: API_TIMEOUT_MS });
  await jsm.streams.add({ name: "KEEP", subjects: ["keep.>"], storage: StorageType.File });
  const js = jetstream(nc, { timeout: API_TIMEOUT_MS });
  await js.publish("keep.one", encoder.encode("first"));
  await nc.close();
  await server.stop();
  assert.equal(server.running, false);
  await server.restart();

  nc = await connect({ servers: server.url });
  await jetstream(nc, { timeout: API_TIMEOUT_MS }).publish("keep.two", encoder.encode("second"));
  await nc.close();
  // A crash: no shutdown, only what reached the store files.
  await server.kill();
  assert.equal(server.running, false);
  await server.restart();
  assert.equal(server.port, port);

  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc, { timeout: API_TIMEOUT_MS });
  const info = await jsm.streams.info("KEEP");
  assert.equal(info.state.messages, 2);
  const first = await jsm.streams.getMessage("KEEP", { seq: 1 });
  const second = await jsm.streams.getMessage("KEEP", { seq: 2 });
  assert.deepEqual(
    [first?.subject, decoder.decode(first?.data), second?.subject, decoder.decode(second?.data)],
    ["keep.one", "first", "keep.two", "second"],
  );
  await nc.close();
});

Deno.test("nats helper: a 3-node cluster holds an R3 stream and a killed member catches up on restart", async () => {
  await using cluster = await startNatsCluster();
  assert.deepEqual(cluster.servers.map((s) => s.name), ["n1", "n2", "n3"]);
  assert.equal(new Set(cluster.urls).size, 3);

  // Connected to n1 only, so that killing n3 does not move the client.
  const nc = await connect({ servers: cluster.servers[0].url });
  const jsm = await jetstreamManager(nc, { timeout: API_TIMEOUT_MS });
  const js = jetstream(nc, { timeout: API_TIMEOUT_MS });
  const created = await jsm.streams.add({
    name: "R3",
    subjects: ["r3.>"],
    storage: StorageType.File,
    num_replicas: 3,
  });
  const members = [
    created.cluster?.leader,
    ...(created.cluster?.replicas ?? []).map((p) => p.name),
  ];
  assert.deepEqual(members.sort(), ["n1", "n2", "n3"]);
  // Right after the stream is made, n1 may not have heard over its routes of the leader's interest
  // in the subject yet ("no responders"): the client's own retries with backoff cover that.
  await js.publish("r3.a", encoder.encode("before"), { retries: PUBLISH_RETRIES });

  // A member that is neither the stream's leader nor the client's server: with the leader gone,
  // publishes would meet "no responders" until a new leader is elected.
  const victim = cluster.servers.find((s, i) => i > 0 && s.name !== created.cluster?.leader);
  assert.ok(victim);
  await victim.kill();
  // Two of three members are a quorum: the stream still takes writes.
  await js.publish("r3.b", encoder.encode("while a member is down"), { retries: PUBLISH_RETRIES });
  // restart() returns once the member is current with the stream's leader again.
  await victim.restart();

  assert.equal((await jsm.streams.info("R3")).state.messages, 2);
  // The restarted member's own replica, as its monitoring endpoint reports it.
  const jsz = await (await fetch(`${victim.monitorUrl}/jsz?streams=true`)).json();
  const streams = jsz.account_details.flatMap((a: { stream_detail: unknown[] }) => a.stream_detail);
  const local = streams.find((s: { name: string }) => s.name === "R3");
  assert.equal(local?.state.messages, 2, JSON.stringify(jsz));
  await nc.close();
});
