/**
 * The admin API across front-ends: three `deno run src/main.ts` processes on one real nats-server,
 * each with its own password file and ACL rules file. Users and ACL rules changed through one
 * front-end's API are enforced by the others (they live in the backbone's config store); nodes
 * and clients are listed, got and kicked through any front-end, and a front-end that crashed is
 * named as not answering.
 *
 * A front-end sees another's change through its watch of the store, a moment later: tests wait
 * for it by asking that front-end's API until it shows the change (a guard bounds the wait).
 *
 * @module
 */

import assert from "node:assert/strict";
import mqtt, { type IClientOptions } from "mqtt";
import { type FrontEnd, startFrontEnd } from "../../scripts/cluster.ts";
import { type NatsServer, startNatsServer } from "../helpers/nats.ts";
import { connackOf, endAll, WAIT_MS } from "../helpers/mqttjs.ts";

/** Longest wait for a change to reach another front-end (a failure guard, never a delay). */
const PROPAGATION_GUARD_MS = 10_000;
/** Pause between two looks at another front-end's API. */
const POLL_MS = 20;

interface Cluster {
  nats: NatsServer;
  frontEnds: FrontEnd[];
  /** Each front-end's temporary folder with `users.txt` and `acl.yaml`. */
  dirs: string[];
}

let started: Promise<Cluster> | undefined;
const cluster = () => started ??= startCluster();

async function startCluster(): Promise<Cluster> {
  const nats = await startNatsServer();
  const frontEnds: FrontEnd[] = [];
  const dirs: string[] = [];
  try {
    for (const nodeId of ["a", "b", "c"]) {
      const dir = await Deno.makeTempDir({ prefix: `perch-admin-${nodeId}-` });
      dirs.push(dir);
      await Deno.writeTextFile(`${dir}/users.txt`, "");
      await Deno.writeTextFile(`${dir}/acl.yaml`, "[]\n");
      frontEnds.push(
        await startFrontEnd({
          nodeId,
          natsUrl: nats.url,
          prefix: "admin",
          extra: {
            auth: {
              anonymous: "never",
              chain: ["passwordFile"],
              passwordFile: { path: `${dir}/users.txt` },
            },
            acl: { file: `${dir}/acl.yaml` },
          },
        }),
      );
    }
  } catch (error) {
    await Promise.all(frontEnds.map((frontEnd) => frontEnd.stop()));
    await nats.close();
    throw error;
  }
  return { nats, frontEnds, dirs };
}

/** Calls a front-end's admin API (open on loopback: no credentials configured). */
async function api(
  frontEnd: FrontEnd,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
  const response = await fetch(`http://127.0.0.1:${frontEnd.adminPort}/api/v1${path}`, {
    method: init.method ?? "GET",
    headers: { "content-type": "application/json" },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
}

/** Resolves once `check` holds, asking again every few milliseconds (bounded by a guard). */
async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + PROPAGATION_GUARD_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not seen in ${PROPAGATION_GUARD_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function client(frontEnd: FrontEnd, options: IClientOptions = {}) {
  const c = mqtt.connect(`mqtt://127.0.0.1:${frontEnd.port}`, {
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    protocolVersion: 5,
    ...options,
  });
  try {
    return { client: c, connack: await connackOf(c) };
  } catch (error) {
    await c.endAsync(true);
    throw error;
  }
}

/** The CONNACK reason code a user name and password get on a front-end. */
async function login(
  frontEnd: FrontEnd,
  username: string,
  password: string,
  clientId = `login-${username}`,
): Promise<number> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${frontEnd.port}`, {
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    protocolVersion: 5,
    clientId,
    username,
    password,
  });
  try {
    return (await connackOf(c)).reasonCode ?? 0;
  } catch (error) {
    // mqtt.js reports a refused CONNACK as an error carrying its code.
    const code = (error as { code?: number }).code;
    if (typeof code === "number") return code;
    throw error;
  } finally {
    await c.endAsync(true);
  }
}

Deno.test("cluster admin: a user and an ACL rule added through one front-end are enforced by another", async () => {
  const { frontEnds: [a, b], dirs } = await cluster();
  const added = await api(a, "/users", {
    method: "POST",
    body: { username: "dev", password: "pw" },
  });
  assert.equal(added.status, 201);
  await eventually("the user on b", async () => (await api(b, "/users/dev")).status === 200);
  assert.equal(await login(b, "dev", "pw"), 0);
  assert.equal(await login(b, "dev", "wrong"), 0x86);
  // The same user name cannot be added again through another front-end.
  const again = await api(b, "/users", {
    method: "POST",
    body: { username: "dev", password: "x" },
  });
  assert.equal(again.status, 409);
  // The front-end that made the change exported it to its password file; the others did not.
  assert.match(await Deno.readTextFile(`${dirs[0]}/users.txt`), /^dev:SCRAM-SHA-256\$/m);
  assert.doesNotMatch(await Deno.readTextFile(`${dirs[1]}/users.txt`), /^dev:/m);

  const { client: publisher } = await client(b, {
    clientId: "acl-publisher",
    username: "dev",
    password: "pw",
  });
  try {
    const rule = { permission: "deny", action: "publish", topic: "plant/#" };
    assert.equal((await api(a, "/acl/rules", { method: "POST", body: rule })).status, 201);
    await eventually("the rule on b", async () => {
      const acl = (await api(b, "/acl")).body as { rules: { topic: string }[] };
      return acl.rules.some((r) => r.topic === "plant/#");
    });
    // The client connected to b before the change: its next publish is refused.
    // mqtt.js rejects a publish whose PUBACK carries a failure reason code.
    await assert.rejects(
      publisher.publishAsync("plant/valve", "open", { qos: 1 }),
      (error: { code?: number }) => error.code === 0x87,
    );
    // Removed through b, and a's rules follow.
    assert.equal((await api(b, "/acl/rules/0", { method: "DELETE" })).status, 204);
    await eventually("the removal on a", async () => {
      return ((await api(a, "/acl")).body as { rules: unknown[] }).rules.length === 0;
    });
    await publisher.publishAsync("plant/valve", "open", { qos: 1 });
  } finally {
    await endAll([publisher]);
  }

  assert.equal((await api(b, "/users/dev", { method: "DELETE" })).status, 204);
  await eventually("the removal on a", async () => (await api(a, "/users/dev")).status === 404);
  assert.notEqual(await login(a, "dev", "pw"), 0);
});

/** A user every front-end knows, for the clients of the tests below. */
let fleetUser: Promise<void> | undefined;
const fleet = { username: "fleet", password: "fleet-pw" };

function ensureFleetUser(frontEnds: FrontEnd[]): Promise<void> {
  return fleetUser ??= (async () => {
    assert.equal((await api(frontEnds[0], "/users", { method: "POST", body: fleet })).status, 201);
    for (const frontEnd of frontEnds) {
      await eventually(`the fleet user on ${frontEnd.nodeId}`, async () => {
        return (await api(frontEnd, "/users/fleet")).status === 200;
      });
    }
  })();
}

interface ClientList {
  data: { clientId: string; node: string }[];
  meta: { page: number; limit: number; count: number; hasNext: boolean };
  missing: string[];
}

Deno.test("cluster admin: /nodes lists every front-end, each describing itself", async () => {
  const { frontEnds } = await cluster();
  for (const asked of frontEnds) {
    const nodes = (await api(asked, "/nodes")).body as unknown as {
      id: string;
      state: string;
      alive: boolean;
      backbone: string;
      connections: number;
      listeners: { port: number }[];
    }[];
    assert.deepEqual(
      nodes.map((n) => [n.id, n.state, n.alive, n.backbone, n.listeners.map((l) => l.port)]),
      frontEnds.map((f) => [f.nodeId, "ready", true, "nats", [f.port]]),
    );
    assert.ok(nodes.every((n) => typeof n.connections === "number"));
  }
  const one = await api(frontEnds[0], `/nodes/${frontEnds[2].nodeId}`);
  assert.deepEqual([one.status, one.body?.id], [200, frontEnds[2].nodeId]);
  assert.equal((await api(frontEnds[0], "/nodes/nowhere")).status, 404);
});

Deno.test("cluster admin: /clients lists, pages, gets and kicks the clients of every front-end", async () => {
  const { frontEnds } = await cluster();
  const [a, b, c] = frontEnds;
  await ensureFleetUser(frontEnds);
  // Five clients: one on a, two on b, two on c; the ids interleave the nodes.
  const placed: [string, FrontEnd][] = [
    ["fleet-1", b],
    ["fleet-2", c],
    ["fleet-3", a],
    ["fleet-4", c],
    ["fleet-5", b],
  ];
  const clients = await Promise.all(
    placed.map(([clientId, frontEnd]) => client(frontEnd, { clientId, ...fleet })),
  );
  try {
    const all = (await api(a, "/clients?like=fleet-")).body as unknown as ClientList;
    assert.deepEqual(
      all.data.map((x) => [x.clientId, x.node]),
      placed.map(([clientId, frontEnd]) => [clientId, frontEnd.nodeId]),
    );
    assert.deepEqual([all.meta.count, all.missing], [5, []]);
    const second = (await api(c, "/clients?like=fleet-&limit=2&page=2"))
      .body as unknown as ClientList;
    assert.deepEqual(second.data.map((x) => x.clientId), ["fleet-3", "fleet-4"]);
    assert.deepEqual(second.meta, { page: 2, limit: 2, count: 5, hasNext: true });
    const byUser = (await api(b, "/clients?username=fleet&clientId=fleet-4"))
      .body as unknown as ClientList;
    assert.deepEqual(byUser.data.map((x) => x.node), ["c"]);

    // One client of another node, with its session.
    const detail = await api(a, "/clients/fleet-2");
    assert.equal(detail.status, 200);
    assert.equal(detail.body?.node, "c");
    assert.equal((detail.body?.session as { clientId: string }).clientId, "fleet-2");
    assert.equal((await api(a, "/clients/nobody")).status, 404);

    // Kicked through a, from b: MQTT 5 DISCONNECT 0x98; with a ban, a refuses it afterwards.
    const kicked = Promise.withResolvers<number | undefined>();
    clients[0].client.once("disconnect", (packet) => kicked.resolve(packet.reasonCode));
    assert.equal((await api(a, "/clients/fleet-1", { method: "DELETE" })).status, 204);
    assert.equal(await kicked.promise, 0x98);
    const banned = Promise.withResolvers<number | undefined>();
    clients[1].client.once("disconnect", (packet) => banned.resolve(packet.reasonCode));
    const ban = await api(a, "/clients/fleet-2?ban=60", { method: "DELETE" });
    assert.deepEqual([ban.status, ban.body?.kind, ban.body?.value], [200, "clientId", "fleet-2"]);
    assert.equal(await banned.promise, 0x98);
    assert.equal(await login(a, "fleet", "fleet-pw", "fleet-2"), 0x8a);
    assert.equal((await api(a, "/clients/fleet-1", { method: "DELETE" })).status, 404);
  } finally {
    await endAll(clients.map((x) => x.client));
  }
});

Deno.test("cluster admin: a front-end that does not answer is named, and the others' answers stand", async () => {
  const { frontEnds } = await cluster();
  const [a, b, c] = frontEnds;
  await ensureFleetUser(frontEnds);
  const onB = await client(b, { clientId: "survivor", ...fleet });
  const onC = await client(c, { clientId: "doomed", ...fleet });
  try {
    // A crash: c's lease in the node registry stays current for a while (backbone.leaseTimeout).
    await c.kill();
    const clients = await api(a, "/clients");
    assert.equal(clients.status, 200);
    const list = clients.body as unknown as ClientList;
    assert.deepEqual(list.missing, ["c"]);
    assert.deepEqual(list.data.map((x) => x.clientId), ["survivor"]);
    const nodes = (await api(a, "/nodes")).body as unknown as { id: string; state: string }[];
    assert.deepEqual(nodes.map((n) => [n.id, n.state]), [
      ["a", "ready"],
      ["b", "ready"],
      ["c", "unreachable"],
    ]);
    const detail = await api(a, "/clients/doomed");
    assert.equal(detail.status, 503);
    assert.match(detail.body?.message as string, /Node "c", which holds client "doomed"/);
  } finally {
    await endAll([onB.client, onC.client]);
  }
});

Deno.test("cluster admin: the processes stop", async () => {
  if (!started) return;
  const { nats, frontEnds, dirs } = await started;
  await Promise.all(frontEnds.map((frontEnd) => frontEnd.stop()));
  await nats.close();
  for (const dir of dirs) await Deno.remove(dir, { recursive: true });
});
