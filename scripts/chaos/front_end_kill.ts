/**
 * Fault scenario: a front-end killed with SIGKILL in the middle of sequence-numbered QoS 1 and
 * QoS 2 streams. One nats-server, three front-ends, haproxy; every client connects through
 * haproxy with a persistent session and reconnects through it. Clients with a Will Delay are
 * connected too, and do not come back.
 *
 * Expected: no acknowledged message lost and no QoS 2 message twice, for the streams whose
 * clients were on the killed front-end and for the others; each killed-node will client's will
 * published exactly once, not before its Will Delay, by the one survivor that took care of the
 * lost node; no will for clients of the survivors.
 *
 * @module
 */

import mqtt, { type MqttClient } from "mqtt";
import { startNatsServer } from "../../test/helpers/nats.ts";
import {
  type Check,
  FrontEnds,
  type Log,
  nodeOf,
  type ScenarioResult,
  sessionDrained,
  until,
} from "./harness.ts";
import {
  connectClient,
  persistentOptions,
  SequenceStream,
  type StreamSpec,
  totalsOf,
} from "./streams.ts";

export interface FrontEndKillOptions {
  /** Messages per stream. */
  messages: number;
  /** Publishes in flight per stream. */
  window?: number;
  log?: Log;
}

const LEASE = "2s";
const ACK_WAIT = "2s";
/** Will Delay of the will clients, seconds. */
const WILL_DELAY_S = 2;
/** Will clients (round robin puts one on each front-end). */
const WILL_CLIENTS = 3;
/** Longest wait for the books to balance after the publishers finished (a failure guard). */
const SETTLE_MS = 120_000;

const LOST_LINE = '"node lost: taking care of its sessions"';

export async function frontEndKill(options: FrontEndKillOptions): Promise<ScenarioResult> {
  const log = options.log ?? (() => {});
  const window = options.window ?? 4;
  const specs: StreamSpec[] = [];
  for (const protocolVersion of [5, 4] as const) {
    for (const qos of [1, 2] as const) {
      for (const part of ["a", "b"]) {
        specs.push({
          name: `kill-q${qos}-v${protocolVersion}-${part}`,
          qos,
          protocolVersion,
          count: options.messages,
          window,
        });
      }
    }
  }
  await using nats = await startNatsServer();
  const cluster = new FrontEnds();
  const streams: SequenceStream[] = [];
  const clients: MqttClient[] = [];
  try {
    const frontEnds = await cluster.start(3, {
      natsUrl: nats.url,
      prefix: "kill",
      backbone: { leaseTimeout: LEASE, ackWait: ACK_WAIT },
    });
    const lb = await cluster.balance();
    const servers = [{ host: "127.0.0.1", port: lb.port }];
    log(
      `nats ${nats.url}, front-ends ${frontEnds.map((f) => f.port).join(" ")}, haproxy ${lb.port}`,
    );

    // The will watcher, then one will client per front-end (round robin).
    const wills = new Map<string, number[]>();
    const watcher = await connectClient(persistentOptions("kill-will-watcher", 5, servers));
    clients.push(watcher);
    watcher.on("message", (topic) => {
      const id = topic.slice(topic.lastIndexOf("/") + 1);
      wills.set(id, [...(wills.get(id) ?? []), Date.now()]);
    });
    await watcher.subscribeAsync("chaos/wills/#", { qos: 2 });
    const willIds: string[] = [];
    for (let i = 0; i < WILL_CLIENTS; i++) {
      const clientId = `kill-will-${i}`;
      willIds.push(clientId);
      const client = mqtt.connect({
        clientId,
        protocolVersion: 5,
        clean: true,
        servers,
        reconnectPeriod: 0, // Gone with its front-end: its will is due.
        properties: { sessionExpiryInterval: 60 },
        will: {
          topic: `chaos/wills/${clientId}`,
          payload: "gone",
          qos: 1,
          retain: false,
          properties: { willDelayInterval: WILL_DELAY_S },
        },
      });
      client.on("error", () => {});
      clients.push(client);
      await new Promise<void>((resolve, reject) => {
        client.once("connect", () => resolve());
        client.once("close", () => reject(new Error(`${clientId} did not connect`)));
      });
    }
    for (const spec of specs) {
      streams.push(await SequenceStream.open(spec, { publisher: servers, subscriber: servers }));
    }

    const where = new Map<string, string>();
    for (const id of [...willIds, ...streams.flatMap((s) => [s.publisherId, s.subscriberId])]) {
      where.set(id, await nodeOf(frontEnds, id));
    }
    const victimId = where.get(willIds[0])!;
    const victim = cluster.byId(victimId);
    const onVictim = (id: string) => where.get(id) === victimId;
    const streamsHit = streams.filter((s) => onVictim(s.publisherId) || onVictim(s.subscriberId));
    log(
      `killing ${victimId} half way: ${streamsHit.length} of ${streams.length} streams have a client there`,
    );

    let killedAt = 0;
    let killing: Promise<void> | undefined;
    const half = Math.floor(options.messages / 2);
    const kill = () => {
      killing ??= (async () => {
        killedAt = Date.now();
        await victim.kill();
        log(`${victimId} killed`);
      })();
    };
    await Promise.all(
      streams.map((stream, i) =>
        stream.publish(options.messages, i === 0 ? (seq) => seq >= half && kill() : undefined)
      ),
    );
    kill();
    await killing;
    log("publishers done; waiting for every acknowledged message");

    const deadline = Date.now() + SETTLE_MS;
    await Promise.all(streams.map((stream) => stream.receivedAll(deadline)));
    const survivors = frontEnds.filter((f) => f !== victim);
    // Settled: no subscriber's queue holds anything that could still come (again).
    await until(
      async () => {
        for (const stream of streams) {
          if (!(await sessionDrained(survivors, stream.subscriberId))) return false;
        }
        return true;
      },
      "subscriber queues empty",
      SETTLE_MS,
    ).catch((error) => log(String(error)));

    // Wills: the victim's will clients once each, the others never.
    const victimWills = willIds.filter(onVictim);
    await until(
      () => victimWills.every((id) => (wills.get(id)?.length ?? 0) >= 1),
      "wills of the killed front-end's clients",
      SETTLE_MS,
    ).catch((error) => log(String(error)));
    await until(() => sessionDrained(survivors, "kill-will-watcher"), "will watcher drained")
      .catch((error) => log(String(error)));
    const checks: Check[] = [];
    const counts = victimWills.map((id) => `${id}: ${wills.get(id)?.length ?? 0}`).join(", ");
    checks.push({
      name: "each will of the killed front-end's clients published exactly once",
      ok: victimWills.length > 0 && victimWills.every((id) => wills.get(id)?.length === 1),
      detail: counts || "no will client on the killed front-end",
    });
    const early = victimWills.flatMap((id) => wills.get(id) ?? []).filter((at) =>
      at < killedAt + WILL_DELAY_S * 1000
    );
    checks.push({
      name: "no will before its Will Delay",
      ok: early.length === 0,
      detail: early.length === 0
        ? `delay ${WILL_DELAY_S} s`
        : `${early.length} within ${WILL_DELAY_S} s of the kill`,
    });
    const others = willIds.filter((id) => !onVictim(id) && wills.has(id));
    checks.push({
      name: "no will of a survivor's client",
      ok: others.length === 0,
      detail: others.length === 0 ? "none" : others.join(", "),
    });
    const handlers = survivors.filter((f) => f.log.some((line) => line.includes(LOST_LINE)));
    checks.push({
      name: "one survivor took care of the lost front-end",
      ok: handlers.length === 1,
      detail: handlers.map((f) => f.nodeId).join(", ") || "none",
    });
    checks.push({
      name: "streams with a client on the killed front-end and streams without",
      ok: streamsHit.length > 0 && streamsHit.length < streams.length,
      detail: `${streamsHit.length} of ${streams.length} hit`,
    });
    const reports = streams.map((stream) => ({
      ...stream.report(),
      name: `${stream.spec.name}${
        streams.indexOf(stream) >= 0 && streamsHit.includes(stream) ? " (hit)" : ""
      }`,
    }));
    return {
      scenario: "front-end SIGKILL",
      streams: reports,
      totals: totalsOf(reports),
      checks,
    };
  } finally {
    await Promise.all(streams.map((stream) => stream.close()));
    await Promise.all(clients.map((client) => client.endAsync(true)));
    await cluster.close();
  }
}
