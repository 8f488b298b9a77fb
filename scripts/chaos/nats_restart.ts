/**
 * Fault scenario: the nats-server (file storage) killed and started again under load. Two
 * front-ends behind haproxy, sequence-numbered QoS 1/2 streams (MQTT 5 and 3.1.1) publishing
 * through the outage.
 *
 * Expected: while NATS is away a front-end acknowledges nothing it could not store (an MQTT 5
 * publisher gets a reason code of 0x80 or more on its PUBACK, a 3.1.1 publisher is disconnected)
 * and refuses new CONNECTs with "server unavailable" (0x88, 3.1.1: 3); once NATS is back the
 * front-ends reconnect by themselves and accept and acknowledge again; no acknowledged message is
 * lost and no QoS 2 message is delivered twice.
 *
 * @module
 */

import { startNatsServer } from "../../test/helpers/nats.ts";
import type { FrontEnd } from "../cluster.ts";
import {
  admin,
  type Check,
  connackCode,
  describeOutcome,
  FrontEnds,
  type Log,
  type ProbeOutcome,
  PublishProbe,
  type ScenarioResult,
  settle,
  streamSpecs,
  until,
} from "./harness.ts";
import { SequenceStream, totalsOf } from "./streams.ts";

export interface NatsRestartOptions {
  /** Messages per stream. */
  messages: number;
  window?: number;
  log?: Log;
}

/** Longest the front-ends may take to serve again once NATS is back (a failure guard). */
const RECOVER_MS = 60_000;

export async function natsRestart(options: NatsRestartOptions): Promise<ScenarioResult> {
  const log = options.log ?? (() => {});
  const specs = streamSpecs("restart", options.messages, options.window ?? 4);
  await using nats = await startNatsServer();
  const cluster = new FrontEnds();
  const streams: SequenceStream[] = [];
  const probes: PublishProbe[] = [];
  try {
    const frontEnds = await cluster.start(2, {
      natsUrl: nats.url,
      prefix: "restart",
      backbone: { leaseTimeout: "3s", ackWait: "2s", timeout: "2s" },
    });
    const lb = await cluster.balance();
    const servers = [{ host: "127.0.0.1", port: lb.port }];
    for (const spec of specs) {
      streams.push(await SequenceStream.open(spec, { publisher: servers, subscriber: servers }));
    }
    const [first, second] = frontEnds;
    const probe5 = await PublishProbe.open(first.port, 5, "restart-probe-v5");
    probes.push(probe5);
    const probe4 = await PublishProbe.open(first.port, 4, "restart-probe-v4");
    probes.push(probe4);

    const third = Math.floor(options.messages / 3);
    await Promise.all(streams.map((stream) => stream.publish(third)));
    // The middle third is in flight while NATS goes away.
    const middle = Promise.all(streams.map((stream) => stream.publish(2 * third)));
    await nats.kill();
    const downAt = Date.now();
    log("nats-server killed");
    const away: Record<string, ProbeOutcome> = {};
    away.publishV5 = await probe5.publish("chaos/restart/probe");
    away.publishV4 = await probe4.publish("chaos/restart/probe");
    away.connectV5 = await connackCode(second.port, 5, "restart-new-v5");
    away.connectV4 = await connackCode(second.port, 4, "restart-new-v4");
    log(
      `while away: ${
        Object.entries(away).map(([k, v]) => `${k} ${describeOutcome(v)}`).join(", ")
      }`,
    );
    await nats.start();
    const upAt = Date.now();
    log(`nats-server started again after ${upAt - downAt} ms`);

    // Each front-end accepts a new client and acknowledges its QoS 1 publish, by itself.
    let attempt = 0;
    await until(
      async () => {
        for (const frontEnd of frontEnds) {
          const probe = await PublishProbe.open(frontEnd.port, 5, `restart-back-${attempt++}`);
          try {
            const outcome = await probe.publish("chaos/restart/back", 5000);
            if (outcome.kind !== "puback" || outcome.code >= 0x80) return false;
          } finally {
            await probe.close();
          }
        }
        return true;
      },
      "front-ends serving again",
      RECOVER_MS,
      200,
    );
    const recoveredMs = Date.now() - upAt;
    log(`front-ends serving again ${recoveredMs} ms after NATS`);
    await middle;
    await Promise.all(streams.map((stream) => stream.publish()));
    log("publishers done; waiting for every acknowledged message");
    await settle(streams, frontEnds, log);

    const stale = await sessionsSayingDisconnected(frontEnds[0], streams);
    const checks: Check[] = [
      {
        name: "MQTT 5 publish while NATS is away gets a reason code >= 0x80",
        ok: away.publishV5.kind === "puback" && away.publishV5.code >= 0x80,
        detail: describeOutcome(away.publishV5),
      },
      {
        name: "3.1.1 publisher disconnected while NATS is away (no PUBACK)",
        ok: away.publishV4.kind === "closed",
        detail: describeOutcome(away.publishV4),
      },
      {
        name: "new MQTT 5 CONNECT refused with 0x88 server unavailable",
        ok: away.connectV5.kind === "connack" && away.connectV5.code === 0x88,
        detail: describeOutcome(away.connectV5),
      },
      {
        name: "new 3.1.1 CONNECT refused with 3 server unavailable",
        ok: away.connectV4.kind === "connack" && away.connectV4.code === 3,
        detail: describeOutcome(away.connectV4),
      },
      {
        name: "front-ends reconnected by themselves",
        ok: frontEnds.every((frontEnd) => !frontEnd.exited),
        detail: `serving ${recoveredMs} ms after NATS was back`,
      },
      {
        name: "sessions of connected clients still say connected (no node taken for lost)",
        ok: stale.length === 0,
        detail: stale.length === 0 ? "all" : stale.join(", "),
      },
    ];
    const reports = streams.map((stream) => stream.report());
    return {
      scenario: "nats-server restart",
      streams: reports,
      totals: totalsOf(reports),
      checks,
      figures: { outageMs: upAt - downAt, recoverMs: recoveredMs },
    };
  } finally {
    await Promise.all(probes.map((probe) => probe.close()));
    await Promise.all(streams.map((stream) => stream.close()));
    await cluster.close();
  }
}

/**
 * The streams' clients connected now whose session record says disconnected: a front-end that
 * took a live one for lost after the outage (every lease lapsed on the server) would have marked
 * its sessions offline.
 */
async function sessionsSayingDisconnected(
  asked: FrontEnd,
  streams: SequenceStream[],
): Promise<string[]> {
  const stale: string[] = [];
  for (const stream of streams) {
    for (const clientId of [stream.publisherId, stream.subscriberId]) {
      const path = encodeURIComponent(clientId);
      const client = await admin<{ connected: boolean }>(asked, `/clients/${path}`);
      if (!client) continue;
      const session = await admin<{ connected: boolean }>(asked, `/sessions/${path}`);
      if (session && !session.connected) stale.push(clientId);
    }
  }
  return stale;
}
