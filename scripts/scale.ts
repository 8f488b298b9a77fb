/**
 * `deno task scale`: what a Perch cluster costs at scale on this machine, measured with real
 * processes (the figures in docs/clustering.md, "Faults and scale").
 *
 * - sessions: one nats-server (file storage), one front-end; `--sessions` persistent MQTT 5
 *   sessions (Session Expiry 1 h) with `--subs` QoS 1 subscriptions each. Reports JetStream
 *   streams and consumers, nats-server and front-end RSS, the time to connect and subscribe them
 *   all, and, after the front-end is restarted (SIGTERM, started again on its port), the time
 *   until every client has reconnected with its session present.
 * - spread: one nats-server, 3 front-ends and haproxy; `--connections` MQTT connections through
 *   haproxy (clean sessions, no subscriptions); reports each front-end's RSS before and after and
 *   RSS per connection. haproxy holds two descriptors per connection, so with a 20,000 open-file
 *   limit per process it carries at most about 9,900.
 *
 * Usage: `deno task scale [--part sessions|spread|all] [--sessions N] [--subs K]
 * [--connections M] [--concurrency C]` (defaults: all, 10000, 5, 9500, 100).
 *
 * @module
 */

import { PacketType } from "../src/codec/mod.ts";
import { startNatsServer } from "../test/helpers/nats.ts";
import { TestClient } from "../test/helpers/test_client.ts";
import { type FrontEnd, startFrontEnd, startLoadBalancer } from "./cluster.ts";
import { rssMiB } from "./chaos/harness.ts";

/** Config every front-end here gets: one address opens every connection, as fast as it can. */
const EXTRA = {
  limits: { maxConnectionsPerAddress: 0, connectRatePerAddress: 0 },
};

/** Runs `work` over 0..count-1 with at most `concurrency` at once. */
async function pool(
  count: number,
  concurrency: number,
  work: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** nats-server's own figures: `/varz` memory and `/jsz` counts. */
async function natsFigures(monitorUrl: string) {
  const varz = await (await fetch(`${monitorUrl}/varz`)).json() as { mem: number };
  const jsz = await (await fetch(`${monitorUrl}/jsz`)).json() as {
    streams: number;
    consumers: number;
    messages: number;
    bytes: number;
  };
  return {
    rssMiB: Math.round(varz.mem / 1024 / 1024 * 10) / 10,
    streams: jsz.streams,
    consumers: jsz.consumers,
    storedMessages: jsz.messages,
  };
}

/** Closes a connection the other side may have closed already. */
function closeQuietly(client: TestClient | undefined): void {
  try {
    client?.conn.close();
  } catch { /* already closed */ }
}

/** Waits until JetStream's consumer count holds still for 3 s (at most `timeoutMs`). */
async function consumersSettled(monitorUrl: string, timeoutMs = 180_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let still = 0;
  for (;;) {
    const { consumers } = await natsFigures(monitorUrl);
    still = consumers === last ? still + 1 : 0;
    last = consumers;
    if (still >= 3 || Date.now() > deadline) return consumers;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

async function sessionsPart(sessions: number, subs: number, concurrency: number): Promise<void> {
  console.log(`sessions: ${sessions} persistent sessions x ${subs} subscriptions, one front-end`);
  await using nats = await startNatsServer();
  let frontEnd: FrontEnd = await startFrontEnd({
    nodeId: "scale1",
    natsUrl: nats.url,
    prefix: "scale",
    extra: EXTRA,
  });
  const clients: TestClient[] = new Array(sessions);
  const connectAll = async (expectPresent: boolean) => {
    let present = 0;
    let refused = 0;
    let subackFailures = 0;
    const started = Date.now();
    await pool(sessions, concurrency, async (i) => {
      for (let attempt = 0;; attempt++) {
        try {
          const { client, connack } = await TestClient.connect(frontEnd.port, {
            version: 5,
            clientId: `scale-${i}`,
            cleanStart: false,
            keepAlive: 0,
            properties: { sessionExpiryInterval: 3600 },
          });
          if (connack.reasonCode !== 0) {
            refused++;
            closeQuietly(client);
            if (attempt > 100) {
              const problems = frontEnd.log.filter((line) => /"level":"(error|warn)"/.test(line));
              throw new Error(
                `scale-${i}: CONNACK 0x${connack.reasonCode.toString(16)}; ${problems.length} ` +
                  `warnings and errors, last:\n${problems.slice(-3).join("\n")}`,
              );
            }
            await new Promise((resolve) => setTimeout(resolve, 100));
            continue;
          }
          clients[i] = client;
          if (connack.sessionPresent) present++;
          if (!expectPresent) {
            const filters = Array.from({ length: subs }, (_, j) => ({
              filter: `scale/${i}/${j}/#`,
              qos: 1 as const,
            }));
            const suback = await client.subscribe(filters);
            if (suback.type !== PacketType.SUBACK) throw new Error("no SUBACK");
            if (suback.reasonCodes.some((code) => code >= 0x80)) subackFailures++;
          }
          return;
        } catch (error) {
          if (attempt > 100) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    });
    return { ms: Date.now() - started, present, refused, subackFailures };
  };
  try {
    const rssIdle = rssMiB(frontEnd.pid);
    const natsIdle = await natsFigures(nats.monitorUrl);
    const first = await connectAll(false);
    console.log(
      `  connected and subscribed ${sessions} in ${seconds(first.ms)} ` +
        `(${Math.round(sessions / (first.ms / 1000))}/s, concurrency ${concurrency}, ` +
        `${first.refused} CONNACK refusals retried, ${first.subackFailures} SUBACKs with a failure)`,
    );
    const problems = frontEnd.log.filter((line) => /"level":"(error|warn)"/.test(line));
    if (problems.length > 0) {
      console.log(`  front-end warnings and errors: ${problems.length}, first: ${problems[0]}`);
    }
    const settledAt = Date.now();
    await consumersSettled(nats.monitorUrl);
    console.log(`  JetStream consumer count still after ${seconds(Date.now() - settledAt)} more`);
    const natsFull = await natsFigures(nats.monitorUrl);
    const rssFull = rssMiB(frontEnd.pid);
    console.log(
      `  JetStream: ${natsFull.streams} streams, ${natsFull.consumers} consumers ` +
        `(idle: ${natsIdle.streams} streams, ${natsIdle.consumers} consumers)`,
    );
    console.log(
      `  RSS: nats-server ${natsIdle.rssMiB} -> ${natsFull.rssMiB} MiB, ` +
        `front-end ${rssIdle} -> ${rssFull} MiB ` +
        `(${((rssFull - rssIdle) * 1024 / sessions).toFixed(1)} KiB per session)`,
    );
    await frontEnd.stop();
    for (const client of clients) closeQuietly(client);
    const restartAt = Date.now();
    frontEnd = await startFrontEnd(frontEnd.options);
    const startMs = Date.now() - restartAt;
    const again = await connectAll(true);
    console.log(
      `  front-end restarted in ${seconds(startMs)}; ${sessions} clients resumed in ` +
        `${seconds(again.ms)} (${again.present} with their session present, ` +
        `${again.refused} CONNACK refusals retried)`,
    );
    console.log(
      `  RSS after resuming: front-end ${rssMiB(frontEnd.pid)} MiB, nats-server ${
        (await natsFigures(nats.monitorUrl)).rssMiB
      } MiB`,
    );
  } finally {
    for (const client of clients) closeQuietly(client);
    await frontEnd.stop();
  }
}

async function spreadPart(connections: number, concurrency: number): Promise<void> {
  console.log(`spread: ${connections} connections through haproxy over 3 front-ends`);
  await using nats = await startNatsServer();
  const frontEnds: FrontEnd[] = [];
  const clients: TestClient[] = [];
  let stopBalancer = async () => {};
  try {
    frontEnds.push(
      await startFrontEnd({ nodeId: "spread1", natsUrl: nats.url, prefix: "spread", extra: EXTRA }),
    );
    for (const nodeId of ["spread2", "spread3"]) {
      frontEnds.push(
        await startFrontEnd({ nodeId, natsUrl: nats.url, prefix: "spread", extra: EXTRA }),
      );
    }
    const balancer = await startLoadBalancer(frontEnds.map((f) => f.port), 0, {
      maxconn: connections + 100,
    });
    stopBalancer = () => balancer.stop();
    const before = frontEnds.map((f) => rssMiB(f.pid));
    const started = Date.now();
    let failed = 0;
    await pool(connections, concurrency, async (i) => {
      try {
        const { client, connack } = await TestClient.connect(balancer.port, {
          version: 5,
          clientId: `spread-${i}`,
          cleanStart: true,
          keepAlive: 0,
        });
        if (connack.reasonCode !== 0) failed++;
        clients.push(client);
      } catch {
        failed++;
      }
    });
    const ms = Date.now() - started;
    const after = frontEnds.map((f) => rssMiB(f.pid));
    const open = clients.length - failed;
    console.log(
      `  ${open} connected (${failed} failed) in ${seconds(ms)}; about ${
        Math.round(open / 3)
      } per front-end`,
    );
    for (const [i, frontEnd] of frontEnds.entries()) {
      const perConnection = (after[i] - before[i]) * 1024 / (open / 3);
      console.log(
        `  ${frontEnd.nodeId}: RSS ${before[i]} -> ${after[i]} MiB ` +
          `(${perConnection.toFixed(1)} KiB per connection)`,
      );
    }
    console.log(`  nats-server RSS ${(await natsFigures(nats.monitorUrl)).rssMiB} MiB`);
  } finally {
    for (const client of clients) closeQuietly(client);
    await stopBalancer();
    await Promise.all(frontEnds.map((f) => f.stop()));
  }
}

async function main(args: string[]): Promise<number> {
  const value = (name: string, fallback: number) => {
    const i = args.indexOf(name);
    return i === -1 ? fallback : Number(args[i + 1]);
  };
  const i = args.indexOf("--part");
  const part = i === -1 ? "all" : args[i + 1];
  const sessions = value("--sessions", 10_000);
  const subs = value("--subs", 5);
  const connections = value("--connections", 9_500);
  const concurrency = value("--concurrency", 100);
  if (!["all", "sessions", "spread"].includes(part)) {
    console.error("usage: deno task scale [--part sessions|spread|all] [--sessions N] ...");
    return 2;
  }
  if (part !== "spread") await sessionsPart(sessions, subs, concurrency);
  if (part !== "sessions") await spreadPart(connections, concurrency);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
